// The window's preferences, kept on this computer (localStorage): how it looks, and
// how politely it sends. They are passed to the core with each job; the core's own
// defaults apply to the CLI. No secret is ever kept here.

export type Theme = 'system' | 'light' | 'dark';
export type Language = 'system' | 'en' | 'ar';

export interface Settings {
  theme: Theme;
  /** The window's language; "system" follows the system's preference when the window ships it. */
  language: Language;
  /** Requests in flight per LMS host. */
  concurrency: number;
  /** At most this many requests a second per host (null: no limit). */
  rate: number | null;
  /** Read each grade back after writing it. */
  verify: boolean;
  /** Never lower a grade the LMS holds higher (an instructor's override). */
  overwriteProtection: boolean;
}

import { dir, lang } from './i18n.svelte';

const KEY = 'passback.settings';
export const defaults: Settings = { theme: 'system', language: 'system', concurrency: 4, rate: null, verify: false, overwriteProtection: true };

function load(): Settings {
  try {
    const raw = typeof localStorage === 'undefined' ? null : localStorage.getItem(KEY);
    if (raw) return { ...defaults, ...(JSON.parse(raw) as Partial<Settings>) };
  } catch {
    // Unreadable preferences: start from the defaults.
  }
  return { ...defaults };
}

export const settings: Settings = $state(load());

export function save(next: Settings) {
  Object.assign(settings, next);
  try {
    localStorage.setItem(KEY, JSON.stringify(settings));
  } catch {
    // Storage refused (private mode): the choice lasts for this session.
  }
  applyTheme();
}

const systemDark = typeof matchMedia === 'undefined' ? null : matchMedia('(prefers-color-scheme: dark)');

/**
 * Set the page's theme (the chosen one, or for "system" what the system prefers now),
 * its language and its direction (Arabic mirrors the layout right to left).
 */
export function applyTheme() {
  if (typeof document === 'undefined') return;
  const root = document.documentElement;
  const dark = settings.theme === 'dark' || (settings.theme === 'system' && systemDark?.matches === true);
  root.dataset.theme = dark ? 'dark' : 'light';
  const l = lang();
  root.lang = l;
  root.dir = dir(l);
}

// "Like the system" follows the system when it changes.
systemDark?.addEventListener('change', applyTheme);
