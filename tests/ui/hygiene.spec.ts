// Secret hygiene over a whole session (issue 12, "make the class hard to reintroduce", 3).
// One throw-away folder: platforms added (LTI 1.1 and LTIAAS), imports (a tool grade CSV,
// LTIAAS ID tokens, captured launches, proxy-tool requests, an Open edX dump with its
// consumer secret), reconcile, sync, dry runs, the attempt journal, exports, and the
// window through `passback ui-server` — every process logging at debug level to a file.
// Then every artifact (the ledger, its WAL and shared memory, every log, every export and
// output, the page, what it received, its storage and clipboard, every other file the
// session left) is searched for every secret, service key and ltik, plain and encoded
// (percent, JSON, HTML, hex, UTF-16, base64 and base64url at each byte alignment).
// PASSBACK_HYGIENE_LOG=trace runs the session at trace level; PASSBACK_HYGIENE_LIST=1
// lists the artifacts searched, with their sizes.
import { test, expect, type Page } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { createHmac, createHash, randomBytes, randomInt } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { bin, checkBuilt, sandboxAdmin, startSandbox, startServer, stopServer, type Sandbox, type Server } from './workspace';

test.beforeAll(checkBuilt);

// ---------------------------------------------------------------------------------------
// The search: needles, the forms they could take, and where they are found.

interface Needle {
  name: string;
  value: string;
}

interface Artifact {
  name: string;
  data: Buffer;
}

interface Hit {
  needle: string;
  form: string;
  artifact: string;
  offset: number;
  context: string;
}

const hex = (c: string) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
/** RFC 3986 percent-encoding: only ALPHA / DIGIT / "-" / "." / "_" / "~" stay. */
const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, hex);
const htmlEscape = (s: string, apos: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, apos);
/** JSON as encoders that escape every non-ASCII character and the solidus write it. */
const jsonAscii = (s: string) =>
  JSON.stringify(s)
    .slice(1, -1)
    .replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
    .replace(/\//g, '\\/');

/**
 * The parts of base64(x + needle + y) that depend on the needle only, for the needle
 * starting at each of the three byte alignments: encode it behind 0, 1 or 2 filler
 * bytes and keep the whole 4-character groups made of needle bytes alone.
 */
function base64Cores(bytes: Buffer, encoding: 'base64' | 'base64url'): string[] {
  const cores: string[] = [];
  for (const pad of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(pad), bytes]).toString(encoding);
    const start = pad === 0 ? 0 : 4;
    const end = Math.floor((pad + bytes.length) / 3) * 4;
    cores.push(encoded.slice(start, end));
  }
  return cores;
}

/** Every form a needle is searched in: name → the bytes to look for. */
function formsOf(value: string): Map<string, Buffer> {
  const forms = new Map<string, Buffer>();
  const add = (name: string, b: Buffer) => {
    // One name per distinct byte string (a value of unreserved characters percent-encodes to itself).
    for (const seen of forms.values()) if (seen.equals(b)) return;
    forms.set(name, b);
  };
  const utf8 = Buffer.from(value, 'utf8');
  add('plain', utf8);
  add('percent-encoded (encodeURIComponent)', Buffer.from(encodeURIComponent(value)));
  add('percent-encoded (RFC 3986)', Buffer.from(rfc3986(value)));
  add('percent-encoded, lower-case hex', Buffer.from(rfc3986(value).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())));
  add('form-urlencoded', Buffer.from(new URLSearchParams({ x: value }).toString().slice(2)));
  add('percent-encoded twice', Buffer.from(encodeURIComponent(encodeURIComponent(value))));
  add('JSON-escaped', Buffer.from(JSON.stringify(value).slice(1, -1)));
  add('JSON-escaped (ASCII, \\/)', Buffer.from(jsonAscii(value)));
  add('HTML-escaped (&#39;)', Buffer.from(htmlEscape(value, '&#39;')));
  add('HTML-escaped (&#x27;)', Buffer.from(htmlEscape(value, '&#x27;')));
  add('hex', Buffer.from(utf8.toString('hex')));
  add('UTF-16LE', Buffer.from(value, 'utf16le'));
  base64Cores(utf8, 'base64').forEach((c, i) => add(`base64 (alignment ${i})`, Buffer.from(c)));
  base64Cores(utf8, 'base64url').forEach((c, i) => add(`base64url (alignment ${i})`, Buffer.from(c)));
  return forms;
}

/** Forms of pairs a client could base64 together (an HTTP Basic-style `key:secret`). */
function pairForms(value: string): Map<string, Buffer> {
  const forms = new Map<string, Buffer>();
  const utf8 = Buffer.from(value, 'utf8');
  base64Cores(utf8, 'base64').forEach((c, i) => forms.set(`base64 (alignment ${i})`, Buffer.from(c)));
  base64Cores(utf8, 'base64url').forEach((c, i) => forms.set(`base64url (alignment ${i})`, Buffer.from(c)));
  return forms;
}

interface Pattern {
  needle: string;
  form: string;
  bytes: Buffer;
}

function patternsFor(needles: Needle[], pairs: Needle[]): Pattern[] {
  const out: Pattern[] = [];
  for (const n of needles) for (const [form, bytes] of formsOf(n.value)) out.push({ needle: n.name, form, bytes });
  for (const n of pairs) for (const [form, bytes] of pairForms(n.value)) out.push({ needle: n.name, form, bytes });
  for (const p of out) {
    // Long enough that finding one by chance is impossible.
    if (p.bytes.length < 16) throw new Error(`needle ${p.needle} is too short in form ${p.form}`);
  }
  return out;
}

