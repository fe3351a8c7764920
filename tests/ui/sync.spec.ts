// Sending from the window, in a real browser against the real bridge, a real ledger
// and the real sandbox LMS: the preview of the plan, live progress streamed from the
// engine, Cancel, and grades that end `in_sync`.
import { test, expect, type Page } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, checkBuilt, cli, ledgerFor, startSandbox, startServer, stopServer, type Sandbox, type Server } from './workspace';

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


async function showStatus(page: Page, label: string) {
  await page.getByTestId('grades-status').selectOption({ label });
}

let sandbox: Sandbox | undefined;
test.afterEach(() => {
  sandbox?.proc.kill();
  sandbox = undefined;
});

test('send all failed grades: a preview, live progress, and they turn in_sync', async ({ page }) => {
  // The LMS knows two of four learners' grade slots: the first sync fails the others.
  sandbox = await startSandbox(['--sourcedid', 'sid-0', '--sourcedid', 'sid-1']);
  ledgerFor(db, dir, sandbox, 4);
  const first = spawnSync(bin, ['--db', db, 'sync'], { encoding: 'utf8' });
  expect(first.status, first.stderr).toBe(1);
  // The learners are enrolled now.
  const reg = await fetch(`${sandbox.baseUrl}/_sandbox/sourcedids`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sourcedids: ['sid-2', 'sid-3'] }),
  });
  expect(reg.ok).toBe(true);

  server = await startServer(db);
  await page.goto(server.url);
  await showStatus(page, 'Failed');
  await expect(page.getByTestId('grades-count')).toHaveText('2 grades');

  await page.getByTestId('action-send-failed').click();
  const dialog = page.getByRole('dialog', { name: 'Send all failed grades' });
  await expect(dialog.getByTestId('plan-summary')).toContainText('2 grades will be sent');
  await dialog.getByTestId('job-start').click();
  await expect(dialog.getByTestId('job-summary')).toHaveText('2 sent.');
  await expect(dialog.getByTestId('job-tally')).toContainText('2 / 2');
  await dialog.getByTestId('job-close').click();
  await expect(dialog).toHaveCount(0);

  await expect(page.getByTestId('grades-count')).toHaveText('0 grades');
  await showStatus(page, 'In the gradebook');
  await expect(page.getByTestId('grades-count')).toHaveText('4 grades');
  // The LMS holds what the ledger does.
  const results = (await (await fetch(`${sandbox.baseUrl}/_sandbox/results`)).json()) as { results: Record<string, unknown> };
  expect(Object.keys(results.results).sort()).toEqual(['sid-0', 'sid-1', 'sid-2', 'sid-3']);

  // The grade's history: the refusal, then the send that worked; copied as curl without the secret.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
  await page.getByRole('button', { name: /^History of u-2,/ }).click();
  const history = page.getByRole('dialog', { name: /^History: u-2/ });
  const items = history.getByTestId('timeline-list').locator(':scope > li');
  await expect(items.first()).toContainText('Send (replaceResult)');
  await expect(items.first()).toContainText('success');
  await expect(history).toContainText('Grade slot unknown to the LMS');
  await history.getByTestId('copy-curl').first().click();
  await expect(history.getByTestId('copy-curl').first()).toHaveText('Copied');
  const curl = await page.evaluate(() => navigator.clipboard.readText());
  expect(curl).toContain(`curl -X POST '${sandbox.outcomeUrl}'`);
  expect(curl).toContain('oauth_signature="[redacted]"');
  expect(curl).toContain('replaceResultRequest');
  expect(curl).not.toContain(sandbox.secret);
  await history.getByTestId('timeline-close').click();
  await expect(history).toHaveCount(0);
});

test('check the LMS reads without writing, and a selected grade is sent alone', async ({ page }) => {
  sandbox = await startSandbox(['--sourcedid', 'sid-0', '--sourcedid', 'sid-1', '--sourcedid', 'sid-2']);
  ledgerFor(db, dir, sandbox, 3);
  server = await startServer(db);
  await page.goto(server.url);
  await expect(page.getByTestId('grades-count')).toHaveText('3 grades');

  await page.getByTestId('action-check').click();
  const check = page.getByRole('dialog', { name: 'Check the LMS for every grade' });
  await check.getByTestId('job-start').click();
  await expect(check.getByTestId('job-summary')).toHaveText('3 checked.');
  await check.getByTestId('job-close').click();
  await showStatus(page, 'Missing in the LMS');
  await expect(page.getByTestId('grades-count')).toHaveText('3 grades');
  let results = (await (await fetch(`${sandbox.baseUrl}/_sandbox/results`)).json()) as { total_writes: number };
  expect(results.total_writes).toBe(0);

  await page.getByRole('checkbox', { name: /^Select u-1,/ }).check();
  await page.getByTestId('action-send-selected').click();
  const send = page.getByRole('dialog', { name: 'Send 1 selected grade' });
  await expect(send.getByTestId('plan-summary')).toContainText('1 grade will be sent');
  await send.getByTestId('job-start').click();
  await expect(send.getByTestId('job-summary')).toHaveText('1 sent.');
  await send.getByTestId('job-close').click();
  await expect(page.getByTestId('grades-count')).toHaveText('2 grades');
  results = (await (await fetch(`${sandbox.baseUrl}/_sandbox/results`)).json()) as { total_writes: number };
  expect(results.total_writes).toBe(1);
});

