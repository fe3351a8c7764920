import { defineConfig } from '@playwright/test';

// Captures docs/screenshots/ from the real UI (see tests/screenshots/); not a test suite.
export default defineConfig({
  testDir: '../tests/screenshots',
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
  },
  outputDir: '../target/playwright-results',
});
