// Screenshots of every screen for the README (docs/screenshots/), light and dark,
// from the real UI through the real bridge, a real ledger and the sandbox LMS.
// Not part of the test suite: run `npm --prefix ui run screenshots` (./dev screenshots).
import { test, expect, type Page } from '@playwright/test';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const root = resolve(import.meta.dirname, '../..');
const targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target');
const bin = process.env.PASSBACK_BIN || join(targetDir, 'debug', 'passback');
const uiDir = join(root, 'ui', 'dist');

interface Server {
  /** The address to open: the base URL with the per-run token in its fragment (`#token=…`). */
  url: string;
  /** The same address without the token. */
  baseUrl: string;
  token: string;
  proc: ChildProcessWithoutNullStreams;
}

test.beforeAll(() => {
  if (!existsSync(bin)) {
    throw new Error(`no passback binary at ${bin}: run \`cargo build -p passback\` (honours CARGO_TARGET_DIR) or set PASSBACK_BIN`);
  }
  if (!existsSync(join(uiDir, 'index.html'))) throw new Error(`no built UI in ${uiDir}: run \`npm --prefix ui run build\``);
});

function cli(db: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(bin, ['--db', db, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`passback ${args.join(' ')} failed (${r.status}): ${r.error ?? r.stderr}`);
  return r.stdout;
}

async function startServer(db: string): Promise<Server> {
  const proc = spawn(bin, ['--db', db, 'ui-server', '--listen', '127.0.0.1:0', '--ui-dir', uiDir]);
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`ui-server printed nothing within 20 s: ${stderr}`)), 20_000);
    lines.once('line', (l) => (clearTimeout(timer), ok(l)));
    proc.once('exit', (code) => (clearTimeout(timer), fail(new Error(`ui-server exited with ${code}: ${stderr}`))));
  });
  const info = JSON.parse(first) as { url: string; base_url: string; token: string };
  return { url: info.url, baseUrl: info.base_url, token: info.token, proc };
}

async function stopServer(s: Server): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const exited = new Promise((ok) => s.proc.once('exit', ok));
  s.proc.kill();
  await exited;
}

let dir: string;
let db: string;
let server: Server | undefined;

test.beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'passback-ui-'));
  db = join(dir, 'ledger.sqlite');
});

test.afterEach(async () => {
  if (server) await stopServer(server);
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});


interface Sandbox {
  proc: ChildProcessWithoutNullStreams;
  baseUrl: string;
  outcomeUrl: string;
  key: string;
  secret: string;
}

async function startSandbox(args: string[]): Promise<Sandbox> {
  const proc = spawn(bin, ['sandbox', '--dialect', 'moodle', ...args]);
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the sandbox printed nothing within 20 s: ${stderr}`)), 20_000);
    lines.once('line', (l) => (clearTimeout(timer), ok(l)));
    proc.once('exit', (code) => (clearTimeout(timer), fail(new Error(`the sandbox exited with ${code}: ${stderr}`))));
  });
  const s = JSON.parse(first) as { base_url: string; lti11_outcome_url: string; consumer_key: string; consumer_secret: string };
  return { proc, baseUrl: s.base_url, outcomeUrl: s.lti11_outcome_url, key: s.consumer_key, secret: s.consumer_secret };
}

/** A ledger with platform `sb` (the sandbox) and `n` tool grades for sid-0 … sid-(n-1). */
function ledgerFor(sb: Sandbox, n: number) {
  cli(db, ['platform', 'add-lti11', '--name', 'sb', '--consumer-key', sb.key, '--allow-host', '127.0.0.1',
    '--secret-env', 'PB_SB_SECRET'], { PB_SB_SECRET: sb.secret });
  const csv = join(dir, 'grades.csv');
  let body = 'context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url\n';
  for (let i = 0; i < n; i++) body += `c1,rl-1,u-${i},${(i % 10) + 1},10,sid-${i},${sb.outcomeUrl}\n`;
  writeFileSync(csv, body);
  cli(db, ['import', csv, '--platform', 'sb']);
}


let sandbox: Sandbox | undefined;
test.afterEach(() => {
  sandbox?.proc.kill();
  sandbox = undefined;
});


const out = join(root, 'docs', 'screenshots');

async function shoot(page: Page, name: string) {
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(out, `${name}.png`) });
}

for (const theme of ['light', 'dark'] as const) {
  test(`every screen, ${theme}`, async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.emulateMedia({ colorScheme: theme });
    // An empty ledger: the first-run page.
    server = await startServer(db);
    await page.goto(server.url);
    await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();
    await shoot(page, `empty-${theme}`);
    await page.getByTestId('empty-add-platform').click();
    await page.getByTestId('platform-name').fill('canvas-prod');
    await page.getByTestId('platform-key').fill('ck-2026');
    await page.getByTestId('platform-hosts').fill('canvas.example.edu');
    await shoot(page, `add-platform-${theme}`);
    await page.keyboard.press('Escape');
    await stopServer(server);

    // A course with grades: some sent, some refused by the LMS.
    const known = Array.from({ length: 30 }, (_, i) => `sid-${i}`);
    writeFileSync(join(dir, 'sids.txt'), known.join('\n') + '\n');
    sandbox = await startSandbox(['--sourcedids', join(dir, 'sids.txt'), '--latency-ms', '120']);
    ledgerFor(sandbox, 36);
    const grades = Array.from({ length: 10 }, (_, i) => ['--grade', String(i + 27)]).flat();
    const first = spawnSync(bin, ['--db', db, 'sync', ...grades], { encoding: 'utf8' });
    expect(first.status, first.stderr).toBe(1);
    server = await startServer(db);
    await page.goto(server.url);
    await expect(page.getByTestId('health').getByTestId('cta-text')).toBeVisible();
    await shoot(page, `overview-${theme}`);

    await page.getByTestId('grades-status').selectOption({ label: 'Failed' });
    await expect(page.getByTestId('grades-count')).toHaveText('6 grades');
    await page.getByRole('button', { name: /^History of / }).first().click();
    await page.getByTestId('timeline').locator('summary').first().click();
    await shoot(page, `history-${theme}`);
    await page.getByTestId('timeline-close').click();
    await page.getByTestId('grades-status').selectOption({ label: 'All statuses' });

    await page.getByTestId('action-send-missing').click();
    await expect(page.getByTestId('plan-summary')).toBeVisible();
    await shoot(page, `send-preview-${theme}`);
    await page.getByTestId('job-start').click();
    await expect(page.getByTestId('job-tally')).toContainText(/Done\s*[1-9]/);
    await shoot(page, `send-progress-${theme}`);
    await expect(page.getByTestId('job-summary')).toBeVisible({ timeout: 30_000 });
    await shoot(page, `send-summary-${theme}`);
    await page.getByTestId('job-close').click();

    await page.getByTestId('open-import').click();
    const csv = 'context_id,resource_link_id,user_id,score_given,score_maximum\nc1,rl-2,u-1,7,10\nc1,rl-2,u-2,eight,10\n';
    await page.getByTestId('import-file').setInputFiles({ name: 'quiz-2.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await expect(page.getByTestId('import-counts')).toBeVisible();
    await shoot(page, `import-preview-${theme}`);
    await page.getByTestId('import-close').click();

    await page.getByTestId('open-settings').click();
    await shoot(page, `settings-${theme}`);
  });
}