test('cancel a slow sync: what was sent stays sent, the rest is not tried', async ({ page }) => {
  const ids = Array.from({ length: 60 }, (_, i) => `sid-${i}`);
  writeFileSync(join(dir, 'sids.txt'), ids.join('\n') + '\n');
  sandbox = await startSandbox(['--sourcedids', join(dir, 'sids.txt'), '--latency-ms', '250']);
  ledgerFor(db, dir, sandbox, 60);
  server = await startServer(db);
  await page.goto(server.url);

  await page.getByTestId('action-send-missing').click();
  const dialog = page.getByRole('dialog', { name: 'Send what the LMS is missing' });
  await expect(dialog.getByTestId('plan-summary')).toContainText('60 grades will be sent');
  await dialog.getByTestId('job-start').click();
  // Progress arrives while the run works; Escape does not close a running job.
  await expect(dialog.getByTestId('job-tally')).toContainText(/Done\s*[1-9]\d*\s*\/\s*60/);
  await page.keyboard.press('Escape');
  await expect(dialog).toBeVisible();
  await dialog.getByTestId('job-cancel').click();
  await expect(dialog.getByTestId('job-summary')).toContainText('Cancelled.');
  await expect(dialog.getByTestId('job-summary')).toContainText('not tried');
  // "Done" counts what was sent, not what the Cancel stopped before trying it.
  const summary = await dialog.getByTestId('job-summary').innerText();
  const sentNow = Number(/(\d+) sent/.exec(summary)?.[1]);
  await expect(dialog.getByTestId('job-tally')).toContainText(new RegExp(`Done\\s*${sentNow}\\s*/\\s*60`));
  await dialog.getByTestId('job-close').click();

  await showStatus(page, 'In the gradebook');
  // The count changes once the filtered page arrives; all 60 would mean Cancel did nothing.
  await expect(page.getByTestId('grades-count')).not.toHaveText('60 grades');
  const sent = Number((await page.getByTestId('grades-count').innerText()).split(' ')[0]);
  expect(sent).toBeGreaterThan(0);
  expect(sent).toBeLessThan(60);
  const results = (await (await fetch(`${sandbox.baseUrl}/_sandbox/results`)).json()) as { results: Record<string, unknown> };
  expect(Object.keys(results.results).length).toBe(sent);
});

test('the overview counts by course, sends what never reached the LMS, and retries a failure group', async ({ page }) => {
  sandbox = await startSandbox(['--sourcedid', 'sid-0', '--sourcedid', 'sid-1']);
  ledgerFor(db, dir, sandbox, 4);
  // The first sync leaves two grades failed: their slots are unknown to the LMS.
  expect(spawnSync(bin, ['--db', db, 'sync'], { encoding: 'utf8' }).status).toBe(1);
  cli(db, ['grade', 'set', '--platform', 'sb', '--context', 'c1', '--resource-link', 'rl-1', '--user', 'u-0',
    '--score', '10', '--max', '10']);
  server = await startServer(db);
  await page.goto(server.url);

  const health = page.getByTestId('health');
  await expect(health.getByTestId('place')).toHaveCount(1);
  await expect(health.getByRole('img')).toHaveAttribute('aria-label', /In the gradebook: 1, .*Failed: 2/);
  await expect(health.getByTestId('cta-text')).toContainText('3 grades never reached sb');
  const failures = health.getByTestId('failures');
  await expect(failures).toContainText('Grade slot unknown to the LMS — 2 grades');
  await expect(page.getByTestId('last-run')).toContainText('Last send');

  // Enrol the two learners, then retry exactly that group.
  await fetch(`${sandbox.baseUrl}/_sandbox/sourcedids`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sourcedids: ['sid-2', 'sid-3'] }),
  });
  await failures.getByTestId('retry-group').click();
  const retry = page.getByRole('dialog', { name: /^Retry: Grade slot unknown/ });
  await expect(retry.getByTestId('plan-summary')).toContainText('2 grades will be sent');
  await retry.getByTestId('job-start').click();
  await expect(retry.getByTestId('job-summary')).toHaveText('2 sent.');
  await retry.getByTestId('job-close').click();
  await expect(page.getByTestId('failures')).toHaveCount(0);

  // The changed grade is what is left: the call to action sends it.
  await expect(health.getByTestId('cta-text')).toContainText('1 grade never reached sb');
  await health.getByTestId('cta-send').click();
  const send = page.getByRole('dialog', { name: /missing grades to sb/ });
  await send.getByTestId('job-start').click();
  await expect(send.getByTestId('job-summary')).toHaveText('1 sent.');
  await send.getByTestId('job-close').click();
  await expect(page.getByTestId('health')).toContainText('Everything here is in the gradebook.');
  await expect(page.getByTestId('grades-count')).toHaveText('4 grades');
});

