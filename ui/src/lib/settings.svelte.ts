// The window's preferences, kept on this computer (localStorage): how it looks, and
// how politely it sends. They are passed to the core with each job; the core's own
// defaults apply to the CLI. No secret is ever kept here.

export type Theme = 'system' | 'light' | 'dark';

export interface Settings {
  theme: Theme;
  /** Requests in flight per LMS host. */
  concurrency: number;
  /** At most this many requests a second per host (null: no limit). */
  rate: number | null;
  /** Read each grade back after writing it. */
  verify: boolean;
  /** Never lower a grade the LMS holds higher (an instructor's override). */
  overwriteProtection: boolean;
}

const KEY = 'passback.settings';
export const defaults: Settings = { theme: 'system', concurrency: 4, rate: null, verify: false, overwriteProtection: true };

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

/** Set the page's theme: the chosen one, or for "system" what the system prefers now. */
export function applyTheme() {
  if (typeof document === 'undefined') return;
  const dark = settings.theme === 'dark' || (settings.theme === 'system' && systemDark?.matches === true);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

// "Like the system" follows the system when it changes.
systemDark?.addEventListener('change', applyTheme);