/** ASCII letters to lower case (a latin1 view of UTF-8 must keep its other bytes as they are). */
const foldAscii = (s: string) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
const stripAnsi = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''), 'latin1');

/** Every place a pattern occurs in an artifact: raw, without ANSI colours, and (plain forms) case-folded. */
function scan(artifacts: Artifact[], patterns: Pattern[]): Hit[] {
  const hits: Hit[] = [];
  for (const a of artifacts) {
    const views: [string, string][] = [[a.name, a.data.toString('latin1')]];
    const stripped = stripAnsi(a.data);
    if (stripped.length !== a.data.length) views.push([`${a.name} (ANSI colours removed)`, stripped.toString('latin1')]);
    const folded = foldAscii(a.data.toString('latin1'));
    for (const p of patterns) {
      const needle = p.bytes.toString('latin1');
      const seen = new Set<number>();
      const search = (view: string, text: string, what: string, again = false) => {
        for (let at = text.indexOf(what); at >= 0; at = text.indexOf(what, at + 1)) {
          if (again && seen.has(at)) continue; // the same occurrence, found raw already
          seen.add(at);
          const context = text.slice(Math.max(0, at - 40), at + what.length + 40).replace(/[^\x20-\x7e]/g, '.');
          hits.push({ needle: p.needle, form: p.form, artifact: view, offset: at, context });
          if (hits.length > 200) return;
        }
      };
      search(a.name, views[0][1], needle);
      // Upper-case hex or percent-encoding (an ASCII-only fold keeps offsets).
      if (/^(plain|percent)/.test(p.form)) search(`${a.name} (case-folded)`, folded, foldAscii(needle), true);
      // Colour codes could split a value; searched without them when nothing was found with them.
      if (views[1] && seen.size === 0) search(views[1][0], views[1][1], needle);
    }
  }
  return hits;
}

const report = (hits: Hit[]) =>
  hits.map((h) => `${h.needle} [${h.form}] in ${h.artifact} at offset ${h.offset}: …${h.context}…`).join('\n');

/** The search finds each form where a careless encoder would have put it. */
function selfTest(needles: Needle[], patterns: Pattern[]) {
  for (const n of needles) {
    const utf8 = Buffer.from(n.value, 'utf8');
    const planted: Artifact[] = [];
    for (const pad of [0, 1, 2, 3, 4, 5]) {
      const around = Buffer.concat([randomBytes(pad), utf8, randomBytes(7)]);
      planted.push({ name: `base64/${pad}`, data: Buffer.from(around.toString('base64')) });
      planted.push({ name: `base64url/${pad}`, data: Buffer.from(around.toString('base64url')) });
      planted.push({ name: `base64 of key:value/${pad}`, data: Buffer.from(Buffer.concat([Buffer.from('some-key:'), around]).toString('base64')) });
    }
    const text = `lead ${n.value} trail`;
    planted.push({ name: 'plain', data: Buffer.from(text) });
    planted.push({ name: 'ANSI', data: Buffer.from(`\x1b[2mkey\x1b[0m=\x1b[3m${n.value}\x1b[0m`) });
    planted.push({ name: 'query', data: Buffer.from(`https://x.example/?a=1&k=${encodeURIComponent(n.value)}&b=2`) });
    planted.push({ name: 'query (URLSearchParams)', data: Buffer.from(new URLSearchParams({ k: text }).toString()) });
    planted.push({ name: 'JSON', data: Buffer.from(JSON.stringify({ k: text })) });
    planted.push({ name: 'Debug', data: Buffer.from(`secret: ${JSON.stringify(n.value)}`) });
    planted.push({ name: 'HTML', data: Buffer.from(`<p title="${htmlEscape(text, '&#39;')}">`) });
    planted.push({ name: 'hex', data: Buffer.from(`x'${Buffer.from(text).toString('hex')}'`) });
    planted.push({ name: 'UTF-16', data: Buffer.from(text, 'utf16le') });
    planted.push({ name: 'upper-case', data: Buffer.from(text.replace(/[a-z]+/g, (m) => m.toUpperCase())) });
    for (const a of planted) {
      const found = scan([a], patterns).filter((h) => h.needle === n.name);
      expect(found.length, `the search finds ${n.name} in a planted ${a.name} artifact`).toBeGreaterThan(0);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The session.

let dir: string;
let server: Server | undefined;
let sandbox: Sandbox | undefined;

test.beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'passback-hygiene-'));
});