test('import a file from the window: the preview names the bad row, then the grades arrive', async ({ page }) => {
  sandbox = await startSandbox(['--sourcedid', 'sid-0', '--sourcedid', 'sid-1']);
  cli(db, ['platform', 'add-lti11', '--name', 'sb', '--consumer-key', sandbox.key, '--allow-host', '127.0.0.1',
    '--secret-env', 'PB_SB_SECRET'], { PB_SB_SECRET: sandbox.secret });
  server = await startServer(db);
  await page.goto(server.url);

  await page.getByTestId('open-import').click();
  const dialog = page.getByRole('dialog', { name: 'Import a file' });
  await expect(dialog.getByTestId('import-platform')).toHaveValue('sb');
  const csv =
    'context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url\n' +
    `c1,rl-1,u-0,7,10,sid-0,${sandbox.outcomeUrl}\n` +
    `c1,rl-1,u-1,twelve,10,sid-1,${sandbox.outcomeUrl}\n` +
    `c1,rl-1,u-2,9,10,sid-2,${sandbox.outcomeUrl}\n`;
  await dialog.getByTestId('import-file').setInputFiles({ name: 'week-3.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await expect(dialog.getByTestId('import-format')).toContainText('week-3.csv: Tool grade export (CSV), platform sb');
  await expect(dialog.getByTestId('import-counts')).toContainText('Would add2');
  await expect(dialog.getByTestId('import-issues')).toContainText('line 3');
  // Nothing is written by the preview.
  expect(JSON.parse(cli(db, ['grades', '--json'])).length).toBe(0);

  await dialog.getByTestId('import-commit').click();
  await expect(dialog.getByTestId('import-done')).toContainText('Imported as batch');
  await expect(dialog.getByTestId('import-counts')).toContainText('Added2');
  await dialog.getByTestId('import-close').click();
  await expect(page.getByTestId('grades-count')).toHaveText('2 grades');
  await expect(page.getByTestId('health').getByTestId('cta-text')).toContainText('2 grades never reached sb');

  // And they can be sent from here: the call to action.
  await page.getByTestId('health').getByTestId('cta-send').click();
  const send = page.getByRole('dialog', { name: /missing grades to sb/ });
  await send.getByTestId('job-start').click();
  await expect(send.getByTestId('job-summary')).toContainText('1 sent');
  await expect(send.getByTestId('job-summary')).toContainText('1 failed');
  await expect(send.getByTestId('job-causes')).toContainText('Grade slot unknown to the LMS');
});

test('settings: the dark theme applies at once, and the sending choices reach the plan', async ({ page }) => {
  sandbox = await startSandbox(['--sourcedid', 'sid-0']);
  ledgerFor(db, dir, sandbox, 1);
  server = await startServer(db);
  await page.goto(server.url);
  const background = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  expect(await background()).toBe('rgb(244, 246, 248)');

  await page.getByTestId('open-settings').click();
  const settings = page.getByRole('dialog', { name: 'Settings' });
  await settings.getByRole('radio', { name: 'Dark' }).check();
  await settings.getByTestId('settings-concurrency').fill('0');
  await expect(settings.getByRole('alert')).toContainText('from 1 to 64');
  await expect(settings.getByTestId('settings-save')).toBeDisabled();
  await settings.getByTestId('settings-concurrency').fill('2');
  await settings.getByTestId('settings-save').click();
  await expect(settings).toHaveCount(0);
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  expect(await background()).toBe('rgb(17, 22, 28)');
  // Kept on this computer, never a secret.
  const stored = await page.evaluate(() => localStorage.getItem('passback.settings'));
  expect(JSON.parse(stored ?? '{}')).toMatchObject({ theme: 'dark', concurrency: 2 });
  expect(stored).not.toContain(sandbox.secret);

  // The job carries the settings: the start request says concurrency 2.
  const started = page.waitForRequest((r) => r.url().endsWith('/api/start_sync'));
  await page.getByTestId('action-send-missing').click();
  await page.getByTestId('job-start').click();
  expect(JSON.parse((await started).postData() ?? '{}')).toMatchObject({ concurrency: 2, force_lower: false });
  await expect(page.getByTestId('job-summary')).toHaveText('1 sent.');
});

test('add a platform in the window: the secret goes to the keyring only, and the connection test reads', async ({ page }) => {
  sandbox = await startSandbox(['--sourcedid', 'sid-0']);
  server = await startServer(db);
  const bodies: Promise<string>[] = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) bodies.push(r.text());
  });
  await page.goto(server.url);
  await page.getByTestId('empty-add-platform').click();
  const dialog = page.getByRole('dialog', { name: 'Add a platform' });
  await dialog.getByTestId('platform-name').fill('sb');
  await dialog.getByTestId('platform-key').fill(sandbox.key);
  await dialog.getByTestId('platform-secret').fill(sandbox.secret);
  await dialog.getByTestId('platform-hosts').fill('127.0.0.1');
  await dialog.getByTestId('platform-save').click();
  const added = page.getByRole('dialog', { name: 'Platform sb added' });
  await expect(added.getByTestId('platform-added')).toContainText(`Consumer key ${sandbox.key}`);

  // A wrong sourcedid: the LMS answers, and says why it is not a grade it knows.
  await added.getByTestId('test-sourcedid').fill('sid-404');
  await added.getByTestId('test-url').fill(sandbox.outcomeUrl);
  await added.getByTestId('test-run').click();
  await expect(added.getByTestId('test-result')).toContainText('Not connected');
  await added.getByTestId('test-sourcedid').fill('sid-0');
  await added.getByTestId('test-run').click();
  await expect(added.getByTestId('test-result')).toContainText('Connected');
  await added.getByTestId('platform-done').click();
  await expect(page.getByTestId('platforms').getByRole('row', { name: /sb/ })).toContainText(sandbox.key);

  // The secret is in the keyring (the CLI signs with it) and nowhere in the page.
  expect(await page.content()).not.toContain(sandbox.secret);
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  expect(storage).not.toContain(sandbox.secret);
  for (const b of await Promise.all(bodies)) expect(b).not.toContain(sandbox.secret);
  const csv = join(dir, 'one.csv');
  writeFileSync(csv, 'context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url\n' +
    `c1,rl-1,u-0,7,10,sid-0,${sandbox.outcomeUrl}\n`);
  cli(db, ['import', csv, '--platform', 'sb']);
  const sync = spawnSync(bin, ['--db', db, 'sync'], { encoding: 'utf8' });
  expect(sync.status, sync.stderr).toBe(0);
});

