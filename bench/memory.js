// Memory per session, each store filled with N sessions holding one small value ({"n":1}):
// heap bytes (MemoryStore vs express-session's MemoryStore, each in a fresh `node --expose-gc` child)
// and Redis bytes (RedisStore vs connect-redis, from INFO memory used_memory).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const heapChild = `
const kind = process.argv[1]; const n = Number(process.argv[2]);
const settle = () => { for (let i = 0; i < 4; i++) global.gc(); return process.memoryUsage().heapUsed; };
(async () => {
  let store, add;
  if (kind === 'latchkey') {
    const { MemoryStore } = require('latchkey');
    store = new MemoryStore({ maxSessions: n + 1, sweepIntervalMs: 0 });
    add = () => store.save(new Map([['n', '1']]), 86400);
  } else {
    const { MemoryStore } = require('express-session');
    const { randomBytes } = require('node:crypto');
    store = new MemoryStore();
    add = () => new Promise((resolve) => store.set(randomBytes(24).toString('base64url'),
      { cookie: { originalMaxAge: 86400000, expires: new Date(Date.now() + 86400000), httpOnly: true, path: '/' }, n: 1 }, resolve));
  }
  const before = settle();
  for (let i = 0; i < n; i++) await add();
  const after = settle();
  process.stdout.write(String((after - before) / n));
})();`;

function heapPerSession(kind, n) {
  return Number(execFileSync(process.execPath, ['--expose-gc', '-e', heapChild, kind, String(n)], { cwd: path.join(__dirname, '..'), encoding: 'utf8' }));
}

async function redisPerSession(redisUrl, kind, n) {
  const Redis = require('ioredis');
  const admin = new Redis(redisUrl);
  const used = async () => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))[1]);
  const prefix = `memtest:${process.pid}:${kind}:`;
  let close = async () => {};
  let add;
  if (kind === 'latchkey') {
    const { RedisStore } = require('latchkey/redis');
    const client = new Redis(redisUrl);
    const store = new RedisStore({ client, prefix });
    add = () => store.save(new Map([['n', '1']]), 86400);
    close = async () => client.disconnect();
  } else {
    const { createClient } = require('redis');
    const { RedisStore } = require('connect-redis');
    const client = createClient({ url: redisUrl });
    await client.connect();
    const store = new RedisStore({ client, prefix });
    const { randomBytes } = require('node:crypto');
    add = () =>
      store.set(randomBytes(24).toString('base64url'), {
        cookie: { originalMaxAge: 86400000, expires: new Date(Date.now() + 86400000), httpOnly: true, path: '/' },
        n: 1,
      });
    close = async () => client.quit();
  }
  const before = await used();
  for (let i = 0; i < n; i += 500) await Promise.all(Array.from({ length: Math.min(500, n - i) }, add));
  const after = await used();
  // Remove what we wrote.
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await admin.unlink(...keys);
  } while (cursor !== '0');
  await close();
  admin.disconnect();
  return (after - before) / n;
}

async function measureMemory(redisUrl, sessions) {
  const rows = [
    { name: 'latchkey MemoryStore (heap)', bytes: heapPerSession('latchkey', sessions), bar: 250 },
    { name: "express-session MemoryStore (heap)", bytes: heapPerSession('express-session', sessions) },
  ];
  if (fs.existsSync(path.join(__dirname, '..', 'dist', 'store', 'redis.js'))) {
    rows.push({ name: 'latchkey RedisStore (Redis used_memory)', bytes: await redisPerSession(redisUrl, 'latchkey', sessions), bar: 200 });
  }
  rows.push({ name: 'connect-redis (Redis used_memory)', bytes: await redisPerSession(redisUrl, 'connect-redis', sessions) });
  return { sessions, rows };
}

module.exports = { measureMemory };

if (require.main === module) {
  measureMemory(process.env.REDIS_URL || 'redis://127.0.0.1:6379', Number(process.argv[2] || 100_000)).then((m) => console.log(m));
}
