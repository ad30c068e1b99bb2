#!/usr/bin/env node
/**
 * Keeps package.json `typesVersions` in step with `exports`.
 *
 * TypeScript's `moduleResolution: node10` (alias `node`) ignores `exports`, so without a
 * `typesVersions` map `import { session } from 'latchkey/express'` finds no types there (TS2307).
 * The map is derived from `exports` (each subpath's `types` target), never written by hand:
 *
 *   node scripts/types-versions.js          check: exit 1 and say what differs
 *   node scripts/types-versions.js --write  rewrite package.json's typesVersions from exports
 *
 * test/package/package.test.ts runs the check, so an entry point added to `exports` without
 * `npm run types-versions` fails the tests.
 */
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

/** The `types` target of one `exports` value (a string, or nested conditions), or undefined. */
function typesTarget(value) {
  if (typeof value === 'string') return value.endsWith('.d.ts') ? value : undefined;
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = typesTarget(v);
      if (t !== undefined) return t;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    if (typeof value.types === 'string') return value.types;
    for (const v of Object.values(value)) {
      const t = typesTarget(v);
      if (t !== undefined) return t;
    }
  }
  return undefined;
}

/**
 * `typesVersions` for a package.json: `{ '*': { '<subpath>': ['<types file>'] } }` for every
 * `exports` subpath other than '.' (node10 takes the root from `types`) that has a types target.
 * Patterns (`./x/*`) carry over as they are: typesVersions supports the same `*`.
 */
function deriveTypesVersions(pkg) {
  const exp = pkg.exports;
  if (exp === undefined || typeof exp === 'string' || Object.keys(exp).every((k) => !k.startsWith('.'))) {
    return undefined; // only a root entry point: `types` is enough for node10
  }
  const map = {};
  for (const [subpath, value] of Object.entries(exp)) {
    if (subpath === '.') continue;
    const types = typesTarget(value);
    if (types === undefined) continue;
    map[subpath.replace(/^\.\//, '')] = [types.replace(/^\.\//, '')];
  }
  return Object.keys(map).length === 0 ? undefined : { '*': map };
}

/** The differences between the package's typesVersions and the derived one, as readable lines. */
function typesVersionsDrift(pkg) {
  const want = deriveTypesVersions(pkg);
  const have = pkg.typesVersions;
  if (JSON.stringify(want) === JSON.stringify(have)) return [];
  const lines = [];
  const w = (want && want['*']) || {};
  const h = (have && have['*']) || {};
  for (const k of Object.keys(w)) {
    if (!(k in h)) lines.push(`missing: "${k}": ${JSON.stringify(w[k])}`);
    else if (JSON.stringify(h[k]) !== JSON.stringify(w[k])) lines.push(`wrong: "${k}": ${JSON.stringify(h[k])}, exports say ${JSON.stringify(w[k])}`);
  }
  for (const k of Object.keys(h)) if (!(k in w)) lines.push(`not in exports: "${k}"`);
  for (const k of Object.keys(have || {})) if (k !== '*') lines.push(`unexpected version range "${k}"`);
  if (lines.length === 0) lines.push('key order differs from exports');
  return lines;
}

/** package.json with typesVersions placed right after exports. */
function withTypesVersions(pkg) {
  const tv = deriveTypesVersions(pkg);
  const out = {};
  for (const [k, v] of Object.entries(pkg)) {
    if (k === 'typesVersions') continue;
    out[k] = v;
    if (k === 'exports' && tv !== undefined) out.typesVersions = tv;
  }
  return out;
}

module.exports = { deriveTypesVersions, typesVersionsDrift, withTypesVersions };

if (require.main === module) {
  const file = join(__dirname, '..', 'package.json');
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  if (process.argv.includes('--write')) {
    writeFileSync(file, `${JSON.stringify(withTypesVersions(pkg), null, 2)}\n`);
    console.log('package.json: typesVersions written from exports');
  } else {
    const drift = typesVersionsDrift(pkg);
    if (drift.length > 0) {
      console.error('package.json typesVersions does not match exports (run `npm run types-versions -- --write`):');
      for (const line of drift) console.error(`  ${line}`);
      process.exit(1);
    }
    console.log('package.json: typesVersions matches exports');
  }
}
