// `npm run build && node bench/redis-figures.js`: Redis commands per request for RedisStore, from
// INFO commandstats around 1000 requests per case, on a throwaway redis-server (nothing else
// counted), plus how often read-only traffic extends the TTL under ttlExtension 'sliding'.
// Top-level round trips are EVALSHA + DEL; commands run inside our scripts are listed as well.
'use strict';
const http = require('node:http');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const Redis = require('ioredis');
const express = require('express');
const { session } = require('latchkey/express');
const { RedisStore } = require('latchkey/redis');

const N = Number(process.argv[2] || 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

function get(port, p, cookie) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: cookie ? { cookie } : {}, agent: keepAlive }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, setCookie: (res.headers['set-cookie'] || [])[0] }));
    });
    req.on('error', reject);
  });
}
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

async function main() {
  const redisPort = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-figures-'));
  const server = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const admin = new Redis(redisPort, '127.0.0.1');
  for (let i = 0; i < 100; i++) {
    try {
      await admin.ping();
      break;
    } catch {
      await sleep(50);
    }
  }
  const client = new Redis(redisPort, '127.0.0.1', { commandTimeout: 2000, maxRetriesPerRequest: 1 });
  for (const c of [admin, client]) c.on('error', () => {});
  const secret = 'figures-secret-that-is-long-enough-0123456789';
  const servers = [];
  async function app(options) {
    const a = express();
    a.use(session({ secret, store: new RedisStore({ client }), ...options }));
    a.get('/anon', (_req, res) => res.send('ok'));
    a.get('/read', (req, res) => res.send(String(req.session.get('n') ?? 0)));
    a.get('/write', (req, res) => {
      req.session.set('n', (req.session.get('n') ?? 0) + 1);
      res.send('ok');
    });
    const port = await freePort();
    const s = a.listen(port, '127.0.0.1');
    servers.push(s);
    await new Promise((r) => s.once('listening', r));
    return port;
  }
  async function stats() {
    const text = await admin.info('commandstats');
    const out = {};
    for (const m of text.matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) if (!['info', 'config', 'ping'].includes(m[1].split('|')[0])) out[m[1]] = Number(m[2]);
    return out;
  }
  async function measure(name, port, run) {
    await admin.config('RESETSTAT');
    await run();
    const s = await stats();
    const roundTrips = (s.evalsha || 0) + (s.eval || 0) + (s.del || 0);
    const inner = Object.entries(s).filter(([k]) => !['evalsha', 'eval', 'del'].includes(k)).map(([k, v]) => `${k} ${(v / N).toFixed(2)}`).join(', ');
    rows.push(`| ${name} | ${(roundTrips / N).toFixed(2)} | ${inner || '–'} |`);
  }
  const rows = ['| case (1000 requests) | Redis round trips per request | commands inside the scripts, per request |', '|---|---:|---|'];
  const port = await app({});
  const seed = (await get(port, '/write')).setCookie.split(';')[0];
  await measure('anonymous', port, async () => {
    for (let i = 0; i < N; i++) await get(port, '/anon');
  });
  await measure('read-only', port, async () => {
    for (let i = 0; i < N; i++) await get(port, '/read', seed);
  });
  let cookie = seed;
  await measure('write', port, async () => {
    for (let i = 0; i < N; i++) {
      const r = await get(port, '/write', cookie);
      if (r.setCookie) cookie = r.setCookie.split(';')[0];
    }
  });
  await measure('new session', port, async () => {
    for (let i = 0; i < N; i++) await get(port, '/write');
  });
  // Sliding: a 2 s TTL, 1000 reads spread over about 3 s: at most one extension per second (half the TTL).
  const slidingPort = await app({ ttl: 2, ttlExtension: 'sliding' });
  const slidingSeed = (await get(slidingPort, '/write')).setCookie.split(';')[0];
  let extensions = 0;
  const started = Date.now();
  await admin.config('RESETSTAT');
  let sc = slidingSeed;
  for (let i = 0; i < N; i++) {
    const r = await get(slidingPort, '/read', sc);
    if (r.setCookie) {
      extensions++;
      sc = r.setCookie.split(';')[0];
    }
    await sleep(3);
  }
  const seconds = (Date.now() - started) / 1000;
  const s = await stats();
  rows.push(
    `| read-only, ttl 2 s, sliding, over ${seconds.toFixed(1)} s | ${((s.evalsha || 0) / N).toFixed(3)} | ${(s.evalsha || 0) - N} TTL extensions beyond the 1000 loads, ${extensions} refreshed cookies; one per half-TTL allows ${Math.ceil(seconds)} |`,
  );
  console.log(rows.join('\n'));
  for (const s2 of servers) s2.close();
  keepAlive.destroy();
  client.disconnect();
  admin.disconnect();
  server.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
