// The UI in a real browser (Debian Chromium) against the real bridge and a real
// ledger: `passback ui-server` on loopback, populated through the real CLI.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkBuilt, cli, startServer, stopServer, type Server } from './workspace';

test.beforeAll(checkBuilt);

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

test('an empty ledger shows the empty state with the first steps', async ({ page }) => {
  server = await startServer(db);
  await page.goto(server.url);
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();
  // The window needs no terminal: the CLI's way is folded away for scripts and servers.
  await expect(page.getByTestId('empty-add-platform')).toBeEnabled();
  const cliSteps = page.getByText('passback platform add-lti11 --name canvas');
  await expect(cliSteps).toBeHidden();
  await page.getByText('For scripts and servers').click();
  await expect(cliSteps).toBeVisible();
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
  const apiBodies: Promise<string>[] = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) apiBodies.push(r.text());
  });
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
  // The secret stays in the keyring: not in the page, not in any answer the UI received.
  expect(await page.content()).not.toContain(secret);
  const bodies = await Promise.all(apiBodies);
  expect(bodies.length).toBeGreaterThan(0);
  for (const b of bodies) expect(b).not.toContain(secret);

  // Refresh picks up what the CLI changed meanwhile.
  cli(db, ['grade', 'set', '--platform', 'canvas-prod', '--context', 'bio-101', '--resource-link', 'rl-2',
    '--user', 'u-1', '--score', '3', '--max', '5', '--title', 'Lab 2']);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(page.getByTestId('activities').getByRole('row', { name: /Lab 2/ })).toBeVisible();
});

test('a damaged ledger shows the core error, its kind and what to do', async ({ page }) => {
  server = await startServer(db);
  await page.goto(server.url);
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();
  // Something outside Passback breaks the ledger while it is open (here: a table renamed
  // through a second SQLite connection). The next read fails in the core with kind "store".
  const damage = spawnSync('python3', ['-c',
    'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("ALTER TABLE platforms RENAME TO platforms_gone"); c.commit()',
    db], { encoding: 'utf8' });
  expect(damage.status, damage.stderr).toBe(0);
  await page.getByRole('button', { name: 'Refresh' }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toHaveAttribute('data-error-kind', 'store');
  await expect(alert.getByRole('heading')).toHaveText('Passback could not read the ledger');
  await expect(alert).toContainText('no such table: platforms');
  await expect(alert).toContainText('passback doctor');
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toHaveCount(0);
});

test('when Passback stops answering, the window says so and offers a retry', async ({ page }) => {
  server = await startServer(db);
  await page.goto(server.url);
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();
  await stopServer(server);
  await page.getByRole('button', { name: 'Refresh' }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('Passback did not answer');
  await expect(alert).toHaveAttribute('data-error-kind', 'unavailable');
  await expect(alert.getByRole('button', { name: 'Try again' })).toBeVisible();
});

test('the bridge token comes from the URL fragment, travels as a header and is kept in memory only', async ({ page }) => {
  server = await startServer(db);
  const { token, baseUrl } = server;
  expect(server.url).toBe(`${baseUrl}#token=${token}`);
  const apiTokens: (string | undefined)[] = [];
  const requestUrls: string[] = [];
  page.on('request', (r) => {
    requestUrls.push(r.url());
    if (new URL(r.url()).pathname.startsWith('/api/')) apiTokens.push(r.headers()['x-passback-token']);
  });
  await page.goto(server.url);
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();

  // Every bridge call carried the token; nothing sent to the server did (a fragment never is).
  expect(apiTokens.length).toBeGreaterThan(0);
  for (const t of apiTokens) expect(t).toBe(token);
  for (const u of requestUrls) expect(u.split('#')[0]).not.toContain(token);
  // Gone from the address bar (path kept), never stored.
  expect(page.url()).toBe(baseUrl);
  const stored = await page.evaluate(() => ({
    local: JSON.stringify({ ...localStorage }),
    session: JSON.stringify({ ...sessionStorage }),
    cookie: document.cookie,
    href: location.href,
  }));
  for (const v of Object.values(stored)) expect(v).not.toContain(token);
  expect((await page.context().cookies()).map((c) => c.value)).not.toContain(token);

  // The page keeps working from memory.
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();
});

test('without the token the bridge refuses and the window shows why', async ({ page }) => {
  server = await startServer(db);
  // The base URL alone: the page loads, its calls are refused.
  await page.goto(server.baseUrl);
  const alert = page.getByRole('alert');
  await expect(alert).toHaveAttribute('data-error-kind', 'invalid');
  await expect(alert).toContainText('X-Passback-Token');
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toHaveCount(0);

  // A reload forgets the token (it lived in memory only): open the printed address again.
  await page.goto('about:blank');
  await page.goto(server.url);
  await expect(page.getByRole('heading', { name: 'No platforms yet' })).toBeVisible();
  await page.reload();
  await expect(page.getByRole('alert')).toHaveAttribute('data-error-kind', 'invalid');
});
