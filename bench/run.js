// @ts-check
// `npm run bench [-- --quick] [-- --rounds N --duration MS --only substring]`
// latchkey side by side with express-session (+ connect-redis), koa-session and @fastify/session, in one run on one
// machine: each target in its own process, the load generator (bench/load.js) in another, loopback only,
// the target order alternating between rounds, medians over rounds. Then memory per session (bench/memory.js).
// Writes bench/RESULTS.md and bench/ratios.svg, and prints the table.
// The targets, their bars and what they need are one table, TARGETS in bench/targets.js. `--only` keeps
// the targets (and memory cases) whose name contains the substring (or one of several, a,b), and the bare frameworks.
// Redis: REDIS_URL when set (it must answer PING within 5 s), else a throwaway redis-server; started
// only when a target needs it. Keys written on REDIS_URL are removed at the end.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Redis } = require('ioredis');
const { measureMemory, memoryTable } = require('./memory');
const { renderSvg } = require('./svg');
const { PG_URL, pgTable, TARGETS, missing } = require('./targets');
const { commandLine, httpGet, median, redisServerVersion, removeKeys, runMain, startRedis, startTarget, versions } = require('./util');

const { flag, value } = commandLine();
const quick = flag('quick');
const rounds = Number(value('rounds', quick ? '1' : '5'));
const durationMs = Number(value('duration', quick ? '1500' : '5000'));
const connections = Number(value('connections', '50'));
const only = value('only', '');
/** @typedef {'anon' | 'read' | 'write' | 'new'} Scenario */
/** @type {Scenario[]} */
const SCENARIOS = ['anon', 'read', 'write', 'new'];

/**
 * The targets of this run, in the table's order: the bare ones always, the others as `--only` says.
 * @type {[string, import('./targets').Target][]}
 */
const SELECTED = Object.entries(TARGETS).filter(([name, t]) => t.cookie === null || !only || only.split(',').some((part) => name.includes(part)));

/**
 * What bench/load.js prints, and what run.js adds to it.
 * @typedef {object} LoadResult
 * @property {number} requests
 * @property {number} ok
 * @property {number} rps
 * @property {number} p50
 * @property {number} p99
 * @property {number} errors
 * @property {number} non2xx
 * @property {number} wrong
 * @property {number} setCookiePerResponse
 * @property {number} [redisPerRequest]
 * @property {number} [redisServerCommandsPerRequest]
 * @property {number} [ratio]
 * @property {number} [addedMicros]
 */

/**
 * Runs bench/load.js against a target.
 * @param {{ port: number, scenario: Scenario, connections: number, durationMs: number, cookieName: string | null, bare: boolean }} options
 * @returns {Promise<LoadResult>}
 */
function runLoad(options) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'load.js'), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.durationMs + 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`load generator failed (${code}) for ${JSON.stringify(options)}`));
    });
  });
}

/**
 * Drops the tables the postgres targets made under these key prefixes (bench_<kind>_<prefix>).
 * @param {string[]} keyPrefixes
 */
async function dropTables(keyPrefixes) {
  const { Pool } = require('pg');
  const pool = new Pool({ connectionString: process.env.DATABASE_URL || PG_URL, max: 1 });
  try {
    for (const prefix of keyPrefixes) for (const kind of ['latchkey', 'cps']) await pool.query(`DROP TABLE IF EXISTS "${pgTable(prefix, kind)}"`);
  } finally {
    await pool.end();
  }
}

/**
 * Drops the tables of earlier runs that did not finish (killed, crashed): their run's process is
 * gone. connect-pg-simple names its primary key "session_pkey" whatever the table, and index names
 * are unique per schema, so one leftover cps table makes every later cps target fail to start.
 */
