// @ts-check
// What the bench scripts share (run.js, memory.js, redis-figures.js): free ports, sleeping, medians;
// a throwaway redis-server, or a check of REDIS_URL, that fails loudly when Redis does not answer
// PING; starting a target process (bench/targets.js) and waiting for it to be ready; one HTTP GET;
// Redis key and memory helpers; the versions of the packages measured; an entry script's main.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Redis } = require('ioredis');

/**
 * A failure of the setup (Redis unreachable, a target that does not start), not of a measurement:
 * `runMain` prints its message without a stack trace.
 */
class SetupError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'SetupError';
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The median; NaN for no values.
 * @param {readonly number[]} xs
 */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  const hi = /** @type {number} */ (s[Math.floor(n / 2)]);
  return n % 2 ? hi : (/** @type {number} */ (s[n / 2 - 1]) + hi) / 2;
}

/**
 * A TCP port on 127.0.0.1 that nothing listens on right now.
 * @returns {Promise<number>}
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      if (address === null || typeof address === 'string') return reject(new Error('no port from listen(0)'));
      srv.close(() => resolve(address.port));
    });
  });
}

/**
 * Runs an entry script's main: exit code 1 on failure, a SetupError as its message alone.
 * @param {() => Promise<void>} main
 */
function runMain(main) {
  main().catch((err) => {
    if (err instanceof SetupError) console.error(`\n${path.basename(process.argv[1] ?? 'bench')}: ${err.message}`);
    else console.error(err);
    process.exit(1);
  });
}

/**
 * Resolves once `url` answers PING, or rejects with the last error once `timeoutMs` have passed.
 * @param {string} url
 * @param {number} timeoutMs
 * @param {() => string | undefined} [gone] a reason to stop early (the server exited), if any
 */
async function waitForRedis(url, timeoutMs, gone = () => undefined) {
  const deadline = Date.now() + timeoutMs;
  /** @type {unknown} */
  let last;
  for (;;) {
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: Math.min(1000, timeoutMs),
      commandTimeout: 1000,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    /** @type {unknown} */
    let cause; // the socket's error (ECONNREFUSED…), more telling than the "Connection is closed." that follows it
    client.on('error', (err) => (cause ??= err));
    try {
      await client.connect();
      const pong = await client.ping();
      if (pong === 'PONG') return;
      last = new Error(`PING answered ${pong}`);
    } catch (err) {
      last = cause ?? err;
    } finally {
      client.disconnect();
    }
    const why = gone();
    if (why !== undefined) throw new Error(why);
    if (Date.now() >= deadline) throw last instanceof Error ? last : new Error(String(last));
    await sleep(100);
  }
}

/**
 * @typedef {object} RedisHandle
 * @property {string} url where it answers
 * @property {boolean} throwaway whether this process started it (nothing else talks to it)
 * @property {() => Promise<void>} stop kills a started server (by pid) and removes its directory
 */

/**
 * A Redis to measure against: `url` (REDIS_URL, say) when given, checked with PING for up to 5 s;
 * else a throwaway redis-server on a free loopback port (nothing saved, its directory in the temp
 * dir), checked for up to 10 s. Rejects with a SetupError saying what to do when Redis does not answer.
 * @param {{ url?: string | undefined, label?: string, urlAllowed?: boolean }} [options] label: what names the URL in
 *   messages; urlAllowed false: the caller only ever uses a throwaway server (so no message suggests REDIS_URL)
 * @returns {Promise<RedisHandle>}
 */
