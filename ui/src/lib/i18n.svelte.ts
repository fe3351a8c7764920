// The window speaks English and Arabic. Strings are written in English in the
// components and looked up in a catalogue per language (gettext's way: the English
// text is the key, so a missing translation shows English, never a blank). Plurals
// follow `Intl.PluralRules` (Arabic has six forms); numbers and dates are formatted
// by `Intl` for the chosen language. `npm run check` fails when a string used in a
// component has no Arabic entry (scripts/check-i18n.mjs).
import { settings } from './settings.svelte';
import ar from './locales/ar.json';

export type Lang = 'en' | 'ar';
export type Plural = Partial<Record<Intl.LDMLPluralRule, string>> & { other: string };
export type Catalogue = Record<string, string | Plural>;

const catalogues: Record<Lang, Catalogue> = { en: {}, ar: ar as Catalogue };

/** The language the system prefers, if the window ships it. */
export function systemLang(): Lang {
  const langs = typeof navigator === 'undefined' ? [] : (navigator.languages ?? [navigator.language]);
  for (const l of langs) {
    const base = l.toLowerCase().split('-')[0];
    if (base === 'ar' || base === 'en') return base;
  }
  return 'en';
}

/** The language in use (reactive: reads the settings). */
export function lang(): Lang {
  return settings.language === 'system' ? systemLang() : settings.language;
}

export function dir(l: Lang = lang()): 'ltr' | 'rtl' {
  return l === 'ar' ? 'rtl' : 'ltr';
}

const numberFormats = new Map<string, Intl.NumberFormat>();
/** A number as the language writes it (Arabic-Indic digits in Arabic). */
export function num(n: number, maxFraction = 2): string {
  const key = `${lang()}:${maxFraction}`;
  let f = numberFormats.get(key);
  if (!f) numberFormats.set(key, (f = new Intl.NumberFormat(lang(), { maximumFractionDigits: maxFraction })));
  return f.format(n);
}

const dateFormats = new Map<string, Intl.DateTimeFormat>();
/** A moment (RFC 3339) as a date and time in the language's style. */
export function when(iso: string): string {
  const l = lang();
  let f = dateFormats.get(l);
  if (!f) dateFormats.set(l, (f = new Intl.DateTimeFormat(l, { dateStyle: 'medium', timeStyle: 'short' })));
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : f.format(d);
}

function fill(text: string, vars: Record<string, string | number> | undefined): string {
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const v = vars[name];
    if (v === undefined) return whole;
    return typeof v === 'number' ? num(v) : v;
  });
}

/** `en` in the chosen language, with `{name}` filled from `vars` (numbers formatted). */
export function t(en: string, vars?: Record<string, string | number>): string {
  const entry = catalogues[lang()][en];
  const text = entry === undefined ? en : typeof entry === 'string' ? entry : entry.other;
  return fill(text, vars);
}

const pluralRules = new Map<Lang, Intl.PluralRules>();
/**
 * A counted phrase: `one` or `other` in English (`{n}` is the count); the catalogue
 * keys it by `other` and may give every plural form the language has.
 */
export function tn(n: number, one: string, other: string, vars?: Record<string, string | number>): string {
  const l = lang();
  const entry = catalogues[l][other];
  let text: string;
  if (entry === undefined) text = n === 1 ? one : other;
  else if (typeof entry === 'string') text = entry;
  else {
    let rules = pluralRules.get(l);
    if (!rules) pluralRules.set(l, (rules = new Intl.PluralRules(l)));
    text = entry[rules.select(n)] ?? entry.other;
  }
  return fill(text, { n, ...vars });
}
