// @ts-check
// Memory per session, as a slope: `node bench/memory.js [sessions] [--only substring]` (default 100 000),
// and run.js's "Memory per session" table.
//
// Method. Each case is a real target (bench/targets.js: the real middleware and store in a server process
// of its own) that gets `sessions` real HTTP requests to /new without a cookie, 16 keep-alive connections,
// each response checked (200, body "1", a Set-Cookie of the session cookie): one new session each, holding
// {"n":1}. The meter is read when half of them exist and again when all do:
//   heap   the server process's heapUsed after four forced full GCs (the target runs under
//          `node --expose-gc` and answers /__heap ahead of the framework);
//   redis  Redis `INFO memory` used_memory, every key under a prefix of this case's own (`m<case>:<pid>:`,
//          about as long as latchkey's default `latchkey:`, since the key is part of the cost), removed afterwards.
// bytes per session = (meter at N − meter at N/2) ÷ (N/2). What does not grow with the sessions (the
// process and framework, the engine's bounded caches of recent cookie values and keys, at most ten
// thousand entries, full long before N/2; Redis's scripts and client buffers) cancels out; everything a
// session costs stays in: the store's record, its key, index and expiry entries, and on Redis the growth
// of its hash tables, which double in size as keys are added (between 50 000 and 100 000 keys the main
// and the expires table each go from 65 536 to 131 072 buckets, about 10 B per key each). That is why
// each Redis case gets a throwaway redis-server of its own, empty at the start, unless REDIS_URL is set
// (then that server, under the case's prefix; the figure then depends on what else it holds, so a note
// says how many keys were there before). Before each reading the store must hold exactly the sessions
// created (none evicted, none lost), or the case fails.
//
// PostgreSQL: pg_total_relation_size of the target's own session table (indexes and TOAST included),
// on DATABASE_URL or the machine's server; the table is dropped afterwards.
//
// Adding a store: a case in CASES (a target of bench/targets.js and a meter), and, for a new kind of
// storage, a meter in METERS.
'use strict';
const http = require('node:http');
const { Redis } = require('ioredis');
const { PG_URL, TARGETS, missing, pgTable } = require('./targets');
const { countKeys, httpGet, removeKeys, runMain, startRedis, startTarget, usedMemory } = require('./util');

/**
 * A meter opened for one case, on its running target.
 * @typedef {object} Reading
 * @property {() => Promise<number>} read bytes the storage uses now
 * @property {() => Promise<number | null>} held sessions the storage holds now (null: it cannot tell)
 * @property {() => Promise<void>} close removes what the case wrote, disconnects
 * @property {string} [note] said under the table (e.g. a shared server that was not empty)
 */

/**
 * Where a case's sessions live and how their bytes are read.
 * @typedef {object} Meter
 * @property {string} label what is measured, for the table
 * @property {string[]} [nodeFlags] flags for the target's node process
 * @property {(env: { keyPrefix: string, redisUrl: string | undefined }) => Promise<{ url: string, stop(): Promise<void> } | null>} [service]
 *   starts (or checks) what the target stores in, before the target starts; its url goes to the target
 * @property {(env: { port: number, keyPrefix: string, url: string, target: string }) => Promise<Reading>} open
 */

/** @type {Record<string, Meter>} */
const METERS = {
  postgres: {
    label: 'pg_total_relation_size',
    async open({ keyPrefix, target }) {
      const { Pool } = require('pg');
      const pool = new Pool({ connectionString: process.env.DATABASE_URL || PG_URL, max: 1 });
      const table = `"${pgTable(keyPrefix, target.includes('pg-simple') ? 'cps' : 'latchkey')}"`;
      return {
        read: async () => Number((await pool.query(`SELECT pg_total_relation_size('${table}') AS n`)).rows[0].n),
        held: async () => Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n),
        close: async () => {
          await pool.query(`DROP TABLE IF EXISTS ${table}`);
          await pool.end();
        },
      };
    },
  },
  heap: {
    label: 'heap of the server process',
    nodeFlags: ['--expose-gc'],
    async open({ port }) {
      return {
        read: async () => JSON.parse((await ok(httpGet(port, '/__heap'))).body).heapUsed,
        held: async () => JSON.parse((await ok(httpGet(port, '/__stats'))).body).sessions,
        close: async () => {},
      };
    },
  },
  redis: {
    label: 'Redis used_memory',
    service: ({ redisUrl }) => startRedis({ url: redisUrl }),
    async open({ keyPrefix, url }) {
      const admin = new Redis(url, { maxRetriesPerRequest: 1 });
      const before = await admin.dbsize();
      return {
        read: () => usedMemory(admin),
        held: () => countKeys(admin, keyPrefix),
        close: async () => {
          await removeKeys(admin, keyPrefix);
          admin.disconnect();
        },
        ...(before > 0 ? { note: `${url} held ${before} keys before (not this case's); its hash tables may have resized at other points` } : {}),
      };
    },
  },
};

