import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// Captures docs/screenshots/ from the real UI (see tests/screenshots/): the browser
// suite's settings, another folder of specs. Not a test suite.
export default defineConfig({ ...base, testDir: '../tests/screenshots' });
