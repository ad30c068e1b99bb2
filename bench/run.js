// `npm run bench [-- --quick] [-- --rounds N --duration MS --only substring]`
// latchkey side by side with express-session (+ connect-redis) and koa-session, in one run on one
// machine: each target in its own process, the load generator (bench/load.js) in another, loopback only,
// the target order alternating between rounds, medians over rounds. Writes bench/RESULTS.md and
// bench/ratios.svg, and prints the table.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const Redis = require('ioredis');
const { measureMemory } = require('./memory');
const { renderSvg } = require('./svg');

const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const value = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : args[i + 1];
};
const quick = flag('quick');
const rounds = Number(value('rounds', quick ? 1 : 5));
const durationMs = Number(value('duration', quick ? 1500 : 5000));
const connections = Number(value('connections', 50));
const only = value('only', '');
const SCENARIOS = ['anon', 'read', 'write', 'new'];

/** name, framework (for the ratio), cookie name, whether it uses Redis. */
const TARGETS = [
  ['node-http', 'node', null, false],
  ['express', 'express', null, false],
  ['koa', 'koa', null, false],
  ['latchkey-express:memory', 'express', 'sid', false],
  ['latchkey-express:redis', 'express', 'sid', true],
  ['latchkey-express:cookie', 'express', 'sid', false],
  ['express-session:memory', 'express', 'connect.sid', false],
  ['express-session:connect-redis', 'express', 'connect.sid', true],
  ['latchkey-koa:memory', 'koa', 'sid', false],
  ['latchkey-koa:redis', 'koa', 'sid', true],
  ['latchkey-koa:cookie', 'koa', 'sid', false],
  ['koa-session:cookie', 'koa', 'koa.sess', false],
  ['koa-session:ioredis', 'koa', 'koa.sess', true],
].filter(([name]) => !only || name.includes(only) || ['express', 'koa', 'node-http'].includes(name));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'pipe' });
      break;
    } catch {
      await sleep(100);
    }
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startTarget(name, redisUrl) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(__dirname, 'targets.js'), name, String(port), redisUrl], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 10 s`)), 10_000);
    child.stdout.on('data', (d) => {
      if (String(d).includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { port, stop: () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('exit', r), child.kill('SIGTERM')))) };
}

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

async function targetStats(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end('GET /__stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let text = '';
    socket.on('data', (d) => (text += d));
    socket.on('close', () => {
      try {
        resolve(JSON.parse(text.split('\r\n\r\n')[1]));
      } catch {
        resolve({ redisCommands: 0 });
      }
    });
    socket.on('error', () => resolve({ redisCommands: 0 }));
  });
}

const ADMIN = new Set(['info', 'config', 'client', 'ping', 'hello', 'select', 'command', 'flushall', 'dbsize', 'memory', 'script']);
async function serverCommands(admin) {
  const text = await admin.info('commandstats');
  let total = 0;
  for (const m of text.matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) {
    if (!ADMIN.has(m[1].split('|')[0])) total += Number(m[2]);
  }
  return total;
}

function versions() {
  const v = (p) => {
    try {
      return require(`${p}/package.json`).version;
    } catch {
      return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'node_modules', p, 'package.json'), 'utf8')).version;
    }
  };
  return {
    node: process.version,
    latchkey: require('../package.json').version,
    express: v('express'),
    koa: v('koa'),
    'express-session': v('express-session'),
    'connect-redis': v('connect-redis'),
    redis: v('redis'),
    'koa-session': v('koa-session'),
    ioredis: v('ioredis'),
    'redis-server': execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)[1],
  };
}

function available(name) {
  if (!name.startsWith('latchkey')) return true;
  const store = name.split(':')[1];
  const framework = name.split(':')[0].replace('latchkey-', '');
  const need = [`../dist/middleware/${framework}.js`];
  if (store === 'redis') need.push('../dist/store/redis.js');
  if (store === 'cookie') need.push('../dist/store/cookie.js');
  return need.every((f) => fs.existsSync(path.join(__dirname, f)));
}

async function main() {
  const redis = await startRedis();
  const admin = new Redis(redis.url);
  const targets = TARGETS.filter(([name]) => available(name));
  const skipped = TARGETS.filter(([name]) => !available(name)).map(([n]) => n);
  if (skipped.length) console.error(`not built, left out: ${skipped.join(', ')}`);
  /** results[target][scenario] = [{...load, ratio, redisPerRequest}] per round */
  const results = {};
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      const bare = {};
      const roundResults = {};
      for (const [name, framework, cookieName, usesRedis] of order) {
        const t = await startTarget(name, redis.url);
        try {
          for (const scenario of SCENARIOS) {
            if (usesRedis) await admin.config('RESETSTAT');
            const before = usesRedis ? (await targetStats(t.port)).redisCommands : 0;
            const r = await runLoad({ port: t.port, scenario, connections, durationMs, cookieName, bare: cookieName === null });
            if (usesRedis) {
              const client = (await targetStats(t.port)).redisCommands - before;
              const server = await serverCommands(admin);
              // ioredis targets are counted at the client (a script is one EVALSHA round trip); connect-redis
              // sends plain commands, so the server's count is its round trips.
              r.redisPerRequest = (client > 0 ? client : server) / r.requests;
              r.redisServerCommandsPerRequest = server / r.requests;
            }
            (roundResults[name] ??= {})[scenario] = r;
            if (cookieName === null) bare[`${framework}:${scenario}`] = r;
            process.stderr.write(`round ${round + 1}/${rounds} ${name} ${scenario}: ${Math.round(r.rps)} req/s\n`);
          }
        } finally {
          await t.stop();
        }
      }
      for (const [name, framework] of targets) {
        for (const scenario of SCENARIOS) {
          const r = roundResults[name][scenario];
          const b = bare[`${framework}:${scenario}`];
          r.ratio = b ? r.rps / b.rps : NaN;
          r.addedMicros = b ? 1e6 / r.rps - 1e6 / b.rps : NaN;
          ((results[name] ??= {})[scenario] ??= []).push(r);
        }
      }
    }
    const memory = await measureMemory(redis.url, quick ? 20_000 : 100_000);
    report(results, memory, targets);
  } finally {
    admin.disconnect();
    await redis.stop();
  }
}

const BARS = {
  'latchkey-express:memory': { anon: 0.97, read: 0.9, write: 0.8, new: 0.8 },
  'latchkey-express:redis': { anon: 0.97, read: 0.85, write: 0.7, new: 0.7 },
  'latchkey-koa:memory': { anon: 0.97, read: 0.75, write: 0.6, new: 0.6 },
  'latchkey-koa:redis': { anon: 0.97, read: 0.55, write: 0.45, new: 0.45 },
};

function report(results, memory, targets) {
  const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const lines = [];
  const v = versions();
  lines.push('# latchkey benchmark results', '');
  lines.push(`Run on ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} × ${os.cpus()[0].model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}.`);
  lines.push(`Versions: ${Object.entries(v).map(([k, x]) => `${k} ${x}`).join(', ')}.`);
  lines.push(
    `Method: \`npm run bench${quick ? ' -- --quick' : ''}\`: ${rounds} round(s), ${durationMs / 1000} s per scenario, ${connections} keep-alive connections, one request in flight per connection; each target in its own process, the load generator (bench/load.js) in another; target order reversed every other round; medians over rounds. Ratio = req/s ÷ the bare framework's req/s on the same route in the same round. "added µs" = 1/rps − 1/rps(bare), per request across the server.`,
    '',
  );
  lines.push('| target | scenario | req/s | ratio to bare | bar | added µs/req | p99 ms | Set-Cookie/resp | Redis round trips/req | check |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const [name] of targets) {
    for (const scenario of SCENARIOS) {
      const runs = results[name][scenario];
      const m = (k) => median(runs.map((r) => r[k]));
      const bar = BARS[name]?.[scenario];
      const ratio = m('ratio');
      const bad = runs.reduce((n, r) => n + r.wrong + r.errors + r.non2xx, 0);
      lines.push(
        `| ${name} | ${scenario} | ${Math.round(m('rps'))} | ${fmt(ratio)} | ${bar ? `${ratio >= bar ? '✅' : '❌'} ≥ ${bar}` : ''} | ${fmt(m('addedMicros'), 1)} | ${fmt(m('p99'), 1)} | ${fmt(m('setCookiePerResponse'))} | ${runs[0].redisPerRequest === undefined ? '' : fmt(m('redisPerRequest'))} | ${bad === 0 ? 'ok' : `${bad} wrong/failed`} |`,
      );
    }
  }
  lines.push('', '## Memory per session', '');
  lines.push(`${memory.sessions.toLocaleString('en')} sessions holding one small value ({"n":1}).`, '');
  lines.push('| store | bytes per session | bar |', '|---|---:|---|');
  for (const row of memory.rows) lines.push(`| ${row.name} | ${Math.round(row.bytes)} | ${row.bar ? `${row.bytes <= row.bar ? '✅' : '❌'} ≤ ${row.bar}` : ''} |`);
  lines.push('', '![ratios](ratios.svg)', '');
  const md = lines.join('\n');
  process.stdout.write(`${md}\n`);
  fs.writeFileSync(path.join(__dirname, 'RESULTS.md'), `${md}\n`);
  fs.writeFileSync(path.join(__dirname, 'ratios.svg'), renderSvg(targets.filter(([, , c]) => c !== null).map(([name]) => [name, SCENARIOS.map((s) => median(results[name][s].map((r) => r.ratio)))]), SCENARIOS));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