/**
 * The keyring's Passback entries (their account names), through libsecret's own tool.
 * A control entry this test stores itself must be among them: a search that answers
 * without it (gnome-keyring does, now and then, right after other clients' writes) is
 * asked again, so an entry's absence is never read from an incomplete answer.
 */
async function keyringAccounts(): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('secret-tool', ['search', '--all', 'service', 'passback'], { encoding: 'utf8' });
    expect(r.error, 'secret-tool (apt package libsecret-tools) runs').toBeUndefined();
    // It prints each item's attributes on stderr and its secret on stdout.
    const names = `${r.stdout}\n${r.stderr}`
      .split('\n')
      .filter((l) => l.startsWith('attribute.username = '))
      .join('\n');
    if (names.includes('test-control-entry')) return names;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error('the keyring never listed the control entry');
}

function storeControlEntry() {
  const r = spawnSync('secret-tool', ['store', '--label=control', 'service', 'passback', 'username', 'test-control-entry'], {
    input: 'not-a-secret',
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
}

test('edit and remove a platform in the window: the secret is kept or replaced, removal asks twice when grades would go', async ({ page }) => {
  sandbox = await startSandbox(['--sourcedid', 'sid-0', '--sourcedid', 'sid-1']);
  ledgerFor(db, dir, sandbox, 2);
  server = await startServer(db);
  await page.goto(server.url);

  // Edit: the secret field left empty keeps the stored secret, for the hosts it was stored for.
  await page.getByTestId('platforms').getByTestId('edit-platform').click();
  const edit = page.getByRole('dialog', { name: 'Edit platform sb' });
  await expect(edit.getByTestId('platform-name')).toHaveValue('sb');
  await expect(edit.getByTestId('platform-name')).toHaveAttribute('readonly', '');
  await expect(edit.getByTestId('platform-hosts')).toHaveValue('127.0.0.1');
  await expect(edit.getByTestId('platform-secret')).toHaveValue('');
  await edit.getByTestId('platform-key').fill(sandbox.key);
  await edit.getByTestId('platform-save').click();
  await page.getByRole('dialog', { name: 'Platform sb saved' }).getByTestId('platform-done').click();
  // Another host: the kept secret does not follow it there until it is typed again.
  await page.getByTestId('platforms').getByTestId('edit-platform').click();
  await edit.getByTestId('platform-hosts').fill('127.0.0.1, LMS.example.edu');
  await edit.getByTestId('platform-save').click();
  await expect(edit.getByTestId('platform-error')).toContainText('lms.example.edu is a new host');
  await expect(page.getByTestId('platforms')).not.toContainText('lms.example.edu');
  await edit.getByTestId('platform-secret').fill(sandbox.secret);
  await edit.getByTestId('platform-save').click();
  const saved = page.getByRole('dialog', { name: 'Platform sb saved' });
  await saved.getByTestId('platform-done').click();
  await expect(page.getByTestId('platforms')).toContainText('127.0.0.1, lms.example.edu');
  // The secret still signs: both grades reach the LMS.
  await page.getByTestId('action-send-missing').click();
  const send = page.getByTestId('job-dialog');
  await send.getByTestId('job-start').click();
  await expect(send.getByTestId('job-summary')).toHaveText('2 sent.');
  await send.getByTestId('job-close').click();

  // Remove: asked once; the platform has grades, so asked again with what would go.
  storeControlEntry();
  // This ledger's entry (other tests in the same keyring session have their own "sb").
  const ledgerId = (JSON.parse(cli(db, ['doctor', '--json'])) as { ledger_id: string }).ledger_id;
  const entry = `ledger-${ledgerId}/platform/sb`;
  expect(await keyringAccounts()).toContain(entry);
  await page.getByTestId('platforms').getByTestId('remove-platform').click();
  const remove = page.getByTestId('remove-dialog');
  await remove.getByTestId('remove-confirm').click();
  await expect(remove.getByTestId('remove-conflict')).toContainText('has 2 grade(s)');
  await expect(page.getByTestId('platforms')).toContainText('sb');
  await remove.getByTestId('remove-force').click();
  await expect(page.getByTestId('empty-state')).toBeVisible();
  expect(await keyringAccounts()).not.toContain(entry);
});

test('sort the grades by a column: sorted by the core, and a third click restores the listing order', async ({ page }) => {
  // Four grades (1 … 4 out of 10); the LMS knows two learners, so two fail.
  sandbox = await startSandbox(['--sourcedid', 'sid-0', '--sourcedid', 'sid-1']);
  ledgerFor(db, dir, sandbox, 4);
  const first = spawnSync(bin, ['--db', db, 'sync'], { encoding: 'utf8' });
  expect(first.status, first.stderr).toBe(1);
  server = await startServer(db);
  await page.goto(server.url);
  const table = page.getByTestId('grades');
  const firstRow = table.locator('tbody tr:not([aria-hidden])').first();
  await expect(firstRow).toContainText('u-0');

  await page.getByTestId('sort-score').click();
  await expect(table.getByRole('columnheader', { name: 'Score' })).toHaveAttribute('aria-sort', 'ascending');
  await expect(firstRow).toContainText('1 / 10');
  await page.getByTestId('sort-score').click();
  await expect(table.getByRole('columnheader', { name: 'Score' })).toHaveAttribute('aria-sort', 'descending');
  await expect(firstRow).toContainText('4 / 10');

  // Status: the most urgent first; text and status filters still apply.
  await page.getByTestId('sort-status').click();
  await expect(table.getByRole('columnheader', { name: 'Score' })).toHaveAttribute('aria-sort', 'none');
  await expect(firstRow.locator('.status')).toHaveText('Failed');
  await page.getByTestId('grades-search').fill('u-3');
  await expect(page.getByTestId('grades-count')).toHaveText('1 grade');
  await expect(firstRow).toContainText('u-3');
  await page.getByTestId('grades-search').fill('');
  await page.getByTestId('sort-status').click();
  await expect(firstRow.locator('.status')).toHaveText('In the gradebook');
  await page.getByTestId('sort-status').click();
  await expect(table.getByRole('columnheader', { name: 'Status' })).toHaveAttribute('aria-sort', 'none');
  await expect(firstRow).toContainText('u-0');
});
