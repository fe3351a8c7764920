// The UI in a real browser (Debian Chromium) against the real bridge and a real
// ledger: `passback ui-server` on loopback, populated through the real CLI.
import { test, expect } from '@playwright/test';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const root = resolve(import.meta.dirname, '../..');
const targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target');
const bin = process.env.PASSBACK_BIN || join(targetDir, 'debug', 'passback');
const uiDir = join(root, 'ui', 'dist');

interface Server {
  url: string;
  proc: ChildProcessWithoutNullStreams;
}

function cli(db: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(bin, ['--db', db, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`passback ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

async function startServer(db: string): Promise<Server> {
  const proc = spawn(bin, ['--db', db, 'ui-server', '--listen', '127.0.0.1:0', '--ui-dir', uiDir]);
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise<string>((ok, fail) => {
    lines.once('line', ok);
    proc.once('exit', (code) => fail(new Error(`ui-server exited with ${code}`)));
  });
  return { url: JSON.parse(first).url as string, proc };
}

let dir: string;
let db: string;
let server: Server | undefined;

test.beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'passback-ui-'));
  db = join(dir, 'ledger.sqlite');
});

test.afterEach(() => {
  server?.proc.kill();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

test('an empty ledger shows the empty state with the first steps', async ({ page }) => {
  server = await startServer(db);
  await page.goto(server.url);
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();
  await expect(page.getByText('passback platform add-lti11 --name canvas')).toBeVisible();
  await expect(page.getByText(db).first()).toBeVisible();
  await expect(page.getByTestId('keyring-status')).toHaveText('Keyring ready');
});

test('platforms and activities from the ledger replace the empty state', async ({ page }) => {
  const secret = `ui-secret-${Date.now()}`;
  cli(db, ['platform', 'add-lti11', '--name', 'canvas-prod', '--consumer-key', 'ck-123',
    '--allow-host', 'canvas.example.edu', '--secret-env', 'PB_UI_SECRET'], { PB_UI_SECRET: secret });
  cli(db, ['grade', 'set', '--platform', 'canvas-prod', '--context', 'bio-101', '--resource-link', 'rl-1',
    '--user', 'u-1', '--score', '7', '--max', '10', '--title', 'Quiz 1', '--learner-name', 'Ada Lovelace']);
  server = await startServer(db);
  await page.goto(server.url);

  const platforms = page.getByTestId('platforms');
  await expect(platforms.getByRole('row', { name: /canvas-prod/ })).toContainText('ck-123');
  await expect(platforms).toContainText('canvas.example.edu');
  await expect(platforms).toContainText('LTI 1.1');
  const quiz = page.getByTestId('activities').getByRole('row', { name: /Quiz 1/ });
  await expect(quiz).toContainText('bio-101');
  await expect(quiz.getByRole('cell').last()).toHaveText('1');
  await expect(page.getByTestId('grades')).toContainText('Cannot send');
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toHaveCount(0);
  expect(await page.content()).not.toContain(secret);

  // Refresh picks up what the CLI changed meanwhile.
  cli(db, ['grade', 'set', '--platform', 'canvas-prod', '--context', 'bio-101', '--resource-link', 'rl-2',
    '--user', 'u-1', '--score', '3', '--max', '5', '--title', 'Lab 2']);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(page.getByTestId('activities').getByRole('row', { name: /Lab 2/ })).toBeVisible();
});

test('when Passback stops answering, the window says so and offers a retry', async ({ page }) => {
  server = await startServer(db);
  await page.goto(server.url);
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();
  server.proc.kill();
  await new Promise((ok) => server!.proc.once('exit', ok));
  await page.getByRole('button', { name: 'Refresh' }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('Passback did not answer');
  await expect(alert).toHaveAttribute('data-error-kind', 'unavailable');
  await expect(alert.getByRole('button', { name: 'Try again' })).toBeVisible();
  server = undefined;
});