async function dropLeftoverTables() {
  const { Pool } = require('pg');
  const pool = new Pool({ connectionString: process.env.DATABASE_URL || PG_URL, max: 1 });
  try {
    const { rows } = await pool.query(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ '^bench_(latchkey|cps)_bench_[0-9]+_'`);
    for (const { tablename } of rows) {
      const pid = Number(/** @type {string} */ (tablename).split('_')[3]);
      if (!alive(pid)) await pool.query(`DROP TABLE IF EXISTS "${tablename}"`);
    }
  } finally {
    await pool.end();
  }
}

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/**
 * Redis commands (or SQL statements) the target process sent so far (0 when it cannot tell).
 * @param {number} port
 * @returns {Promise<number>}
 */
async function redisCommandsOf(port) {
  try {
    return JSON.parse((await httpGet(port, '/__stats')).body).redisCommands ?? 0;
  } catch {
    return 0;
  }
}

const ADMIN = new Set(['info', 'config', 'client', 'ping', 'hello', 'select', 'command', 'flushall', 'dbsize', 'memory', 'script']);
/** @param {Redis} admin */
async function serverCommands(admin) {
  const text = await admin.info('commandstats');
  let total = 0;
  for (const m of text.matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) {
    if (!ADMIN.has(String(m[1]).split('|')[0] ?? '')) total += Number(m[2]);
  }
  return total;
}

/** @typedef {Record<string, Partial<Record<Scenario, LoadResult[]>>>} Results results[target][scenario]: one per round */

async function main() {
  const absent = SELECTED.filter(([, t]) => missing(t).length > 0);
  if (absent.length) console.error(`not built, left out: ${absent.map(([n]) => n).join(', ')}`);
  const targets = SELECTED.filter(([, t]) => missing(t).length === 0);
  const needsRedis = targets.some(([, t]) => t.redis);
  const redis = needsRedis ? await startRedis({ url: process.env.REDIS_URL }) : null;
  const admin = redis ? new Redis(redis.url) : null;
  /** Key prefixes by target: short, and this run's own, so that on REDIS_URL they can be removed at the end. */
  const prefixes = new Map(targets.map(([name], i) => [name, `bench:${process.pid}:${i}:`]));
  if (targets.some(([, t]) => t.postgres)) await dropLeftoverTables();
  /** @type {Results} */
  const results = {};
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      /** @type {Record<string, LoadResult>} */
      const bare = {};
      /** @type {Record<string, Partial<Record<Scenario, LoadResult>>>} */
      const roundResults = {};
      for (const [name, target] of order) {
        const t = await startTarget(name, { redisUrl: redis?.url ?? '', keyPrefix: prefixes.get(name) ?? '' });
        try {
          for (const scenario of SCENARIOS) {
            const counted = target.redis && admin ? admin : null;
            if (counted) await counted.config('RESETSTAT');
            const before = counted || target.postgres ? await redisCommandsOf(t.port) : 0;
            const r = await runLoad({ port: t.port, scenario, connections, durationMs, cookieName: target.cookie, bare: target.cookie === null });
            if (counted) {
              const client = (await redisCommandsOf(t.port)) - before;
              const server = await serverCommands(counted);
              // ioredis targets are counted at the client (a script is one EVALSHA round trip); connect-redis
              // sends plain commands, so the server's count is its round trips.
              r.redisPerRequest = (client > 0 ? client : server) / r.requests;
              r.redisServerCommandsPerRequest = server / r.requests;
            } else if (target.postgres) {
              // SQL statements, counted at the target's pool (each one round trip).
              r.redisPerRequest = ((await redisCommandsOf(t.port)) - before) / r.requests;
            }
            (roundResults[name] ??= {})[scenario] = r;
            if (target.cookie === null) bare[`${target.framework}:${scenario}`] = r;
            process.stderr.write(`round ${round + 1}/${rounds} ${name} ${scenario}: ${Math.round(r.rps)} req/s\n`);
          }
        } finally {
          await t.stop();
        }
      }
      for (const [name, target] of targets) {
        for (const scenario of SCENARIOS) {
          const r = roundResults[name]?.[scenario];
          if (!r) throw new Error(`round ${round + 1}: no result for ${name} ${scenario}`);
          const b = bare[`${target.framework}:${scenario}`];
          r.ratio = b ? r.rps / b.rps : NaN;
          r.addedMicros = b ? 1e6 / r.rps - 1e6 / b.rps : NaN;
          ((results[name] ??= {})[scenario] ??= []).push(r);
        }
      }
    }
    if (targets.some(([, t]) => t.postgres)) await dropTables([...prefixes.values()]);
    if (admin && redis && !redis.throwaway) for (const prefix of prefixes.values()) await removeKeys(admin, prefix);
    const memory = await measureMemory({ sessions: quick ? 40_000 : 100_000, redisUrl: process.env.REDIS_URL, only });
    const redisVersion = await redisServerVersion(admin ?? undefined);
    report(results, memory, targets, redisVersion);
  } finally {
    admin?.disconnect();
    await redis?.stop();
  }
}

/**
 * Writes RESULTS.md and ratios.svg, and prints the Markdown.
 * @param {Results} results
 * @param {import('./memory').MemoryResult} memory
 * @param {[string, import('./targets').Target][]} targets
 * @param {string} redisVersion
 */
function report(results, memory, targets, redisVersion) {
  /** @param {number} x @param {number} [d] */
  const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const lines = [];
  const measured = [...targets.map(([, t]) => t), ...memory.rows.map((r) => TARGETS[r.target])];
  const packages = [...new Set(measured.flatMap((t) => t?.packages ?? []))];
  const v = { ...versions(packages), 'redis-server': redisVersion };
  const cpus = os.cpus();
  lines.push('# latchkey benchmark results', '');
  lines.push(`Run on ${new Date().toISOString().slice(0, 10)}: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}.`);
  lines.push(`Versions: ${Object.entries(v).map(([k, x]) => `${k} ${x}`).join(', ')}.`);
  lines.push(
    `Method: \`npm run bench${quick ? ' -- --quick' : ''}\`: ${rounds} round(s), ${durationMs / 1000} s per scenario, ${connections} keep-alive connections, one request in flight per connection; each target in its own process, the load generator (bench/load.js) in another; target order reversed every other round; medians over rounds. Ratio = req/s ÷ the bare framework's req/s on the same route in the same round. "added µs" = 1/rps − 1/rps(bare), per request across the server.`,
    '',
  );
  lines.push('| target | scenario | req/s | ratio to bare | bar | added µs/req | p99 ms | Set-Cookie/resp | store round trips/req (Redis commands, SQL statements) | check |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const [name, target] of targets) {
    for (const scenario of SCENARIOS) {
      const runs = results[name]?.[scenario] ?? [];
      /** @param {'rps' | 'ratio' | 'addedMicros' | 'p99' | 'setCookiePerResponse' | 'redisPerRequest'} k */
      const m = (k) => median(runs.map((r) => r[k] ?? NaN));
      const bar = target.bars?.[scenario];
      const ratio = m('ratio');
      const bad = runs.reduce((n, r) => n + r.wrong + r.errors + r.non2xx, 0);
      lines.push(
        `| ${name} | ${scenario} | ${Math.round(m('rps'))} | ${fmt(ratio)} | ${bar ? `${ratio >= bar ? '✅' : '❌'} ≥ ${bar}` : ''} | ${fmt(m('addedMicros'), 1)} | ${fmt(m('p99'), 1)} | ${fmt(m('setCookiePerResponse'))} | ${runs[0]?.redisPerRequest === undefined ? '' : fmt(m('redisPerRequest'))} | ${bad === 0 ? 'ok' : `${bad} wrong/failed`} |`,
      );
    }
  }
  lines.push('', '## Memory per session', '', ...memoryTable(memory));
  lines.push('', '![ratios](ratios.svg)', '');
  const md = lines.join('\n');
  process.stdout.write(`${md}\n`);
  fs.writeFileSync(path.join(__dirname, 'RESULTS.md'), `${md}\n`);
  /** @type {[string, number[]][]} */
  const ratios = targets.filter(([, t]) => t.cookie !== null).map(([name]) => [name, SCENARIOS.map((s) => median((results[name]?.[s] ?? []).map((r) => r.ratio ?? NaN)))]);
  fs.writeFileSync(path.join(__dirname, 'ratios.svg'), renderSvg(ratios, SCENARIOS));
}

runMain(main);
