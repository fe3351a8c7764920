// Every string the window shows through t()/tn() must have an Arabic entry, and the
// Arabic catalogue must not keep entries nothing uses (they rot silently). Run by
// `npm run check`; prints what is missing or unused, with the file that uses it.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../src', import.meta.url));

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'locales' ? [] : files(p);
    return /\.(svelte|ts)$/.test(name) && name !== 'bindings.ts' && name !== 'i18n.svelte.ts' ? [p] : [];
  });
}

// A JS string literal in single or double quotes (no template literals: they hide
// the text from this check and from translators).
const lit = String.raw`(['"])((?:\\.|(?!\1)[^\\\n])*)\1`;
const tCall = new RegExp(String.raw`\bt\(\s*` + lit, 'g');
const tnCall = new RegExp(String.raw`\btn\([^,]+,\s*` + lit + String.raw`\s*,\s*` + lit.replace('\\1', '\\3').replace('\\1', '\\3'), 'g');
const unescape = (s) => s.replace(/\\(.)/g, '$1');

const used = new Map();
for (const f of files(root)) {
  const src = readFileSync(f, 'utf8');
  for (const m of src.matchAll(tCall)) used.set(unescape(m[2]), relative(root, f));
  for (const m of src.matchAll(tnCall)) used.set(unescape(m[4]), relative(root, f));
  if (/\bt\(\s*`/.test(src)) {
    console.error(`${relative(root, f)}: t() with a template literal; pass the text as a string and fill {names}`);
    process.exitCode = 1;
  }
}

const ar = JSON.parse(readFileSync(join(root, 'lib/locales/ar.json'), 'utf8'));
const keys = new Set(Object.keys(ar));

const bindings = readFileSync(join(root, 'lib/bindings.ts'), 'utf8');
const causes = new Set([...bindings.match(/export type Cause = ([^;]+);/)[1].matchAll(/"(\w+)"/g)].map((m) => m[1]));

let bad = 0;
for (const [text, file] of used) {
  if (!keys.has(text)) {
    console.error(`missing Arabic for ${JSON.stringify(text)} (${file})`);
    bad++;
  }
}
for (const k of keys) {
  if (k.startsWith('hint:')) {
    if (!causes.has(k.slice(5))) {
      console.error(`ar.json: ${k} names no cause the core reports`);
      bad++;
    }
  } else if (!used.has(k)) {
    console.error(`ar.json: ${JSON.stringify(k)} is used nowhere`);
    bad++;
  }
}
// Placeholders must survive translation: the same {names} on both sides.
const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
{
  for (const [k, v] of Object.entries(ar)) {
    for (const form of typeof v === 'string' ? [v] : Object.values(v)) {
      const want = names(k);
      // A plural form may leave the count out ("one grade" is written without "1").
      const got = names(form);
      if (got !== want && got !== want.split(',').filter((n) => n !== 'n').join(',')) {
        console.error(`ar.json: ${JSON.stringify(k)}: placeholders {${want}} but the translation has {${got}}`);
        bad++;
      }
    }
  }
}
if (bad > 0) {
  console.error(`${bad} problem(s) in the Arabic catalogue`);
  process.exitCode = 1;
} else {
  console.log(`i18n: ${used.size} strings, all translated into Arabic`);
}
