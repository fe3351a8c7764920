// The demo workspace in the window: every screen has something to show, and the
// failed grades it starts with are fixed live against its sandbox LMS.
import { test, expect } from '@playwright/test';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bin, checkBuilt, startServer, stopServer, type Server } from './workspace';

test.beforeAll(checkBuilt);

let dir: string;
let server: Server | undefined;
let demo: ChildProcessWithoutNullStreams | undefined;

test.beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'passback-ui-'));
});

test.afterEach(async () => {
  if (server) await stopServer(server);
  server = undefined;
  demo?.kill();
  demo = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** `passback demo`: seeds the demo ledger and keeps its sandbox LMS running. */
async function startDemo(db: string): Promise<void> {
  demo = spawn(bin, ['--db', db, 'demo']);
  let stderr = '';
  demo.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: demo.stdout });
  await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`passback demo printed nothing within 30 s: ${stderr}`)), 30_000);
    lines.once('line', (l) => (clearTimeout(timer), ok(l)));
    demo!.once('exit', (code) => (clearTimeout(timer), fail(new Error(`passback demo exited with ${code}: ${stderr}`))));
  });
}

test('the demo shows every screen with data and fixes its failed grades live', async ({ page }) => {
  const db = join(dir, 'demo.sqlite');
  await startDemo(db);
  server = await startServer(db);
  await page.goto(server.url);
  await expect(page.getByTestId('demo-banner')).toBeVisible();

  // The overview: a course with grades in several statuses, and failures by cause.
  const health = page.getByTestId('health');
  await expect(health.getByTestId('place')).toContainText('BIO 101: Cell Biology');
  await expect(health.getByTestId('failures')).toContainText('Grade slot unknown to the LMS — 2 grades');
  await expect(health.getByTestId('failures')).toContainText('No longer a student — 1 grade');
  await expect(health.getByTestId('failures')).toContainText('Cannot send — 2 grades');
  // The grades table, and a grade's history with what was sent and answered.
  await expect(page.getByTestId('grades-count')).toHaveText('12 grades');
  await page.getByTestId('grades-status').selectOption('failed');
  await expect(page.getByTestId('grades-count')).toHaveText('3 grades');
  await page.getByTestId('grade-history').first().click();
  await expect(page.getByTestId('timeline-list')).toContainText('Send (replaceResult)');
  await page.getByTestId('timeline-close').click();
  await page.getByTestId('grades-status').selectOption('');

  // The learners relaunched: retrying the group sends both, live.
  const group = health.locator('li', { hasText: 'Grade slot unknown to the LMS' });
  await group.getByTestId('retry-group').click();
  const job = page.getByTestId('job-dialog');
  await expect(job.getByTestId('plan-summary')).toContainText('2 grades will be sent');
  await job.getByTestId('job-start').click();
  await expect(job.getByTestId('job-summary')).toHaveText('2 sent.');
  await job.getByTestId('job-close').click();
  await expect(health.getByTestId('failures')).not.toContainText('Grade slot unknown');
  await expect(page.getByTestId('last-run')).toContainText('Last send');

  // Import has a practice file: its preview names the mistyped row.
  await page.getByTestId('open-import').click();
  const imp = page.getByTestId('import-dialog');
  await imp.getByTestId('import-sample').click();
  await expect(imp.getByTestId('import-format')).toContainText('quiz-1-remarked.csv: Tool grade export (CSV)');
  await expect(imp.getByTestId('import-issues')).toContainText('line 4');
  await imp.getByTestId('import-commit').click();
  await expect(imp.getByTestId('import-done')).toContainText('Imported as batch');
  await imp.getByTestId('import-close').click();
  // The re-marked grades are new versions the LMS does not have yet: send them.
  await page.getByTestId('action-send-missing').click();
  await expect(job.getByTestId('plan-summary')).toContainText('will be sent');
  await job.getByTestId('job-start').click();
  await expect(job.getByTestId('job-summary')).toContainText('sent');
  await job.getByTestId('job-close').click();
});
