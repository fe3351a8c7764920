// What the browser suites share: the built CLI and UI, a throw-away ledger per test
// driven through the real CLI, `passback ui-server` on loopback, and the sandbox LMS.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createWriteStream, existsSync, writeFileSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const root = resolve(import.meta.dirname, '../..');
const targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target');
export const bin = process.env.PASSBACK_BIN || join(targetDir, 'debug', 'passback');
export const uiDir = join(root, 'ui', 'dist');

/** Refuse to run without the binaries the suites drive (a beforeAll). */
export function checkBuilt() {
  if (!existsSync(bin)) {
    throw new Error(`no passback binary at ${bin}: run \`cargo build -p passback\` (honours CARGO_TARGET_DIR) or set PASSBACK_BIN`);
  }
  if (!existsSync(join(uiDir, 'index.html'))) throw new Error(`no built UI in ${uiDir}: run \`npm --prefix ui run build\``);
}

export interface Server {
  /** The address to open: the base URL with the per-run token in its fragment (`#token=…`). */
  url: string;
  /** The same address without the token. */
  baseUrl: string;
  token: string;
  proc: ChildProcessWithoutNullStreams;
  /** With `logFile`: settles once everything the server wrote is in the file. */
  logged?: Promise<void>;
}

export interface ServerOptions {
  /** More environment, e.g. `PASSBACK_LOG: 'debug'`. */
  env?: Record<string, string>;
  /** Keep the server's stderr (its log) in this file, and its stdout in `<logFile>.stdout`. */
  logFile?: string;
}

export function cli(db: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(bin, ['--db', db, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`passback ${args.join(' ')} failed (${r.status}): ${r.error ?? r.stderr}`);
  return r.stdout;
}

export async function startServer(db: string, opts: ServerOptions = {}): Promise<Server> {
  // Ledgers a test trusts are listed beside its ledger, never in the user's own trust list.
  const proc = spawn(bin, ['--db', db, 'ui-server', '--listen', '127.0.0.1:0', '--ui-dir', uiDir], {
    env: { ...process.env, PASSBACK_TRUST_FILE: join(dirname(db), 'trusted-ledgers.json'), ...opts.env },
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let logged: Promise<void> | undefined;
  if (opts.logFile) {
    const log = createWriteStream(opts.logFile);
    const out = createWriteStream(`${opts.logFile}.stdout`);
    proc.stderr.pipe(log);
    proc.stdout.pipe(out);
    logged = Promise.all([finished(log), finished(out)]).then(() => undefined);
  }
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`ui-server printed nothing within 20 s: ${stderr}`)), 20_000);
    lines.once('line', (l) => (clearTimeout(timer), ok(l)));
    proc.once('exit', (code) => (clearTimeout(timer), fail(new Error(`ui-server exited with ${code}: ${stderr}`))));
  });
  const info = JSON.parse(first) as { url: string; base_url: string; token: string };
  return { url: info.url, baseUrl: info.base_url, token: info.token, proc, logged };
}

export async function stopServer(s: Server): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return await s.logged;
  const exited = new Promise((ok) => s.proc.once('exit', ok));
  s.proc.kill();
  await exited;
  await s.logged;
}

export interface Sandbox {
  proc: ChildProcessWithoutNullStreams;
  baseUrl: string;
  outcomeUrl: string;
  key: string;
  secret: string;
  /** The LTIAAS-compatible API: its base URL and the API key it accepts. */
  ltiaasBaseUrl: string;
  ltiaasApiKey: string;
}

export async function startSandbox(args: string[]): Promise<Sandbox> {
  const proc = spawn(bin, ['sandbox', '--dialect', 'moodle', ...args]);
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the sandbox printed nothing within 20 s: ${stderr}`)), 20_000);
    lines.once('line', (l) => (clearTimeout(timer), ok(l)));
    proc.once('exit', (code) => (clearTimeout(timer), fail(new Error(`the sandbox exited with ${code}: ${stderr}`))));
  });
  const s = JSON.parse(first) as {
    base_url: string;
    lti11_outcome_url: string;
    consumer_key: string;
    consumer_secret: string;
    ltiaas_base_url: string;
    ltiaas_api_key: string;
  };
  return {
    proc,
    baseUrl: s.base_url,
    outcomeUrl: s.lti11_outcome_url,
    key: s.consumer_key,
    secret: s.consumer_secret,
    ltiaasBaseUrl: s.ltiaas_base_url,
    ltiaasApiKey: s.ltiaas_api_key,
  };
}

/** A sandbox admin call (`POST /_sandbox/<path>` with a JSON body), e.g. `ltiaas/launches`. */
export async function sandboxAdmin<T = Record<string, unknown>>(sb: Sandbox, path: string, body: unknown): Promise<T> {
  const r = await fetch(`${sb.baseUrl}/_sandbox/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`sandbox ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

/** Ledger `db` with platform `sb` (the sandbox) and `n` tool grades for sid-0 … sid-(n-1). */
export function ledgerFor(db: string, dir: string, sb: Sandbox, n: number) {
  cli(db, ['platform', 'add-lti11', '--name', 'sb', '--consumer-key', sb.key, '--allow-host', '127.0.0.1',
    '--secret-env', 'PB_SB_SECRET'], { PB_SB_SECRET: sb.secret });
  const csv = join(dir, 'grades.csv');
  let body = 'context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url\n';
  for (let i = 0; i < n; i++) body += `c1,rl-1,u-${i},${(i % 10) + 1},10,sid-${i},${sb.outcomeUrl}\n`;
  writeFileSync(csv, body);
  cli(db, ['import', csv, '--platform', 'sb']);
}