/**
 * @typedef {object} Case
 * @property {string} name the row's name
 * @property {string} target a key of TARGETS (bench/targets.js)
 * @property {string} meter a key of METERS
 * @property {number} [bar] bytes per session at the most
 */

/** @type {Case[]} */
const CASES = [
  { name: 'latchkey MemoryStore', target: 'latchkey-express:memory', meter: 'heap', bar: 200 },
  { name: "express-session's MemoryStore", target: 'express-session:memory', meter: 'heap' },
  { name: 'latchkey RedisStore', target: 'latchkey-express:redis', meter: 'redis', bar: 170 },
  { name: 'connect-redis (express-session)', target: 'express-session:connect-redis', meter: 'redis' },
  { name: 'latchkey PostgresStore', target: 'latchkey-express:postgres', meter: 'postgres' },
  { name: 'connect-pg-simple (express-session)', target: 'express-session:connect-pg-simple', meter: 'postgres' },
];

/**
 * @typedef {object} Row
 * @property {string} name
 * @property {string} target
 * @property {string} measured the meter's label
 * @property {number} atHalf bytes when sessions/2 existed
 * @property {number} atFull bytes when all existed
 * @property {number} bytes per session: the slope
 * @property {number | undefined} bar
 */

/**
 * @typedef {object} MemoryResult
 * @property {number} sessions
 * @property {Row[]} rows
 * @property {string[]} notes
 * @property {string | undefined} redisUrl the shared Redis used, if any (else one throwaway redis-server per case)
 */

/**
 * A response that is 2xx, or an error.
 * @param {Promise<import('./util').Response>} pending
 */
async function ok(pending) {
  const r = await pending;
  if (r.status < 200 || r.status > 299) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  return r;
}

/**
 * `count` requests to /new without a cookie, over 16 keep-alive connections; every response must
 * have made a session.
 * @param {number} port
 * @param {number} count
 * @param {string} cookieName
 */
