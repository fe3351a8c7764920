// Screenshots of every screen for the README (docs/screenshots/), light and dark,
// from the real UI through the real bridge, a real ledger and the sandbox LMS.
// Not part of the test suite: run `npm --prefix ui run screenshots` (./dev screenshots).
import { test, expect, type Page } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkBuilt, ledgerFor, root, startSandbox, startServer, stopServer, bin, type Sandbox, type Server } from '../ui/workspace';

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

// Light and dark in English; Arabic (right to left) in light. The window follows the
// browser's language and colour scheme until the user chooses in Settings.
const variants = [
  { theme: 'light', scheme: 'light', locale: 'en-US' },
  { theme: 'dark', scheme: 'dark', locale: 'en-US' },
  { theme: 'arabic', scheme: 'light', locale: 'ar' },
] as const;

for (const { theme, scheme, locale } of variants) {
  test.describe(theme, () => {
    test.use({ locale, colorScheme: scheme });
    test(`every screen, ${theme}`, async ({ page }) => {
      await page.setViewportSize({ width: 1280, height: 860 });
      // An empty ledger: the first-run page.
      server = await startServer(db);
      await page.goto(server.url);
      await expect(page.getByTestId('empty-state')).toBeVisible();
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
      ledgerFor(db, dir, sandbox, 36);
      const grades = Array.from({ length: 10 }, (_, i) => ['--grade', String(i + 27)]).flat();
      const first = spawnSync(bin, ['--db', db, 'sync', ...grades], { encoding: 'utf8' });
      expect(first.status, first.stderr).toBe(1);
      server = await startServer(db);
      await page.goto(server.url);
      await expect(page.getByTestId('health').getByTestId('cta-text')).toBeVisible();
      await shoot(page, `overview-${theme}`);

      await page.getByTestId('grades-status').selectOption('failed');
      await expect(page.getByTestId('grades-count')).toHaveAttribute('data-total', '6');
      await page.getByTestId('grade-history').first().click();
      await page.getByTestId('timeline').locator('summary').first().click();
      await shoot(page, `history-${theme}`);
      await page.getByTestId('timeline-close').click();
      await page.getByTestId('grades-status').selectOption('');

      await page.getByTestId('action-send-missing').click();
      await expect(page.getByTestId('plan-summary')).toBeVisible();
      await shoot(page, `send-preview-${theme}`);
      await page.getByTestId('job-start').click();
      await expect(page.getByTestId('job-tally')).not.toHaveAttribute('data-done', '0');
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
  });
}