async function startRedis({ url, label = 'REDIS_URL', urlAllowed = true } = {}) {
  if (url) {
    try {
      await waitForRedis(url, 5000);
    } catch (err) {
      throw new SetupError(
        `${label}=${url} did not answer PING within 5 s (${errorText(err)}).\n` +
          `Start Redis there (e.g. \`redis-server --port ${portOf(url)}\`) or fix ${label}; ` +
          `or leave ${label} unset and the bench starts its own throwaway redis-server (needs redis-server on PATH).`,
      );
    }
    return { url, throwaway: false, stop: async () => {} };
  }
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  /** @param {Buffer} d */
  const keep = (d) => (output = (output + d).slice(-2000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  /** @type {string | undefined} */
  let gone;
  child.once('error', (err) => (gone = errorText(err)));
  child.once('exit', (code, signal) => (gone ??= `redis-server exited (${signal ?? `code ${code}`})`));
  const killNow = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killNow); // never leave one behind, even when this process dies
  const exited = new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  const stop = async () => {
    killNow();
    await Promise.race([exited, sleep(5000)]);
    process.removeListener('exit', killNow);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const url2 = `redis://127.0.0.1:${port}`;
  try {
    await waitForRedis(url2, 10_000, () => gone);
  } catch (err) {
    await stop();
    const missing = /ENOENT/.test(errorText(err));
    throw new SetupError(
      missing
        ? `redis-server is not on PATH, so no throwaway Redis could be started. Install Redis 7 (redis-server)${urlAllowed ? `, or set ${label} to a Redis to use` : ''}.`
        : `the throwaway redis-server on 127.0.0.1:${port} (pid ${child.pid}) did not answer PING within 10 s (${errorText(err)}).` +
            `${output.trim() ? `\nIts output:\n${output.trim()}` : ''}\n` +
            `Check that redis-server starts by hand on a free port${urlAllowed ? `, or set ${label} to a Redis that answers` : ''}.`,
    );
  }
  return { url: url2, throwaway: true, stop };
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof Error) return /** @type {NodeJS.ErrnoException} */ (err).code ? `${/** @type {NodeJS.ErrnoException} */ (err).code}: ${err.message}` : err.message;
  return String(err);
}

/** @param {string} url */
function portOf(url) {
  try {
    return new URL(url).port || '6379';
  } catch {
    return '6379';
  }
}

/**
 * @typedef {object} TargetProcess
 * @property {number} port where it listens, on 127.0.0.1
 * @property {number | undefined} pid
 * @property {() => Promise<void>} stop SIGTERM, resolved once it exited
 */

/**
 * Starts `node [nodeFlags] bench/targets.js <name> <port> <redisUrl> <keyPrefix>` and waits for its
 * "ready" line (10 s at the most).
 * @param {string} name a key of the TARGETS table in bench/targets.js
 * @param {{ redisUrl?: string, keyPrefix?: string, nodeFlags?: string[] }} [options]
 * @returns {Promise<TargetProcess>}
 */
async function startTarget(name, { redisUrl = '', keyPrefix = '', nodeFlags = [] } = {}) {
  const port = await freePort();
  const { pid, stop } = await startReady(`target ${name}`, [...nodeFlags, path.join(__dirname, 'targets.js'), name, String(port), redisUrl, keyPrefix]);
  return { port, pid, stop };
}

/**
 * Starts `node <args>` (stderr inherited) and waits for it to print "ready" (10 s at the most).
 * @param {string} label what names the process in errors
 * @param {string[]} args node's arguments: flags, the script, its arguments
 * @returns {Promise<{ pid: number | undefined, stop: () => Promise<void> }>} stop: SIGTERM, resolved once it exited
 */
async function startReady(label, args) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new SetupError(`${label} did not print "ready" within 10 s`)), 10_000);
      child.stdout.on('data', (d) => {
        if (String(d).includes('ready')) {
          clearTimeout(timer);
          resolve(undefined);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new SetupError(`${label} exited with ${code} before it was ready`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    pid: child.pid,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * @typedef {object} Response
 * @property {number} status
 * @property {string} body
 * @property {string[]} setCookie every Set-Cookie header
 */

/**
 * One GET to 127.0.0.1:`port`, 5 s at the most.
 * @param {number} port
 * @param {string} reqPath
 * @param {{ cookie?: string, agent?: http.Agent }} [options]
 * @returns {Promise<Response>}
 */
function httpGet(port, reqPath, { cookie, agent } = {}) {
  return new Promise((resolve, reject) => {
    /** @type {http.RequestOptions} */
    const opts = { host: '127.0.0.1', port, path: reqPath, headers: cookie ? { cookie } : {} };
    if (agent) opts.agent = agent;
    const req = http.get(opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${reqPath} on port ${port}: no answer in 5 s`)));
    req.on('error', reject);
  });
}

/**
 * Redis `INFO memory` used_memory, in bytes.
 * @param {Redis} client
 */
async function usedMemory(client) {
  const m = /used_memory:(\d+)/.exec(await client.info('memory'));
  if (!m) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

/**
 * Calls `each` with every batch of keys matching `<prefix>*` (SCAN, so it does not block Redis).
 * @param {Redis} client
 * @param {string} prefix
 * @param {(keys: string[]) => Promise<unknown>} each
 */
async function scanPrefix(client, prefix, each) {
  const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await each(keys);
  } while (cursor !== '0');
}

/**
 * How many keys start with `prefix`.
 * @param {Redis} client
 * @param {string} prefix
 */
async function countKeys(client, prefix) {
  let n = 0;
  await scanPrefix(client, prefix, async (keys) => (n += keys.length));
  return n;
}

/**
 * Removes every key that starts with `prefix`; returns how many.
 * @param {Redis} client
 * @param {string} prefix
 */
async function removeKeys(client, prefix) {
  let n = 0;
  await scanPrefix(client, prefix, async (keys) => (n += await client.unlink(...keys)));
  return n;
}

/**
 * The installed version of a package (read from node_modules, also where its exports hide package.json).
 * @param {string} name
 * @returns {string}
 */
function packageVersion(name) {
  try {
    return require(`${name}/package.json`).version;
  } catch {
    try {
      return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return 'not installed';
    }
  }
}

/**
 * The version of the redis-server binary on PATH, or of the server at `client` when given.
 * @param {Redis} [client]
 */
async function redisServerVersion(client) {
  if (client) return /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? 'unknown';
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'not found';
  }
}

/**
 * `{ node, latchkey, <each package>: version }`.
 * @param {readonly string[]} packages
 * @returns {Record<string, string>}
 */
function versions(packages) {
  /** @type {Record<string, string>} */
  const out = { node: process.version, latchkey: require('../package.json').version };
  for (const p of packages) out[p] = packageVersion(p);
  return out;
}

/**
 * The command line's `--name value` and `--name` switches, one reader for every bench script.
 * @param {readonly string[]} [argv]
 */
function commandLine(argv = process.argv.slice(2)) {
  return {
    /** @param {string} name */
    flag: (name) => argv.includes(`--${name}`),
    /** The value after `--name` as a string, or `dflt` when it is absent. @param {string} name @param {string} dflt */
    value: (name, dflt) => {
      const i = argv.indexOf(`--${name}`);
      return i === -1 || argv[i + 1] === undefined ? dflt : String(argv[i + 1]);
    },
  };
}

module.exports = {
  SetupError,
  commandLine,
  countKeys,
  freePort,
  httpGet,
  median,
  packageVersion,
  redisServerVersion,
  removeKeys,
  runMain,
  sleep,
  startReady,
  startRedis,
  startTarget,
  usedMemory,
  versions,
  waitForRedis,
};
