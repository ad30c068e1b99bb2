#!/usr/bin/env node
/**
 * Checks that package-lock.json is one `npm ci` accepts and that a fresh `npm install` would
 * leave unchanged, without touching this checkout's node_modules: it copies package.json and
 * the lock into a temporary folder and runs, offline,
 *
 *   npm ci --dry-run                       (rejects a lock that lacks an entry package.json needs,
 *                                            e.g. the optional platform packages of unrs-resolver)
 *   npm install --package-lock-only        (what a fresh clone's `npm install` writes; must be
 *                                            byte-identical to the committed lock)
 *
 * Offline on purpose: a complete lock needs no registry metadata for either. When npm asks the
 * registry for something (ENOTCACHED), the lock is missing it. How to regenerate the lock:
 * ARCHITECTURE.md, "The lock file".
 *
 *   node scripts/check-lock.js   (npm run check:lock)
 */
'use strict';
const { execFile } = require('node:child_process');
const { copyFileSync, mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const root = join(__dirname, '..');

/** The environment for a child npm, without the parent npm's lifecycle variables. */
function npmEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(lifecycle|package)_/i.test(k) || k === 'npm_command' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  return env;
}

function npm(args, cwd, timeoutMs) {
  return new Promise((resolve) => {
    execFile('npm', args, { cwd, env: npmEnv(), timeout: timeoutMs, maxBuffer: 16 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, killed: Boolean(err && err.killed), stdout, stderr }));
  });
}

/** Resolves to a list of problems (empty when the lock is fine). */
async function checkLock({ timeoutMs = 60_000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-lock-'));
  const problems = [];
  try {
    copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
    copyFileSync(join(root, 'package-lock.json'), join(dir, 'package-lock.json'));
    const common = ['--offline', '--ignore-scripts', '--no-audit', '--no-fund'];
    const ci = await npm(['ci', '--dry-run', ...common], dir, timeoutMs);
    if (ci.code !== 0) {
      const lines = ci.stderr.split('\n').filter((l) => /Missing:|Invalid:|ENOTCACHED|in sync/.test(l));
      problems.push(`npm ci rejects package-lock.json${ci.killed ? ' (timed out)' : ''}:\n  ${(lines.length ? lines : ci.stderr.split('\n').slice(0, 20)).join('\n  ')}`);
    }
    const before = readFileSync(join(dir, 'package-lock.json'), 'utf8');
    const install = await npm(['install', '--package-lock-only', ...common], dir, timeoutMs);
    if (install.code !== 0) {
      problems.push(`npm install --package-lock-only failed${install.killed ? ' (timed out)' : ''} (an ENOTCACHED means the lock lacks what package.json asks for):\n  ${install.stderr.split('\n').slice(0, 20).join('\n  ')}`);
    } else {
      const after = readFileSync(join(dir, 'package-lock.json'), 'utf8');
      if (after !== before) {
        const a = new Set(Object.keys(JSON.parse(before).packages));
        const b = new Set(Object.keys(JSON.parse(after).packages));
        const added = [...b].filter((k) => !a.has(k));
        const removed = [...a].filter((k) => !b.has(k));
        problems.push(`a fresh npm install rewrites package-lock.json (${added.length} entries added, ${removed.length} removed${added.length + removed.length === 0 ? ', fields changed' : ''}):` +
          added.slice(0, 20).map((k) => `\n  + ${k}`).join('') + removed.slice(0, 20).map((k) => `\n  - ${k}`).join(''));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return problems;
}

module.exports = { checkLock };

if (require.main === module) {
  checkLock().then((problems) => {
    if (problems.length > 0) {
      for (const p of problems) console.error(p);
      console.error('See ARCHITECTURE.md, "The lock file", for how to regenerate it.');
      process.exit(1);
    }
    console.log('package-lock.json: npm ci accepts it and a fresh npm install leaves it unchanged');
  });
}
