// @ts-check
// The soak's target process (bench/soak.js starts it): `node --expose-gc bench/soak-target.js '<json config>'`.
// latchkey on Express or Koa with a RedisStore on one Redis or a Cluster, with the README's earlier ioredis
// options or ioredis's defaults, serving (values are JSON: {"n": number | null, "isNew": boolean}):
//   /write  n + 1        /read  n        /renew  renew(), n        /purge  purge()
// and, ahead of the framework:
//   /__heap   {"heapUsed": bytes after forced GCs}
//   /__arm?signal=SIGSTOP|SIGKILL&pid=<redis-server pid>[&ids=<record id>,…][&within=ms][&hold=ms][&delay=ms]
//             answers once the signal is sent: just before the next rotating update goes out (to a
//             record in `ids`, when given), or after `within` ms (default 1000) without one, so a
//             rotating write is in flight when the fault strikes. `hold`: the app stops reading its
//             Redis socket for `hold` ms and the signal follows `delay` ms later, so Redis applies
//             (and fsyncs) what it was sent while its answers never reach the app in time.
// Prints "ready <port>" once listening; exits on SIGTERM.
'use strict';
const http = require('node:http');

const SECRET = 'soak-secret-that-is-long-enough-0123456789';

/** The pair the README showed before the soak (commandTimeout, maxRetriesPerRequest). */
const PAIR_OPTIONS = { commandTimeout: 1000, maxRetriesPerRequest: 1 };
/** What the README recommends ("Why the client options matter"): that pair, a socket timeout, reconnection attempts at most 1 s apart. */
const RECOMMENDED_OPTIONS = { ...PAIR_OPTIONS, socketTimeout: 2000, retryStrategy: (/** @type {number} */ times) => Math.min(times * 100, 1000) };
/** A Cluster's nodes never reconnect (ioredis refreshes the slots instead): no retryStrategy there. */
const RECOMMENDED_CLUSTER_NODE_OPTIONS = { ...PAIR_OPTIONS, socketTimeout: 2000 };

/**
 * @typedef {object} TargetConfig
 * @property {'express' | 'koa'} framework
 * @property {number} port
 * @property {string} [redisUrl] one Redis
 * @property {{ host: string, port: number }[]} [cluster] or a Cluster's startup nodes
 * @property {'pair' | 'defaults' | 'recommended'} ioredis which client options
 * @property {string} prefix every key starts with it
 * @property {number} [storeTimeoutMs] latchkey's option (its default when absent)
 * @property {number} [rotationGraceMs] latchkey's option (its default when absent)
 */

/**
 * The RedisStore, with a tap just before a rotating update is sent.
 * @param {import('ioredis').Redis | import('ioredis').Cluster} client
 * @param {string} prefix
 */
function tappedStore(client, prefix) {
  const { RedisStore } = require('latchkey/redis');
  class TappedStore extends RedisStore {
    /** @type {((key: string) => void) | undefined} */
    onRotatingUpdate;
    /** @override @param {string} key @param {import('latchkey').SessionChange} change @param {number} ttl */
    update(key, change, ttl) {
      if (change.rotateTo !== undefined) this.onRotatingUpdate?.(key);
      return super.update(key, change, ttl);
    }
  }
  return new TappedStore({ client, prefix });
}

/**
 * What a route does with the session.
 * @param {import('latchkey').Session} s
 * @param {string} path
 * @returns {{ status: number, body: { n: number | null, isNew: boolean } | string }}
 */
function route(s, path) {
  const n = /** @type {number | undefined} */ (s.get('n'));
  const isNew = s.isNew;
  switch (path) {
    case '/write':
      s.set('n', (n ?? 0) + 1);
      return { status: 200, body: { n: (n ?? 0) + 1, isNew } };
    case '/read':
      return { status: 200, body: { n: n ?? null, isNew } };
    case '/renew':
      s.renew();
      return { status: 200, body: { n: n ?? null, isNew } };
    case '/purge':
      s.purge();
      return { status: 200, body: { n: null, isNew } };
    default:
      return { status: 404, body: 'no route' };
  }
}

/** @param {unknown} err */
const errorBody = (err) => {
  const e = /** @type {{ status?: number, code?: string, message?: string }} */ (err);
  return { status: typeof e.status === 'number' ? e.status : 500, body: { error: e.code ?? e.message ?? 'error' } };
};

/**
 * @param {TargetConfig} config
 * @param {import('latchkey').SessionStore} store
 * @returns {http.RequestListener}
 */
