// File → Open ledger… in a real browser through the bridge: a ledger received from a
// colleague opens read-only (the file unchanged, every write refused by the core, no
// keyring entry used), and once trusted it works like one's own.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, checkBuilt, ledgerFor, startSandbox, startServer, stopServer, type Sandbox, type Server } from './workspace';

test.beforeAll(checkBuilt);

let dir: string;
let server: Server | undefined;
let sandbox: Sandbox | undefined;

test.beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'passback-ui-'));
});

test.afterEach(async () => {
  if (server) await stopServer(server);
  server = undefined;
  sandbox?.proc.kill();
  sandbox = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('a ledger from a colleague opens read-only, changes nothing, and works once trusted', async ({ page }) => {
  // The colleague's ledger: three grades, one refused by the LMS (its learner was not enrolled).
  sandbox = await startSandbox(['--sourcedid', 'sid-0', '--sourcedid', 'sid-1']);
  mkdirSync(join(dir, 'colleague'));
  const theirs = join(dir, 'colleague', 'ledger.sqlite');
  ledgerFor(theirs, join(dir, 'colleague'), sandbox, 3);
  const first = spawnSync(bin, ['--db', theirs, 'sync'], { encoding: 'utf8' });
  expect(first.status, first.stderr).toBe(1);
  const before = sha(theirs);

  // My own ledger is empty; I open theirs from the first-run page.
  mkdirSync(join(dir, 'me'));
  server = await startServer(join(dir, 'me', 'ledger.sqlite'));
  await page.goto(server.url);
  await page.getByTestId('empty-open-ledger').click();
  const dialog = page.getByTestId('open-ledger-dialog');
  await dialog.getByTestId('open-ledger-path').fill(join(dir, 'nowhere.sqlite'));
  await dialog.getByTestId('open-ledger-open').click();
  await expect(dialog.getByTestId('open-ledger-error')).toContainText('Choose an existing Passback ledger');
  await dialog.getByTestId('open-ledger-path').fill(theirs);
  await dialog.getByTestId('open-ledger-open').click();
  await expect(dialog).toHaveCount(0);

  // Shown read-only: their grades, no action that writes or sends.
  await expect(page.getByTestId('read-only-banner')).toBeVisible();
  await expect(page.getByTestId('read-only-pill')).toHaveText('Read-only');
  await expect(page.getByTestId('grades-count')).toHaveText('3 grades');
  await expect(page.getByTestId('failures')).toContainText('Grade slot unknown to the LMS — 1 grade');
  for (const id of ['open-import', 'add-platform', 'action-check', 'action-send-failed', 'action-send-missing', 'retry-group', 'cta-send']) {
    await expect(page.getByTestId(id).first(), id).toBeDisabled();
  }
  // The history of a grade still reads.
  await page.getByTestId('grade-history').first().click();
  await expect(page.getByTestId('timeline-list')).toBeVisible();
  await page.getByTestId('timeline-close').click();

  // The core refuses writes itself, whatever a page asks.
  const refused = await fetch(`${server.baseUrl}api/start_sync`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Passback-Token': server.token },
    body: JSON.stringify({ filter: { status: [], platform: null, context: null, activity: null, learner: null, grades: [], cause: [] }, only: ['failed'], force_lower: false, verify: false, dry_run: false, concurrency: 4, rate: null, timeout_secs: null }),
  });
  expect(refused.status).toBeGreaterThanOrEqual(400);
  expect(((await refused.json()) as { kind: string }).kind).toBe('read_only');
  // The keyring is withheld: the platform's secret is never asked for.
  await expect(page.getByTestId('keyring-status')).toHaveText('Keyring not used');
  await expect(page.getByTestId('keyring-status')).toHaveAttribute('title', /not trusted yet/);
  // The file is as it came.
  expect(sha(theirs)).toBe(before);
  expect(existsSync(join(dir, 'me', 'trusted-ledgers.json'))).toBe(false);

  // Trust it (a confirmation first), then fix the failed grade like one's own.
  await page.getByTestId('trust-ledger').click();
  await expect(page.getByTestId('trust-dialog')).toContainText('only if you know where it came from');
  await page.getByTestId('trust-confirm').click();
  await expect(page.getByTestId('read-only-banner')).toHaveCount(0);
  await expect(page.getByTestId('keyring-status')).toHaveText('Keyring ready');
  expect(readFileSync(join(dir, 'me', 'trusted-ledgers.json'), 'utf8')).toContain('colleague');

  const reg = await fetch(`${sandbox.baseUrl}/_sandbox/sourcedids`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sourcedids: ['sid-2'] }),
  });
  expect(reg.ok).toBe(true);
  await page.getByTestId('retry-group').click();
  const job = page.getByTestId('job-dialog');
  await job.getByTestId('job-start').click();
  await expect(job.getByTestId('job-summary')).toHaveText('1 sent.');
  await job.getByTestId('job-close').click();
  await expect(page.getByTestId('health')).toContainText('Everything here is in the gradebook.');
});