test.afterEach(async () => {
  if (server) await stopServer(server);
  server = undefined;
  sandbox?.proc.kill();
  sandbox = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** Random text a secret is made of (URL-safe base64 of `n` random bytes). */
const rnd = (n: number) => randomBytes(n).toString('base64url');

/** OAuth 1.0a HMAC-SHA1 over a form POST, written independently of Passback's signer. */
function oauthSign(url: string, params: Record<string, string>, secret: string): string {
  const norm = Object.entries(params)
    .filter(([k]) => k !== 'oauth_signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort(([a, b], [c, d]) => (a < c ? -1 : a > c ? 1 : b < d ? -1 : b > d ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const base = ['POST', rfc3986(url), rfc3986(norm)].join('&');
  return createHmac('sha1', `${rfc3986(secret)}&`).update(base).digest('base64');
}

/** A Blackboard proxy-tool MAC: every value but `mac`, in name order, then the secret; MD5; base64. */
function proxyMac(params: Record<string, string>, secret: string): string {
  const data = Object.keys(params)
    .filter((k) => k !== 'mac')
    .sort()
    .map((k) => params[k])
    .join('');
  return createHash('md5').update(data + secret, 'utf8').digest('base64');
}

async function closeJob(page: Page, title: string | RegExp, summary: RegExp) {
  const dialog = page.getByRole('dialog', { name: title });
  await dialog.getByTestId('job-start').click();
  await expect(dialog.getByTestId('job-summary')).toHaveText(summary);
  await dialog.getByTestId('job-close').click();
  await expect(dialog).toHaveCount(0);
}

test('secret hygiene: after a whole session no secret, service key or ltik is in the ledger, WAL, logs, exports, outputs, the page or its storage', async ({ page, context }) => {
  test.setTimeout(120_000);
  const started = Date.now();
  const inputs = join(dir, 'inputs'); // the files the test feeds in
  const work = join(dir, 'work'); // the ledger, logs, exports and Passback's folders
  const logs = join(work, 'logs');
  const exports = join(work, 'exports');
  for (const d of [inputs, work, logs, exports]) mkdirSync(d, { recursive: true });
  const db = join(work, 'ledger.sqlite');

  // Secrets with characters every encoding changes (space, /, +, =, &, %, ", \, ', !, *, non-ASCII).
  const consumerSecret = `lti11 ${rnd(18)}/+=&%"\\'!*~é:?#${rnd(9)}`;
  const apiKey = `ltiaas${rnd(18)}+/=%&"\\!'*~${rnd(9)}`; // an HTTP header value: no space, no ':'
  const edxInitialSecret = `edx-first ${rnd(18)}+/=&${rnd(6)}`;
  const edxDumpSecret = `edx-dump ${rnd(18)}<>&"'/é${rnd(6)}`;
  const proxySecret = `proxy ${rnd(18)}+/=&é${rnd(6)}`;
  const wrongApiKey = `wrong-key${rnd(18)}+/=%&"${rnd(6)}`;
  const wrongSecret = `wrong secret ${rnd(18)}/+=&"é${rnd(6)}`;
  sandbox = await startSandbox([
    '--seed', String(randomInt(1, 2 ** 47)),
    '--consumer-secret', consumerSecret,
    '--ltiaas-api-key', apiKey,
    '--sourcedid', 'sid-0', '--sourcedid', 'sid-1',
  ]);
  const sb = sandbox;
  expect(sb.secret).toBe(consumerSecret);
  expect(sb.ltiaasApiKey).toBe(apiKey);

  // Every process: debug-level logs; configuration, data and temporary folders inside the session's folder.
  const xdg = join(work, 'xdg');
  const env: Record<string, string> = {
    // PASSBACK_HYGIENE_LOG=trace searches trace-level logs too.
    PASSBACK_LOG: process.env.PASSBACK_HYGIENE_LOG || 'debug',
    XDG_CONFIG_HOME: join(xdg, 'config'),
    XDG_DATA_HOME: join(xdg, 'data'),
    XDG_CACHE_HOME: join(xdg, 'cache'),
    XDG_STATE_HOME: join(xdg, 'state'),
    TMPDIR: join(work, 'tmp'), // where the bridge stages a file imported from the window
    PASSBACK_TRUST_FILE: join(work, 'trusted-ledgers.json'),
  };
  mkdirSync(env.TMPDIR);
  const processEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'PASSBACK_DB' && k !== 'PASSBACK_LOG')) as Record<string, string>;

  // The bridge opens (creates) the ledger first and keeps it open through the whole session.
  const serverLog = join(logs, 'ui-server.log');
  server = await startServer(db, { env, logFile: serverLog });
  const ledgerFiles = () =>
    ['', '-wal', '-shm', '-journal']
      .map((s) => `${db}${s}`)
      .filter((f) => existsSync(f))
      .map((f) => ({ name: relative(dir, f), data: readFileSync(f) }));

  let step = 0;
  const logFiles: string[] = [];
  /** One CLI run, its stdout and stderr (the debug log) kept in files under logs/. */
  function run(args: string[], opts: { stdin?: string; env?: Record<string, string>; code?: number } = {}): string {
    step++;
    const base = join(logs, `${String(step).padStart(2, '0')}-${args.filter((a) => !a.startsWith('/')).slice(0, 3).join('-').replace(/[^\w.-]+/g, '_')}`);
    const out = openSync(`${base}.stdout`, 'w');
    const err = openSync(`${base}.log`, 'w');
    const r = spawnSync(bin, ['--db', db, ...args], {
      input: opts.stdin ?? '',
      stdio: ['pipe', out, err],
      env: { ...processEnv, ...env, ...opts.env },
    });
    closeSync(out);
    closeSync(err);
    logFiles.push(`${base}.log`);
    const stdout = readFileSync(`${base}.stdout`, 'utf8');
    expect(r.status, `passback ${args.join(' ')}:\n${stdout.slice(-2000)}\n${readFileSync(`${base}.log`, 'utf8').slice(-2000)}`).toBe(opts.code ?? 0);
    return stdout;
  }
  const json = <T>(s: string) => JSON.parse(s) as T;
  type ImportReport = { counts: Record<string, number>; notes: string[] };
  const lastReport = (ndjson: string) =>
    ndjson
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ImportReport & { event: string })
      .filter((e) => e.event === 'report')
      .pop() as ImportReport;

  // --- Platforms: LTI 1.1 (secret from the environment), LTIAAS (API key on stdin), the
  // secret stored again on stdin, and a platform whose secret an Open edX dump will replace.
  run(['platform', 'add-lti11', '--name', 'sb', '--consumer-key', sb.key, '--allow-host', '127.0.0.1', '--secret-env', 'PB_HYGIENE_SECRET'], {
    env: { PB_HYGIENE_SECRET: consumerSecret },
  });
  run(['platform', 'add-ltiaas', '--name', 'lt', '--base-url', sb.ltiaasBaseUrl, '--json'], { stdin: apiKey });
  run(['platform', 'add-lti11', '--name', 'edx', '--consumer-key', 'edx-key', '--allow-host', '127.0.0.1'], { stdin: edxInitialSecret });
  run(['platform', 'secret', 'set', 'sb'], { stdin: consumerSecret });
  run(['platform', 'list', '--json']);

  // --- LTIAAS: three launches' ID tokens (ltik on stdin, --ltik-env); each newer service key replaces the older.
  const teacher = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor';
  const learner = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Learner';
  type Launch = { ltik: string; service_key: string };
  const launches: Launch[] = [];
  launches.push(
    await sandboxAdmin<Launch>(sb, 'ltiaas/launches', {
      context_id: 'c2', context_title: 'Chemistry', resource_link_id: 'rl-2', resource_link_title: 'Lab 2',
      user_id: 'teacher', user_name: 'Rosalind Franklin', roles: [teacher],
      line_item: { label: 'Lab 2', score_maximum: 10 },
      members: [{ user_id: 'lu-0', roles: [learner] }, { user_id: 'lu-1', roles: [learner] }],
    }),
  );
  run(['ltiaas', 'idtoken', '--platform', 'lt'], { stdin: launches[0].ltik });
  launches.push(await sandboxAdmin<Launch>(sb, 'ltiaas/launches', { context_id: 'c2', resource_link_id: 'rl-2', user_id: 'lu-0', roles: [learner] }));
  const second = json<{ launch: { service_key: string } }>(run(['ltiaas', 'idtoken', '--platform', 'lt', '--json'], { stdin: launches[1].ltik }));
  expect(second.launch.service_key).toBe('replaced');
  launches.push(await sandboxAdmin<Launch>(sb, 'ltiaas/launches', { context_id: 'c2', resource_link_id: 'rl-2', user_id: 'lu-1', roles: [learner] }));
  run(['ltiaas', 'idtoken', '--platform', 'lt', '--ltik-env', 'PB_HYGIENE_LTIK'], { env: { PB_HYGIENE_LTIK: launches[2].ltik } });
  // An expired ltik: the refusal names no ltik.
  launches.push(await sandboxAdmin<Launch>(sb, 'ltiaas/launches', { context_id: 'c2', resource_link_id: 'rl-2', user_id: 'lu-1', roles: [learner] }));
  await sandboxAdmin(sb, 'ltiaas/revoke', { ltik: launches[3].ltik });
  run(['ltiaas', 'idtoken', '--platform', 'lt'], { stdin: launches[3].ltik, code: 1 });
  run(['ltiaas', 'keys', '--json']);

  // Wrong credentials: the LMS's refusals are reported, the credentials are not.
  run(['platform', 'add-ltiaas', '--name', 'lt-wrong', '--base-url', sb.ltiaasBaseUrl], { stdin: wrongApiKey });
  launches.push(await sandboxAdmin<Launch>(sb, 'ltiaas/launches', { context_id: 'c3', resource_link_id: 'rl-3', user_id: 'lu-9', roles: [learner] }));
  run(['ltiaas', 'idtoken', '--platform', 'lt-wrong'], { stdin: launches[4].ltik, code: 1 });
  run(['platform', 'add-lti11', '--name', 'sb-wrong', '--consumer-key', sb.key, '--allow-host', '127.0.0.1'], { stdin: wrongSecret });
  run(['read-one', '--platform', 'sb-wrong', '--sourcedid', 'sid-0', '--outcome-url', sb.outcomeUrl], { code: 1 });

  // --- Imports.
  const csv = join(inputs, 'tool-grades.csv');
  let body = 'context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url\n';
  for (let i = 0; i < 3; i++) body += `c1,rl-1,u-${i},${i + 6},10,sid-${i},${sb.outcomeUrl}\n`;
  writeFileSync(csv, body);
  run(['import', csv, '--platform', 'sb']);
  const ltCsv = join(inputs, 'ltiaas-grades.csv');
  writeFileSync(ltCsv, 'context_id,resource_link_id,user_id,score_given,score_maximum\nc2,rl-2,lu-0,6,10\nc2,rl-2,lu-1,5,10\n');
  run(['import', ltCsv, '--platform', 'lt', '--json']);

  // Captured launches, verified with the platform's secret from the keyring (one tampered with).
  const launchUrl = 'https://tool.example.org/lti/launch';
  const now = Math.floor(Date.now() / 1000);
  const launchParams = (user: string, nonce: string): Record<string, string> => {
    const p: Record<string, string> = {
      lti_message_type: 'basic-lti-launch-request', lti_version: 'LTI-1p0',
      oauth_consumer_key: sb.key, oauth_nonce: nonce, oauth_signature_method: 'HMAC-SHA1',
      oauth_timestamp: String(now), oauth_version: '1.0', oauth_callback: 'about:blank',
      context_id: 'c1', context_title: 'Biology', resource_link_id: 'rl-1', resource_link_title: 'Quiz 1',
      user_id: user, roles: 'urn:lti:role:ims/lis/Learner', lis_person_name_full: `Learner ${user}`,
      lis_result_sourcedid: `sid-${user.slice(2)}`, lis_outcome_service_url: sb.outcomeUrl,
    };
    p.oauth_signature = oauthSign(launchUrl, p, consumerSecret);
    return { ...p, launch_url: launchUrl, captured_at: new Date((now + 1) * 1000).toISOString() };
  };
  const tampered = { ...launchParams('u-1', `n-${rnd(8)}`), lis_result_sourcedid: 'sid-someone-else' };
  const launchesFile = join(inputs, 'launches.json');
  writeFileSync(launchesFile, JSON.stringify([launchParams('u-0', `n-${rnd(8)}`), tampered], null, 2));
  const launchReport = lastReport(run(['import', launchesFile, '--platform', 'sb', '--json']));
  // The tampered one is kept as an unverified launch: the secret was used to check both.
  expect(launchReport.counts.imported).toBe(2);
  expect(JSON.stringify(launchReport.notes)).toContain('signature mismatch');

  // Proxy-tool requests, MAC-verified with a shared secret from the environment (one forged).
  const proxyRequest = (userid: string, ts: number): Record<string, string> => {
    const p: Record<string, string> = {
      ourguid: 'hygiene-proxy-tool', tcbaseurl: 'https://learn.example.edu', returnurl: '/webapps/blackboard/execute/courseMain',
      locale: 'en_US', direction: 'ltr', timestamp: String(ts), ticket: 'T-1', userid, role: 'COURSE:STUDENT', tcrole: 'STUDENT', course_id: '_41_1',
    };
    p.mac = proxyMac(p, proxySecret);
    return p;
  };
  const at = new Date(now * 1000).toISOString();
  const forged = { ...proxyRequest('_12_1', now * 1000), userid: '_99_1' };
  const proxyFile = join(inputs, 'proxy-requests.txt');
  writeFileSync(proxyFile, [proxyRequest('_12_1', now * 1000), forged].map((p) => `${at} ${new URLSearchParams(p).toString()}`).join('\n') + '\n');
  const proxyReport = lastReport(
    run(['import', proxyFile, '--platform', 'sb', '--proxy-secret-env', 'PB_HYGIENE_PROXY', '--json'], {
      env: { PB_HYGIENE_PROXY: proxySecret },
      code: 1, // a quarantined row
    }),
  );
  expect(proxyReport.counts.imported, JSON.stringify(proxyReport)).toBe(1);
  expect(proxyReport.counts.quarantined, JSON.stringify(proxyReport)).toBe(1);

  // An Open edX lti_provider dump with a consumer secret: dropped, shown in a dry run, then stored.
  const dump = (user: number) =>
    JSON.stringify([
      { model: 'lti_provider.lticonsumer', pk: 1, fields: { consumer_name: 'edX', consumer_key: 'edx-key', consumer_secret: edxDumpSecret, instance_guid: 'edx.example.edu' } },
      { model: 'lti_provider.outcomeservice', pk: 1, fields: { lis_outcome_service_url: sb.outcomeUrl, lti_consumer: 1 } },
      { model: 'lti_provider.ltiuser', pk: user, fields: { lti_consumer: 1, lti_user_id: `ex-${user}`, edx_user: user } },
      { model: 'lti_provider.gradedassignment', pk: user, fields: { user, course_key: 'course-v1:X+Y+Z', usage_key: 'block-v1:X+Y+Z+type@problem+block@q1', outcome_service: 1, lis_result_sourcedid: `edx-sid-${user}`, version_number: 1 } },
    ]);
  writeFileSync(join(inputs, 'lti_provider-a.json'), dump(17));
  writeFileSync(join(inputs, 'lti_provider-b.json'), dump(18));
  run(['import', join(inputs, 'lti_provider-a.json')]);
  run(['import', join(inputs, 'lti_provider-b.json'), '--store-secrets', '--dry-run']);
  run(['import', join(inputs, 'lti_provider-b.json'), '--store-secrets']);
  run(['import', 'list']);
  run(['import', 'show', '3']);

  // --- Reconcile, sync (sid-2 is unknown to the LMS: it fails), dry runs, one-offs.
  run(['reconcile'], { code: 1 }); // sid-2: unknown to the LMS
  run(['reconcile', '--platform', 'lt', '--json']);
  expect(run(['sync', '--dry-run', '--json'])).toContain('[redacted]');
  run(['sync', '--dry-run']);
  run(['sync']); // sid-2 is left alone: a permanent failure nobody changed
  const ltiaasState = async () => (await (await fetch(`${sb.baseUrl}/_sandbox/ltiaas/state`)).json()) as { total_score_writes: number };
  const lti11Writes = async () => ((await (await fetch(`${sb.baseUrl}/_sandbox/results`)).json()) as { total_writes: number }).total_writes;
  expect((await ltiaasState()).total_score_writes, 'sync sent through LTIAAS').toBe(2);
  expect(await lti11Writes(), 'sync sent through LTI 1.1').toBe(2);
  // The dry runs show a signed request, its signature redacted.
  const one = ['--platform', 'sb', '--outcome-url', sb.outcomeUrl];
  expect(run(['send-one', ...one, '--sourcedid', 'sid-0', '--score', '0.5', '--dry-run'])).toContain('oauth_signature="[redacted]"');
  expect(run(['send-one', ...one, '--sourcedid', 'sid-0', '--score', '0.5', '--dry-run', '--json'])).toMatch(/"signature_redacted": true/);
  expect(run(['delete-one', ...one, '--sourcedid', 'sid-1', '--dry-run'])).toContain('oauth_signature="[redacted]"');
  expect(run(['delete-one', ...one, '--sourcedid', 'sid-1', '--dry-run', '--json'])).toMatch(/"signature_redacted": true/);
  run(['read-one', ...one, '--sourcedid', 'sid-0', '--json']);
  const ltTarget = ['--platform', 'lt', '--context', 'c2', '--resource-link', 'rl-2', '--user', 'lu-0'];
  expect(run(['ltiaas', 'send-one', ...ltTarget, '--score', '7', '--max', '10', '--dry-run'])).toContain('SERVICE-AUTH-V1 <API_KEY>:<SERVICE_KEY>');
  run(['ltiaas', 'send-one', ...ltTarget, '--score', '7', '--max', '10', '--dry-run', '--json']);
  run(['ltiaas', 'send-one', ...ltTarget, '--score', '6', '--max', '10', '--json']);
  run(['ltiaas', 'read-one', ...ltTarget, '--json']);
  run(['ltiaas', 'line-items', '--platform', 'lt', '--context', 'c2', '--resource-link', 'rl-2', '--json']);
  // New versions for the window to send: an LTIAAS grade, and the LMS now knows sid-2.
  run(['grade', 'set', ...ltTarget, '--score', '9', '--max', '10']);
  await sandboxAdmin(sb, 'sourcedids', { sourcedids: ['sid-2'] });

  // --- The journal and the reports.
  run(['attempts', '--json']);
  run(['attempts', '--excerpts']);
  run(['export', 'audit', '--out', join(exports, 'audit.csv')]);
  run(['export', 'status', '--out', join(exports, 'status.csv'), '--json']);
  run(['grades', '--json']);
  run(['doctor', '--json']);

  // The ledger as the command line left it. The bridge has held it open all along, so no
  // command was the last to close it: the WAL holds every page the session wrote, not
  // only what the last command wrote before it checkpointed.
  const snapshots: Artifact[] = ledgerFiles().map((a) => ({ ...a, name: `${a.name}, after the command line session` }));
  const wal = snapshots.find((s) => s.name.startsWith('work/ledger.sqlite-wal,'));
  expect(wal?.data.length ?? 0, 'the WAL of the whole command line session').toBeGreaterThan(100_000);

  // --- The window, through the bridge.
  const pageArtifacts: Artifact[] = [];
  /** The page as it is now (dialogs come and go: each is searched while it is open). */
  const snap = async (when: string) => pageArtifacts.push({ name: `page.content() ${when}`, data: Buffer.from(await page.content()) });
  const responses: Promise<Artifact | null>[] = [];
  const requests: Artifact[] = [];
  const consoleLines: string[] = [];
  page.on('response', (r) => {
    responses.push(
      r.body().then(
        (b) => ({ name: `response ${r.request().method()} ${new URL(r.url()).pathname} (${r.status()})`, data: Buffer.concat([Buffer.from(JSON.stringify(r.headers())), b]) }),
        () => null,
      ),
    );
  });
  page.on('request', (r) => {
    requests.push({ name: `request ${r.method()} ${new URL(r.url()).pathname}`, data: Buffer.concat([Buffer.from(r.url() + JSON.stringify(r.headers())), r.postDataBuffer() ?? Buffer.alloc(0)]) });
  });
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
  await page.goto(server.url);
  await expect(page.getByTestId('platforms')).toContainText('sb');
  const before = await ltiaasState();
  const writesBefore = await lti11Writes();

  // Check the LMS (reads through both transports), then import a file and send from the window.
  await page.getByTestId('action-check').click();
  await closeJob(page, 'Check the LMS for every grade', /checked/);
  await page.getByTestId('open-import').click();
  const importing = page.getByRole('dialog', { name: 'Import a file' });
  await importing.getByTestId('import-platform').selectOption('lt');
  await importing.getByTestId('import-file').setInputFiles({
    name: 'week-4.csv', mimeType: 'text/csv',
    buffer: Buffer.from('context_id,resource_link_id,user_id,score_given,score_maximum\nc2,rl-2,lu-1,8,10\n'),
  });
  await expect(importing.getByTestId('import-counts')).toContainText('Would add1');
  await importing.getByTestId('import-commit').click();
  await expect(importing.getByTestId('import-done')).toContainText('Imported as batch');
  await importing.getByTestId('import-close').click();
  await page.getByTestId('action-send-missing').click();
  await closeJob(page, 'Send what the LMS is missing', /sent/);
  const after = await ltiaasState();
  const writesAfter = await lti11Writes();
  expect(after.total_score_writes, 'the window sent through LTIAAS').toBeGreaterThan(before.total_score_writes);
  expect(writesAfter, 'the window sent through LTI 1.1').toBeGreaterThan(writesBefore);

  // An attempt's detail in each transport: timeline, request and response, Copy as curl.
  const clipboard: string[] = [];
  for (const who of ['u-2', 'lu-0']) {
    await page.getByRole('button', { name: new RegExp(`^History of ${who},`) }).click();
    const history = page.getByRole('dialog', { name: new RegExp(`^History: ${who}`) });
    const items = history.getByTestId('timeline-list').locator(':scope > li');
    await expect(items.first()).toBeVisible();
    for (const summary of await history.locator('summary').all()) await summary.click();
    await snap(`with the history of ${who} open`);
    const copies = history.getByTestId('copy-curl');
    expect(await copies.count(), `Copy as curl for ${who}`).toBeGreaterThan(0);
    for (let i = 0; i < (await copies.count()); i++) {
      await copies.nth(i).click();
      await expect(copies.nth(i)).toHaveText('Copied');
      clipboard.push(await page.evaluate(() => navigator.clipboard.readText()));
    }
    expect(clipboard.join('\n')).toContain('curl');
    await history.getByTestId('timeline-close').click();
    await expect(history).toHaveCount(0);
  }

  // Settings, then each platform's dialog; the LTI 1.1 secret and the API key typed again,
  // then the connection test (one signed read).
  await page.getByTestId('open-settings').click();
  const settings = page.getByRole('dialog', { name: 'Settings' });
  await snap('with Settings open');
  await settings.getByTestId('settings-concurrency').fill('3');
  await settings.getByTestId('settings-save').click();
  await expect(settings).toHaveCount(0);
  const edit = (name: string) => page.getByTestId('platforms').getByRole('button', { name: `Edit ${name}`, exact: true });
  await edit('sb').click();
  const editSb = page.getByRole('dialog', { name: 'Edit platform sb' });
  await expect(editSb.getByTestId('platform-secret')).toHaveValue('');
  await editSb.getByTestId('platform-secret').fill(consumerSecret);
  await editSb.getByTestId('platform-save').click();
  const savedSb = page.getByRole('dialog', { name: 'Platform sb saved' });
  await savedSb.getByTestId('test-sourcedid').fill('sid-0');
  await savedSb.getByTestId('test-url').fill(sb.outcomeUrl);
  await savedSb.getByTestId('test-run').click();
  await expect(savedSb.getByTestId('test-result')).toContainText('Connected');
  await snap('with platform sb saved and tested');
  await savedSb.getByTestId('platform-done').click();
  await edit('lt').click();
  const editLt = page.getByRole('dialog', { name: 'Edit platform lt' });
  await editLt.getByLabel('API key').fill(apiKey);
  await editLt.getByTestId('platform-save').click();
  await expect(page.getByRole('dialog', { name: 'Platform lt saved' })).toBeVisible();
  await snap('with platform lt saved');
  await page.getByRole('dialog', { name: 'Platform lt saved' }).getByTestId('platform-done').click();
  await edit('edx').click();
  await expect(page.getByRole('dialog', { name: 'Edit platform edx' })).toBeVisible();
  await snap('with platform edx open for editing');
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('platform-dialog')).toHaveCount(0);

  // What the window holds.
  await snap('at the end');
  const storage = await page.evaluate(async () => ({
    local: JSON.stringify({ ...localStorage }),
    session: JSON.stringify({ ...sessionStorage }),
    indexedDB: JSON.stringify((await indexedDB.databases()).map((d) => d.name)),
    caches: JSON.stringify('caches' in self ? await caches.keys() : []),
    title: document.title + location.href,
  }));
  for (const [k, v] of Object.entries(storage)) pageArtifacts.push({ name: `page ${k}`, data: Buffer.from(v) });
  pageArtifacts.push({ name: 'cookies', data: Buffer.from(JSON.stringify(await context.cookies())) });
  pageArtifacts.push({ name: 'storage state', data: Buffer.from(JSON.stringify(await context.storageState())) });
  pageArtifacts.push({ name: 'clipboard (Copy as curl)', data: Buffer.from(clipboard.join('\n')) });
  pageArtifacts.push({ name: 'console', data: Buffer.from(consoleLines.join('\n')) });
  const bodies = (await Promise.all(responses)).filter((a): a is Artifact => a !== null);
  pageArtifacts.push(...bodies);
  // The two saves carried the typed secrets to the bridge: the search must find them there
  // (so it does look into what the page sent); every other request must be clean.
  const saves = requests.filter((r) => r.name.endsWith('/api/edit_platform'));
  expect(saves.length).toBe(2);
  const typed = scan(saves, patternsFor([{ name: 'consumer secret', value: consumerSecret }, { name: 'API key', value: apiKey }], []));
  expect(typed.some((h) => h.needle === 'consumer secret' && h.form === 'JSON-escaped')).toBe(true);
  expect(typed.some((h) => h.needle === 'API key' && h.form === 'JSON-escaped')).toBe(true);
  pageArtifacts.push(...requests.filter((r) => !saves.includes(r)));

  // The ledger while the bridge has it open, then after every process has closed it.
  snapshots.push(...ledgerFiles().map((a) => ({ ...a, name: `${a.name}, while ui-server has it open` })));
  await stopServer(server);
  server = undefined;
  snapshots.push(...ledgerFiles().map((a) => ({ ...a, name: `${a.name}, after ui-server stopped` })));
  // A stale service key: the refusal names no key.
  await sandboxAdmin(sb, 'ltiaas/revoke', { context_id: 'c2', resource_link_id: 'rl-2' });
  run(['ltiaas', 'send-one', ...ltTarget, '--score', '8', '--max', '10'], { code: 1 });
  run(['attempts', '--json', '--limit', '5']);
  run(['doctor']);
  sandbox.proc.kill();
  sandbox = undefined;
  snapshots.push(...ledgerFiles().map((a) => ({ ...a, name: `${a.name}, after every process closed it` })));

  // --- Every file the session left (the ledger, logs, exports, outputs, staged imports,
  // configuration), the snapshots, and what the window held.
  const files: Artifact[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else files.push({ name: relative(dir, p), data: readFileSync(p) });
    }
  };
  walk(work);
  walk(inputs);
  // What the test wrote itself is input, not output (the edX dump holds its secret by design).
  const written = new Set([csv, ltCsv, launchesFile, proxyFile, join(inputs, 'lti_provider-a.json'), join(inputs, 'lti_provider-b.json')].map((f) => relative(dir, f)));
  for (const f of written) expect(files.some((a) => a.name === f), f).toBe(true);
  const artifacts = [...files.filter((a) => !written.has(a.name)), ...snapshots, ...pageArtifacts];

  // Nothing passes for want of something to search: each artifact kind is there and not empty.
  const named = (re: RegExp) => artifacts.filter((a) => re.test(a.name));
  for (const re of [/^work\/ledger\.sqlite$/, /^work\/ledger\.sqlite-wal/, /^work\/ledger\.sqlite-shm/, /^work\/exports\/audit\.csv$/, /^work\/exports\/status\.csv$/,
    /ui-server\.log$/, /ui-server\.log\.stdout$/, /\.stdout$/, /^page\.content/, /^response POST \/api\//, /^clipboard/]) {
    expect(named(re).length, `an artifact matching ${re}`).toBeGreaterThan(0);
  }
  // (A WAL may be emptied when the last connection closes: the whole session's was checked above.)
  for (const a of [...named(/\.log$/), ...named(/^work\/ledger\.sqlite(,|$)/), ...named(/^work\/exports\//), ...named(/^page\.content|^clipboard|^response POST/)]) {
    expect(a.data.length, `${a.name} is not empty`).toBeGreaterThan(0);
  }
  expect(readFileSync(join(exports, 'audit.csv'), 'utf8').split('\n').length, 'the audit export lists attempts').toBeGreaterThan(10);
  // The logs really are at debug level: every process's log has DEBUG lines, Passback's own among them.
  expect(logFiles.length).toBeGreaterThan(40);
  for (const f of [...logFiles, serverLog]) {
    expect(stripAnsi(readFileSync(f)).toString(), `${relative(dir, f)} is at debug level`).toMatch(/ DEBUG /);
  }
  const allLogs = [...logFiles, serverLog].map((f) => stripAnsi(readFileSync(f)).toString()).join('\n');
  expect(allLogs).toMatch(/DEBUG passback::ltiaas::client: LTIAAS request/);
  expect(stripAnsi(readFileSync(serverLog)).toString()).toMatch(/DEBUG passback::/);

  // --- The search.
  const needles: Needle[] = [
    { name: 'LTI 1.1 consumer secret', value: consumerSecret },
    { name: 'LTIAAS API key', value: apiKey },
    { name: 'edX platform secret (first)', value: edxInitialSecret },
    { name: 'edX dump consumer secret', value: edxDumpSecret },
    { name: 'proxy-tool shared secret', value: proxySecret },
    { name: 'a wrong LTIAAS API key', value: wrongApiKey },
    { name: 'a wrong consumer secret', value: wrongSecret },
    ...launches.flatMap((l, i) => [
      { name: `ltik ${i + 1}`, value: l.ltik },
      { name: `service key ${i + 1}`, value: l.service_key },
    ]),
  ];
  // LTIAAS sends `SCHEME API_KEY:TOKEN` as is (src/ltiaas/client.rs); pairs are searched in
  // base64 all the same, as a Basic-style header would carry them, and OAuth's signing key.
  const pairs: Needle[] = [
    { name: 'consumer key:secret', value: `${sb.key}:${consumerSecret}` },
    { name: 'OAuth signing key', value: `${rfc3986(consumerSecret)}&` },
    ...launches.flatMap((l, i) => [
      { name: `API key:service key ${i + 1}`, value: `${apiKey}:${l.service_key}` },
      { name: `API key:ltik ${i + 1}`, value: `${apiKey}:${l.ltik}` },
    ]),
  ];
  for (const n of needles) expect(n.value.length, n.name).toBeGreaterThanOrEqual(24);
  const patterns = patternsFor(needles, pairs);
  selfTest(needles, patterns);
  // The inputs do hold what was fed in: the search sees it there.
  const fed = scan([{ name: 'inputs/lti_provider-b.json', data: readFileSync(join(inputs, 'lti_provider-b.json')) }], patterns);
  expect(fed.map((h) => h.needle)).toContain('edX dump consumer secret');

  const hits = scan(artifacts, patterns);
  const total = artifacts.reduce((n, a) => n + a.data.length, 0);
  console.log(
    `hygiene: ${artifacts.length} artifacts (${(total / 1024).toFixed(0)} KiB), ${needles.length} needles and ${pairs.length} pairs in ${patterns.length} forms, ` +
      `${logFiles.length + 1} debug logs, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (process.env.PASSBACK_HYGIENE_LIST) {
    for (const a of artifacts) console.log(`  ${a.data.length}\t${a.name}`);
  }
  expect(hits.length, `secrets found:\n${report(hits)}\n`).toBe(0);
});