function app(config, store) {
  /** @type {import('latchkey').SessionOptions} */
  const options = { secret: SECRET, store };
  if (config.storeTimeoutMs !== undefined) options.storeTimeoutMs = config.storeTimeoutMs;
  if (config.rotationGraceMs !== undefined) options.rotationGraceMs = config.rotationGraceMs;
  if (config.framework === 'express') {
    const express = require('express');
    const a = express();
    a.use(require('latchkey/express').session(options));
    a.use((req, res) => {
      const r = route(req.session, req.path);
      res.status(r.status).json(r.body);
    });
    // The engine has put the cookie to keep on the response already (a 503 after a write we gave up on).
    a.use((/** @type {unknown} */ err, /** @type {import('express').Request} */ _req, /** @type {import('express').Response} */ res, /** @type {import('express').NextFunction} */ _next) => {
      const r = errorBody(err);
      res.status(r.status).json(r.body);
    });
    return a;
  }
  const Koa = require('koa');
  const k = new Koa();
  k.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const r = errorBody(err);
      ctx.status = r.status;
      ctx.body = r.body;
    }
  });
  k.use(require('latchkey/koa').session(options));
  k.use(async (ctx) => {
    const r = route(ctx.session, ctx.path);
    ctx.status = r.status;
    ctx.body = r.body;
  });
  return k.callback();
}

/** @param {TargetConfig} config */
async function serve(config) {
  const { Redis, Cluster } = require('ioredis');
  /** @type {import('ioredis').Redis | import('ioredis').Cluster} */
  let client;
  if (config.cluster) {
    const nodeOptions = { pair: PAIR_OPTIONS, recommended: RECOMMENDED_CLUSTER_NODE_OPTIONS, defaults: undefined }[config.ioredis];
    client = new Cluster(config.cluster, nodeOptions ? { redisOptions: nodeOptions } : {});
  } else {
    client = new Redis(config.redisUrl ?? '', { pair: PAIR_OPTIONS, recommended: RECOMMENDED_OPTIONS, defaults: {} }[config.ioredis]);
  }
  client.on('error', () => {}); // reconnections during the faults: expected
  const store = tappedStore(client, config.prefix);
  const listener = app(config, store);
  const gc = /** @type {{ gc?: () => void }} */ (globalThis).gc;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/__heap') {
      if (!gc) {
        res.statusCode = 501;
        res.end('start the target with node --expose-gc');
        return;
      }
      for (let i = 0; i < 4; i++) gc(); // as bench/targets.js: weak references go over more than one full GC
      res.end(JSON.stringify({ heapUsed: process.memoryUsage().heapUsed }));
    } else if (url.pathname === '/__arm') {
      arm(url.searchParams, store, client).then((answer) => res.end(JSON.stringify(answer)));
    } else {
      listener(req, res);
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(config.port, '127.0.0.1', () => process.stdout.write(`ready ${config.port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

/**
 * Strikes as /__arm says; resolves with when, and whether a rotating write was in flight.
 * @param {URLSearchParams} q
 * @param {ReturnType<typeof tappedStore>} store
 * @param {import('ioredis').Redis | import('ioredis').Cluster} client
 * @returns {Promise<{ struckAt: number, inFlight: boolean }>}
 */
function arm(q, store, client) {
  const signal = /** @type {NodeJS.Signals} */ (q.get('signal') ?? 'SIGSTOP');
  const pid = Number(q.get('pid'));
  const ids = q.get('ids') ? new Set(String(q.get('ids')).split(',')) : null;
  const within = Number(q.get('within') ?? 1000);
  const hold = Number(q.get('hold') ?? 0);
  const delay = Number(q.get('delay') ?? 0);
  return new Promise((resolve) => {
    /** @param {boolean} inFlight */
    const strike = (inFlight) => {
      clearTimeout(fallback);
      store.onRotatingUpdate = undefined;
      const socket = hold > 0 && 'stream' in client ? client.stream : undefined;
      if (socket) {
        socket.pause();
        setTimeout(() => socket.resume(), hold);
      }
      if (delay > 0) setTimeout(() => process.kill(pid, signal), delay);
      else process.kill(pid, signal);
      resolve({ struckAt: Date.now(), inFlight });
    };
    const fallback = setTimeout(() => strike(false), within);
    store.onRotatingUpdate = (key) => {
      if (!ids || ids.has(key.slice(0, 16))) strike(true);
    };
  });
}

if (require.main === module) {
  serve(JSON.parse(process.argv[2] ?? '{}')).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { PAIR_OPTIONS, RECOMMENDED_OPTIONS };
