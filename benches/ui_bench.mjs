// The window through `passback ui-server` in Debian Chromium on a large ledger: time to
// the first grade row (fresh page loads), a search keystroke to repaint (the table's
// answer counter moves), and the page's JS heap. Prints one JSON object.
//
// Usage: node benches/ui_bench.mjs URL_WITH_TOKEN   (benches/ui_bench.sh starts the server)
import { chromium } from '../ui/node_modules/playwright-core/index.mjs';

const url = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--enable-precise-memory-info'],
});
const firstRow = [];
let page;
for (let i = 0; i < 3; i++) {
  if (page) await page.close();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const t0 = performance.now();
  await page.goto(url);
  await page.locator('[data-testid="grades"] tbody tr[aria-rowindex]').first().waitFor({ timeout: 60_000 });
  firstRow.push(performance.now() - t0);
}
const answered = () => page.evaluate(() => Number(document.querySelector('[data-answered]')?.getAttribute('data-answered')));
const search = page.getByTestId('grades-search');
await search.focus();
// Type a learner id and take it back, one key at a time: each keystroke re-asks the core.
// Every key changes the text (a Backspace on an empty box would ask nothing).
const bs = (n) => Array(n).fill('Backspace');
const keys = [...'u-0042', ...bs(3), ...'17', ...bs(5), ...'act-'];
const keystroke = [];
for (const k of keys.slice(0, 20)) {
  const before = await answered();
  const t0 = performance.now();
  await page.keyboard.press(k);
  await page.waitForFunction((b) => Number(document.querySelector('[data-answered]')?.getAttribute('data-answered')) > b, before, { timeout: 30_000, polling: 5 });
  keystroke.push(performance.now() - t0);
}
const rendered = await page.locator('[data-testid="grades"] tbody tr[aria-rowindex]').count();
const total = await page.getByTestId('grades-count').textContent();
const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null);
await browser.close();
const sorted = [...keystroke].sort((a, b) => a - b);
const p95 = sorted[Math.ceil(sorted.length * 0.95) - 1];
console.log(JSON.stringify({
  first_row_ms: firstRow.map(Math.round),
  keystroke_ms: keystroke.map(Math.round),
  keystroke_p95_ms: Math.round(p95),
  keystroke_median_ms: Math.round(sorted[Math.floor(sorted.length / 2)]),
  rendered_rows: rendered,
  total,
  js_heap_mb: heap === null ? null : Math.round(heap / 1e5) / 10,
}));
