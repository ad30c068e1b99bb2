// @ts-check
// CPU per request, in the server process: `node bench/cpu.js [--targets a,b] [--scenarios new,write]
// [--duration ms] [--rounds n] [--prof dir]`. Throughput on a shared 2-core machine moves with
// whatever else runs; the CPU time a target spends per request moves far less, so this is the figure
// to compare code changes by (the issue that asked for it measured latchkey-koa:memory `new` at
// ~135 µs against bare Koa's 45-55). Each target runs in its own process, the load generator
// (bench/load.js) in another; the figure is the target's cpuUsage() delta over the run ÷ requests,
// medians over rounds. `--prof dir` adds `node --cpu-prof --cpu-prof-dir dir` to the targets.
'use strict';
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Redis } = require('ioredis');
const { commandLine, httpGet, median, runMain, startRedis, startTarget } = require('./util');
const { TARGETS } = require('./targets');

const { value } = commandLine();
const targets = value('targets', 'koa,latchkey-koa:memory,express,latchkey-express:memory').split(',');
const scenarios = value('scenarios', 'anon,read,write,new').split(',');
const durationMs = Number(value('duration', '3000'));
const rounds = Number(value('rounds', '3'));
const prof = value('prof', '');

/** @param {object} options @returns {Promise<{ requests: number }>} */
function load(options) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'load.js'), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load failed (${code})`))));
  });
}

/** redis-server's CPU so far, µs (user + system, from INFO cpu). @param {Redis} client */
async function redisCpuOf(client) {
  const info = await client.info('cpu');
  const field = (/** @type {string} */ name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}

/** @param {number} port */
async function cpuOf(port) {
  return /** @type {{ cpuMicros: number }} */ (JSON.parse((await httpGet(port, '/__stats')).body)).cpuMicros;
}

runMain(async () => {
  const needsRedis = targets.some((t) => TARGETS[t]?.redis);
  const redis = needsRedis ? await startRedis() : undefined;
  const redisClient = redis ? new Redis(redis.url) : undefined;
  /** @type {Record<string, number[]>} */
  const results = {};
  /** @type {Record<string, number[]>} */
  const redisResults = {};
  try {
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 ? [...targets].reverse() : targets) {
        const t = TARGETS[name];
        if (!t) throw new Error(`unknown target ${name}`);
        const proc = await startTarget(name, { redisUrl: redis?.url ?? '', nodeFlags: prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [] });
        try {
          for (const scenario of scenarios) {
            // A short warm-up, so JIT compilation is not counted.
            await load({ port: proc.port, scenario, connections: 20, durationMs: 500, cookieName: t.cookie, bare: t.cookie === null });
            const before = await cpuOf(proc.port);
            const redisBefore = t.redis && redisClient ? await redisCpuOf(redisClient) : undefined;
            const r = await load({ port: proc.port, scenario, connections: 20, durationMs, cookieName: t.cookie, bare: t.cookie === null });
            const spent = (await cpuOf(proc.port)) - before;
            (results[`${name} ${scenario}`] ??= []).push(spent / r.requests);
            if (redisBefore !== undefined && redisClient) (redisResults[`${name} ${scenario}`] ??= []).push(((await redisCpuOf(redisClient)) - redisBefore) / r.requests);
          }
        } finally {
          await proc.stop();
        }
      }
    }
  } finally {
    redisClient?.disconnect();
    await redis?.stop();
  }
  console.log('| target | scenario | CPU µs per request (median) | rounds | redis-server CPU µs per request |');
  console.log('|---|---|---:|---|---:|');
  for (const [key, xs] of Object.entries(results)) {
    const [name, scenario] = key.split(' ');
    const r = redisResults[key];
    console.log(`| ${name} | ${scenario} | ${median(xs).toFixed(1)} | ${xs.map((x) => x.toFixed(0)).join(', ')} | ${r ? median(r).toFixed(1) : ''} |`);
  }
});
