// @ts-check
// `npm run build && node bench/redis-figures.js [requests per case] [sessions for memory]`
//
// RedisStore's figures, measured on a throwaway redis-server (free loopback port, nothing on disk,
// nothing else talking to it; REDIS_URL is not used, since part 2 flushes the server), against an
// in-process Express app with latchkey + RedisStore:
//   1. Redis commands per request, from INFO commandstats (CONFIG RESETSTAT before each case) around
//      1000 requests per case. Redis lists every command it ran: the EVALSHA our client sent, and also
//      the HGETALL, PTTL, HSET… each script ran inside Redis. Only what the client sends is a round
//      trip, so round trips = evalsha + eval + del + any other command the client sent directly.
//   2. Redis memory per session, direct saves: INFO memory used_memory before and after saving 100 000
//      sessions holding one small value ({"n":1}) through the store itself (no HTTP), from an empty
//      server, divided by 100 000; connect-redis (with the `redis` client, express-session's record for
//      the same state) on the same server for comparison. The bar is not checked here: it is for
//      sessions created through HTTP, as a slope from 50 000 to 100 000, by bench/memory.js.
//   3. Where the JSON check on load costs, per value: JSON.parse in Node (what RedisStore does) vs
//      checking inside the load script in Redis's Lua (cjson.decode alone, inexact; or cjson.decode
//      and a filter for what cjson accepts and JSON does not, exact).
// Prints Markdown tables.
'use strict';
const http = require('node:http');
const { Redis } = require('ioredis');
const express = require('express');
const { session } = require('latchkey/express');
const { RedisStore } = require('latchkey/redis');
const { httpGet, redisServerVersion, runMain, sleep, startRedis, usedMemory } = require('./util');

const N = Number(process.argv[2] || 1000);
const SESSIONS = Number(process.argv[3] || 100_000);

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
/**
 * GET on the one keep-alive connection; anything but 200 is an error.
 * @param {number} port
 * @param {string} p
 * @param {string} [cookie]
 */
async function get(port, p, cookie) {
  const r = await httpGet(port, p, cookie ? { cookie, agent } : { agent });
  if (r.status !== 200) throw new Error(`${p}: HTTP ${r.status} ${r.body}`);
  return { body: r.body, setCookie: r.setCookie[0] };
}
/** @param {string | undefined} setCookie */
const cookieOf = (setCookie) => {
  if (!setCookie) throw new Error('expected a Set-Cookie');
  return setCookie.split(';')[0] ?? '';
};

