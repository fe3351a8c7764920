// The window in Arabic: chosen in Settings (or followed from the browser's language),
// the layout mirrored right to left, numbers and dates written by Intl for Arabic,
// and the same actions working in either language.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, checkBuilt, ledgerFor, startSandbox, startServer, stopServer, type Sandbox, type Server } from './workspace';

test.beforeAll(checkBuilt);

let dir: string;
let db: string;
let server: Server | undefined;
let sandbox: Sandbox | undefined;

test.beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'passback-ui-'));
  db = join(dir, 'ledger.sqlite');
});

test.afterEach(async () => {
  if (server) await stopServer(server);
  server = undefined;
  sandbox?.proc.kill();
  sandbox = undefined;
  rmSync(dir, { recursive: true, force: true });
});

test('Arabic from Settings: right to left, Arabic numbers and dates, and sending still works', async ({ page }) => {
  // 12 grades; the LMS knows 10 learners, so 2 fail and await a retry.
  sandbox = await startSandbox(Array.from({ length: 10 }, (_, i) => ['--sourcedid', `sid-${i}`]).flat());
  ledgerFor(db, dir, sandbox, 12);
  const first = spawnSync(bin, ['--db', db, 'sync'], { encoding: 'utf8' });
  expect(first.status, first.stderr).toBe(1);

  server = await startServer(db);
  await page.goto(server.url);
  const html = page.locator('html');
  await expect(html).toHaveAttribute('dir', 'ltr');
  await expect(page.getByTestId('grades-count')).toHaveText('12 grades');

  await page.getByTestId('open-settings').click();
  await page.getByTestId('settings-language-ar').check();
  await page.getByTestId('settings-save').click();

  await expect(html).toHaveAttribute('dir', 'rtl');
  await expect(html).toHaveAttribute('lang', 'ar');
  await expect(page.getByRole('heading', { name: 'الدرجات', exact: true })).toBeVisible();
  // Numbers as Intl writes them for Arabic, with Arabic plurals (12 takes the singular noun).
  const twelve = await page.evaluate(() => new Intl.NumberFormat('ar').format(12));
  await expect(page.getByTestId('grades-count')).toHaveText(`${twelve} درجة`);
  await expect(page.getByTestId('health').getByTestId('cta-text')).toContainText('درجتان لم تصلا إلى sb');
  // The date of the last run, formatted for Arabic.
  await expect(page.getByTestId('last-run')).toContainText('آخر إرسال');
  // Arabic month names, no English ones ("Nov").
  await expect(page.getByTestId('last-run')).not.toContainText(/[A-Za-z]/);
  // Failures by cause, with the fix in Arabic (the core writes its hints in English).
  await expect(page.getByTestId('failures')).toContainText('خانة الدرجة غير معروفة لدى نظام التعلّم');
  await expect(page.getByTestId('failures')).toContainText('على المتعلّم فتح النشاط');

  // Mirrored: the brand sits at the right edge, the header's buttons at the left.
  const width = page.viewportSize()!.width;
  const brand = (await page.locator('.brand').boundingBox())!;
  const settingsButton = (await page.getByTestId('open-settings').boundingBox())!;
  expect(brand.x + brand.width).toBeGreaterThan(width * 0.8);
  expect(settingsButton.x).toBeLessThan(width * 0.5);
  // Table cells start at the right.
  const cell = page.getByTestId('grades').getByRole('columnheader').nth(1);
  expect(await cell.evaluate((el) => getComputedStyle(el).textAlign)).toBe('start');
  expect(await cell.evaluate((el) => getComputedStyle(el).direction)).toBe('rtl');

  // The same job, in Arabic: the learners are enrolled now; retry the group.
  const reg = await fetch(`${sandbox.baseUrl}/_sandbox/sourcedids`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sourcedids: ['sid-10', 'sid-11'] }),
  });
  expect(reg.ok).toBe(true);
  await page.getByTestId('retry-group').click();
  const dialog = page.getByTestId('job-dialog');
  await expect(dialog.getByTestId('plan-summary')).toContainText('ستُرسل درجتان.');
  await dialog.getByTestId('job-start').click();
  await expect(dialog.getByTestId('job-summary')).toHaveText('أُرسلت درجتان.');
  await dialog.getByTestId('job-close').click();
  await expect(page.getByTestId('health')).toContainText('كل شيء هنا موجود في دفتر الدرجات.');

  // The choice is kept on this computer: a reload stays in Arabic.
  await page.goto('about:blank');
  await page.goto(server.url);
  await expect(html).toHaveAttribute('dir', 'rtl');

  // And back to English.
  await page.getByTestId('open-settings').click();
  await page.getByTestId('settings-language-en').check();
  await page.getByTestId('settings-save').click();
  await expect(html).toHaveAttribute('dir', 'ltr');
  await expect(page.getByTestId('grades-count')).toHaveText('12 grades');
});

test.describe('a browser that prefers Arabic', () => {
  test.use({ locale: 'ar-EG' });

  test('opens in Arabic without being asked, until the user chooses', async ({ page }) => {
    server = await startServer(db);
    await page.goto(server.url);
    await expect(page.locator('html')).toHaveAttribute('dir', 'rtl');
    await expect(page.getByTestId('empty-state').getByRole('heading')).toHaveText('لا توجد منصات بعد');
    await expect(page.getByTestId('empty-add-platform')).toHaveText('أضف منصة');
  });
});