async function createSessions(port, count, cookieName) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  let started = 0;
  /** @type {string[]} */
  const wrong = [];
  const worker = async () => {
    while (started < count && wrong.length === 0) {
      started++;
      const r = await httpGet(port, '/new', { agent });
      if (r.status !== 200 || r.body !== '1' || !r.setCookie.some((c) => c.startsWith(`${cookieName}=`))) {
        wrong.push(`HTTP ${r.status}, body ${JSON.stringify(r.body.slice(0, 80))}, Set-Cookie ${JSON.stringify(r.setCookie)}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: 16 }, worker));
  } finally {
    agent.destroy();
  }
  if (wrong.length) throw new Error(`GET /new did not make a session: ${wrong[0]}`);
}

/**
 * One case: its service (if any), its target, the meter at sessions/2 and at sessions.
 * @param {Case} c
 * @param {number} sessions
 * @param {string | undefined} redisUrl
 * @param {string[]} notes
 * @returns {Promise<Row>}
 */
async function measureCase(c, sessions, redisUrl, notes) {
  const meter = METERS[c.meter];
  const target = TARGETS[c.target];
  if (!meter || !target || target.cookie === null) throw new Error(`memory case ${c.name}: unknown meter ${c.meter} or no session target ${c.target}`);
  // Short, like latchkey's default `latchkey:`, since the key is part of what a session costs; and this
  // run's and this case's own, so that it can be removed (and counted) on a shared REDIS_URL too.
  const keyPrefix = `m${CASES.indexOf(c)}:${process.pid}:`;
  const service = meter.service ? await meter.service({ keyPrefix, redisUrl }) : null;
  try {
    const url = service?.url ?? '';
    const t = await startTarget(c.target, { redisUrl: url, keyPrefix, nodeFlags: meter.nodeFlags ?? [] });
    try {
      const reading = await meter.open({ port: t.port, keyPrefix, url, target: c.target });
      if (reading.note) notes.push(`${c.name}: ${reading.note}`);
      try {
        const half = Math.floor(sessions / 2);
        /** @param {number} expected */
        const readAt = async (expected) => {
          const held = await reading.held();
          if (held !== null && held !== expected) {
            throw new Error(`${c.name}: the store holds ${held} sessions after ${expected} were created (evicted or lost): the slope would be wrong`);
          }
          return reading.read();
        };
        await createSessions(t.port, half, target.cookie);
        const atHalf = await readAt(half);
        await createSessions(t.port, sessions - half, target.cookie);
        const atFull = await readAt(sessions);
        const bytes = (atFull - atHalf) / (sessions - half);
        process.stderr.write(`memory ${c.name}: ${Math.round(bytes)} B per session\n`);
        return { name: c.name, target: c.target, measured: meter.label, atHalf, atFull, bytes, bar: c.bar };
      } finally {
        await reading.close();
      }
    } finally {
      await t.stop();
    }
  } finally {
    await service?.stop();
  }
}

/**
 * Every case (those whose target matches `only`, when given), one after the other.
 * @param {{ sessions?: number, redisUrl?: string | undefined, only?: string }} [options]
 *   redisUrl: a Redis to use (under a prefix per case); without it, a throwaway redis-server per case
 * @returns {Promise<MemoryResult>}
 */
async function measureMemory({ sessions = 100_000, redisUrl, only = '' } = {}) {
  /** @type {Row[]} */
  const rows = [];
  /** @type {string[]} */
  const notes = [];
  for (const c of CASES) {
    if (only && !only.split(',').some((part) => c.target.includes(part) || c.name.includes(part))) continue;
    const target = TARGETS[c.target];
    const absent = target ? missing(target) : [];
    if (absent.length) {
      notes.push(`${c.name}: left out, not built (${absent.join(', ')})`);
      continue;
    }
    rows.push(await measureCase(c, sessions, redisUrl, notes));
  }
  return { sessions, rows, notes, redisUrl };
}

/**
 * The Markdown for a result: the method in a sentence, the table, the notes.
 * @param {MemoryResult} memory
 * @returns {string[]}
 */
function memoryTable({ sessions, rows, notes, redisUrl }) {
  const half = Math.floor(sessions / 2);
  const n = (/** @type {number} */ x) => x.toLocaleString('en');
  const mb = (/** @type {number} */ x) => `${(x / 2 ** 20).toFixed(1)} MiB`;
  const lines = [
    `Sessions created through HTTP (GET /new without a cookie on each target, one session holding {"n":1} per request), ` +
      `memory read at ${n(half)} and at ${n(sessions)} sessions; bytes per session = (memory at ${n(sessions)} − memory at ${n(half)}) ÷ ${n(sessions - half)}, ` +
      'so what does not grow with the sessions (the process, the engine\'s bounded caches) cancels out. Heap: the server process after forced GCs; ' +
      `Redis: INFO used_memory, ${redisUrl ? `on ${redisUrl} (REDIS_URL), each store under a key prefix of its own` : 'each store on an empty throwaway redis-server'} (the growth of Redis's hash tables counts). Method in bench/memory.js.`,
    '',
    `| store | measured | at ${n(half)} | at ${n(sessions)} | bytes per session | bar |`,
    '|---|---|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const bar = r.bar === undefined ? '' : `${r.bytes <= r.bar ? '✅' : '❌'} ≤ ${r.bar}`;
    lines.push(`| ${r.name} | ${r.measured} | ${mb(r.atHalf)} | ${mb(r.atFull)} | ${Math.round(r.bytes)} | ${bar} |`);
  }
  if (notes.length) lines.push('', ...notes.map((x) => `- ${x}`));
  return lines;
}

module.exports = { CASES, METERS, measureMemory, memoryTable };

if (require.main === module) {
  runMain(async () => {
    const args = process.argv.slice(2);
    const i = args.indexOf('--only');
    const only = i === -1 ? '' : (args[i + 1] ?? '');
    const count = args.find((a, j) => /^\d+$/.test(a) && args[j - 1] !== '--only');
    const memory = await measureMemory({ sessions: Number(count ?? 100_000), redisUrl: process.env.REDIS_URL, only });
    console.log(memoryTable(memory).join('\n'));
  });
}
