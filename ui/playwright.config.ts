import { defineConfig } from '@playwright/test';

// Drives the real UI in Debian's Chromium (no browser downloads) against the real
// `passback ui-server` bridge and a real ledger; see tests/ui/.
export default defineConfig({
  testDir: '../tests/ui',
  // The specs live outside ui/: resolve @playwright/test from ui/node_modules.
  tsconfig: '../tests/ui/tsconfig.runtime.json',
  workers: 1,
  retries: 0,
  timeout: 60_000,
  reporter: 'list',
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    screenshot: 'only-on-failure',
    // The window follows the browser's language: the suites speak English unless a test says otherwise.
    locale: 'en-US',
  },
  outputDir: '../target/playwright-results',
});