async function main() {
  const redis = await startRedis({ urlAllowed: false }); // never REDIS_URL: part 2 flushes the server
  /** @type {http.Server[]} */
  const servers = [];
  /** @type {Redis[]} */
  const clients = [];
  try {
    const admin = new Redis(redis.url);
    clients.push(admin);
    const client = new Redis(redis.url, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
    client.on('error', (err) => console.error('redis:', err.message));
    clients.push(client);
    const version = await redisServerVersion(admin);
    const redisPort = new URL(redis.url).port;

    const secret = 'figures-secret-that-is-long-enough-0123456789';
    /**
     * An Express app with latchkey on RedisStore, listening on a free port; resolves with the port.
     * @param {Omit<import('latchkey').SessionOptions, 'secret' | 'store'>} options
     * @returns {Promise<number>}
     */
    async function app(options) {
      const a = express();
      a.use(session({ secret, store: new RedisStore({ client }), ...options }));
      a.get('/anon', (_req, res) => res.send('ok'));
      a.get('/read', (req, res) => res.send(String(req.session.get('n') ?? 0)));
      a.get('/write', (req, res) => {
        const n = Number(req.session.get('n') ?? 0) + 1;
        req.session.set('n', n);
        res.send(String(n));
      });
      const s = a.listen(0, '127.0.0.1');
      servers.push(s);
      await new Promise((r) => s.once('listening', r));
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('the app has no port');
      return address.port;
    }

    /** @returns {Promise<Record<string, { calls: number, usec: number }>>} calls and time by command, admin commands left out */
    async function commandstats() {
      const text = await admin.info('commandstats');
      /** @type {Record<string, { calls: number, usec: number }>} */
      const out = {};
      for (const m of text.matchAll(/cmdstat_([a-z|_-]+):calls=(\d+),usec=(\d+)/g)) {
        const command = m[1] ?? '';
        if (!['info', 'config'].includes(command.split('|')[0] ?? '')) out[command] = { calls: Number(m[2]), usec: Number(m[3]) };
      }
      return out;
    }
    // The client sends EVALSHA (EVAL once after NOSCRIPT) and DEL; everything else runs inside a script.
    const DIRECT = ['evalsha', 'eval', 'del', 'script|load'];
    /** @type {string[]} */
    const rows = [];
    /**
     * One row: the commands Redis ran while `run` ran, per request.
     * @param {string} name
     * @param {string} expected round trips per request
     * @param {() => Promise<string | void>} run resolves with a note, if any
     */
    async function measure(name, expected, run) {
      await admin.config('RESETSTAT');
      const note = await run();
      const s = await commandstats();
      const direct = DIRECT.reduce((sum, c) => sum + (s[c]?.calls || 0), 0);
      const inner = Object.entries(s)
        .filter(([k]) => !DIRECT.includes(k))
        .map(([k, v]) => `${k} ${(v.calls / N).toFixed(3)}`)
        .join(', ');
      const shas = s.evalsha ? `${(s.evalsha.usec / s.evalsha.calls).toFixed(1)} µs` : '–';
      rows.push(`| ${name} | ${expected} | ${(direct / N).toFixed(3)} | ${shas} | ${inner || '–'} | ${note || ''} |`);
    }

    const port = await app({});
    const seed = cookieOf((await get(port, '/write')).setCookie);
    await measure('anonymous (no cookie, session untouched)', '0', async () => {
      for (let i = 0; i < N; i++) await get(port, '/anon');
    });
    await measure('read-only (cookie, reads `n`)', '1', async () => {
      let setCookies = 0;
      for (let i = 0; i < N; i++) if ((await get(port, '/read', seed)).setCookie) setCookies++;
      return `${setCookies} Set-Cookie`;
    });
    let cookie = seed;
    await measure('write (cookie, `n` + 1)', '2', async () => {
      let last;
      for (let i = 0; i < N; i++) {
        const r = await get(port, '/write', cookie);
        if (r.setCookie) cookie = cookieOf(r.setCookie);
        last = r.body;
      }
      return `n = ${last} at the end`;
    });
    await measure('new session (no cookie, sets `n`)', '1', async () => {
      for (let i = 0; i < N; i++) await get(port, '/write');
    });

    // Sliding TTL: read-only traffic extends the TTL once half of it is spent, never more often.
    /**
     * @param {number} ttl seconds
     * @param {number} pauseMs between requests
     */
    async function sliding(ttl, pauseMs) {
      const p = await app({ ttl, ttlExtension: 'sliding' });
      let c = cookieOf((await get(p, '/write')).setCookie);
      /** @type {number[]} */
      const at = [];
      const started = Date.now();
      await measure(`read-only, ttlExtension 'sliding', ttl ${ttl} s`, `1 (+1 per ${ttl / 2} s)`, async () => {
        for (let i = 0; i < N; i++) {
          const r = await get(p, '/read', c);
          if (r.body !== '1') throw new Error(`sliding read ${i} saw n = ${r.body}`);
          if (r.setCookie) {
            at.push(Date.now());
            c = cookieOf(r.setCookie);
          }
          if (pauseMs) await sleep(pauseMs);
        }
        const seconds = (Date.now() - started) / 1000;
        const gaps = at.slice(1).map((t, i) => t - (at[i] ?? t));
        const gapText = gaps.length ? `, shortest gap ${(Math.min(...gaps) / 1000).toFixed(2)} s` : '';
        return `${at.length} extensions over ${seconds.toFixed(1)} s (one per half-TTL allows at most ${Math.floor(seconds / (ttl / 2)) + 1})${gapText}`;
      });
    }
    await sliding(60, 0);
    await sliding(2, 3);

    console.log(`RedisStore on redis-server ${version} (throwaway, port ${redisPort}), ${N} sequential keep-alive requests per case, Node ${process.version}.\n`);
    console.log('| case | expected | Redis round trips per request (evalsha + del) | Redis time per EVALSHA | commands run inside the scripts, per request | notes |');
    console.log('|---|---:|---:|---:|---|---|');
    console.log(rows.join('\n'));
    console.log('\nRedis counts the commands a script runs under their own names (hgetall, pttl, hset, …) as well as the EVALSHA that ran it; only what the client sends is a round trip.');

    // 2. Memory per session.
    const used = () => usedMemory(admin);
    /** @param {() => Promise<unknown>} add saves one session */
    async function perSession(add) {
      await admin.flushall();
      const before = await used();
      for (let i = 0; i < SESSIONS; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, SESSIONS - i) }, add));
      const keys = await admin.dbsize();
      if (keys !== SESSIONS) throw new Error(`expected ${SESSIONS} keys, found ${keys}`);
      const after = await used();
      const sample = (await admin.randomkey()) || '';
      const info = { bytes: (after - before) / SESSIONS, encoding: await admin.object('ENCODING', sample), usage: await admin.memory('USAGE', sample), sample };
      await admin.flushall();
      return info;
    }
    const store = new RedisStore({ client });
    const latchkeyMem = await perSession(() => store.save(new Map([['n', '1']]), 86400));
    const { createClient } = require('redis');
    const { RedisStore: ConnectRedisStore } = require('connect-redis');
    const { randomBytes } = require('node:crypto');
    const nodeRedis = createClient({ url: redis.url });
    nodeRedis.on('error', (err) => console.error('node-redis:', err.message));
    await nodeRedis.connect();
    const connectRedis = new ConnectRedisStore({ client: nodeRedis });
    const connectMem = await perSession(() =>
      connectRedis.set(randomBytes(24).toString('base64url'), {
        cookie: { originalMaxAge: 86400000, expires: new Date(Date.now() + 86400000), httpOnly: true, path: '/' },
        n: 1,
      }),
    );
    await nodeRedis.quit();
    console.log(
      `\nRedis memory per session, direct saves through the store (no HTTP), from an empty server: used_memory after − before saving ${SESSIONS.toLocaleString('en')} sessions holding {"n":1}, ÷ ${SESSIONS.toLocaleString('en')}. ` +
        'The bar (sessions created through HTTP, slope from 50,000 to 100,000) is checked by `node bench/memory.js`, not here.\n',
    );
    console.log('| store | bytes per session (direct saves) | encoding | MEMORY USAGE of one key |');
    console.log('|---|---:|---|---:|');
    console.log(`| latchkey RedisStore | ${latchkeyMem.bytes.toFixed(1)} | ${latchkeyMem.encoding} | ${latchkeyMem.usage} |`);
    console.log(`| connect-redis (express-session record) | ${connectMem.bytes.toFixed(1)} | ${connectMem.encoding} | ${connectMem.usage} |`);

    // 3. The JSON check on load: in Redis (cjson.decode under pcall, as the load script does) or in Node.
    const values = {
      '{"n":1}: the value `1`': '1',
      'a cart': JSON.stringify({ items: Array.from({ length: 12 }, (_, i) => ({ sku: `SKU-${1000 + i}`, qty: i % 3, price: 9.99 + i, title: 'a product title' })) }),
      'an object of 200 keys': JSON.stringify(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`key${i}`, { v: i, s: 'x'.repeat(20), f: i / 7 }]))),
    };
    // Iterations per value: enough for a stable figure, few enough that the 13 kB case stays short.
    const loopsFor = (/** @type {string} */ text) => (text.length > 5000 ? 2_000 : 20_000);
    // The store checks values with JSON.parse in Node. The alternative measured here, and rejected:
    // checking in Redis with cjson, which is inexact (it accepts NaN, 0x10, 01, +1, 1., -.5 and raw
    // control characters in strings), so it needs a filter for those too (`plain`, below; fuzzed
    // against JSON.parse with 400 000 mutated texts without a miss).
    const plainLua = `local function plain(x)
  if string.find(x, '[%z\\1-\\31]') then return false end
  local t = string.gsub(string.gsub(x, [[\\.]], ''), '"[^"]*"', '')
  t = string.gsub(string.gsub(string.gsub(t, 'true', ' '), 'false', ' '), 'null', ' ')
  return not (string.find(t, '[^%d%s%.eE%+%-,:%[%]{}]') or string.find(t, '%.%D') or string.find(t, '%D%.')
    or string.find(t, '^%.') or string.find(t, '%.$') or string.find(t, '%-%D') or string.find(t, '%-$')
    or string.find(t, '^%+') or string.find(t, '[^eE]%+') or string.find(t, '%D[eE]') or string.find(t, '^[eE]')
    or string.find(t, '[eE][^%d%+%-]') or string.find(t, '[eE]$') or string.find(t, '^%-?0%d')
    or string.find(t, '[^%d%.eE%+%-]%-?0%d'))
end
`;
    const timedLoop = (/** @type {string} */ check) => `${plainLua}local ok = 0 for i = 1, tonumber(ARGV[2]) do if ${check} then ok = ok + 1 end end return ok`;
    const loops = {
      decode: timedLoop('pcall(cjson.decode, ARGV[1])'),
      both: timedLoop('pcall(cjson.decode, ARGV[1]) and plain(ARGV[1])'),
      empty: timedLoop('ARGV[1]'),
    };
    /** @param {string} script @param {string} text */
    async function luaNsPer(script, text) {
      const t = process.hrtime.bigint();
      const ok = await admin.eval(script, 0, text, loopsFor(text));
      if (ok !== loopsFor(text)) throw new Error(`the check refused ${text.slice(0, 40)}`);
      return Number(process.hrtime.bigint() - t);
    }
    const jsonRows = [];
    for (const [label, text] of Object.entries(values)) {
      const LOOPS = loopsFor(text);
      const empty = await luaNsPer(loops.empty, text);
      const decodeNs = ((await luaNsPer(loops.decode, text)) - empty) / LOOPS;
      const luaNs = ((await luaNsPer(loops.both, text)) - empty) / LOOPS;
      for (let i = 0; i < 2000; i++) JSON.parse(text); // warm-up
      const t = process.hrtime.bigint();
      for (let i = 0; i < LOOPS; i++) JSON.parse(text);
      const nodeNs = Number(process.hrtime.bigint() - t) / LOOPS;
      jsonRows.push(`| ${label} (${text.length} B) | ${(nodeNs / 1000).toFixed(2)} µs | ${(decodeNs / 1000).toFixed(2)} µs | ${(luaNs / 1000).toFixed(2)} µs |`);
    }
    console.log(`\nCost of checking one value is JSON, per load (20,000 iterations per value, 2,000 for the largest; Lua loop overhead subtracted).\n`);
    console.log('| value | JSON.parse in Node (what RedisStore does) | cjson.decode in Redis (inexact) | cjson.decode + filter in Redis (exact) |');
    console.log('|---|---:|---:|---:|');
    console.log(jsonRows.join('\n'));
  } finally {
    for (const s of servers) s.close();
    agent.destroy();
    for (const c of clients) c.disconnect();
    await redis.stop();
  }
}

runMain(main);
