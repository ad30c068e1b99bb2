// @ts-check
// The benchmark targets, one table (TARGETS) that run.js and memory.js read, and one target per process:
//   `node bench/targets.js <target> <port> [redisUrl] [keyPrefix]`
// Every target serves the same four routes over the same session semantics:
//   /anon  never touches the session          /read  returns the value of `n`
//   /write increments `n` and returns it       /new   sets `n` = 1 on a request without a cookie
// and, ahead of the framework (so no session middleware sees them):
//   /__stats  {"redisCommands": Redis commands (or, for PostgreSQL targets, SQL statements) this
//              process sent (counted at the client),
//              "sessions": sessions its in-process store holds, where it can tell,
//              "cpuMicros": the CPU time (user + system) this process has used so far}
//   /__heap   {"heapUsed": bytes after forced GCs}, only when started with `node --expose-gc`.
// Redis keys go under `keyPrefix` (default `bench:<pid>:`), so whoever started the target can remove them.
//
// Adding a target: one entry in TARGETS. `framework` names the bare target its ratio is taken against
// (a target with `cookie: null` is a bare one, measured always); `needs` lists build output it cannot run
// without (left out, with a note, when missing); `redis` makes run.js start Redis and count its commands;
// `packages` go into the versions line; `bars` are the ratios it must reach; `build` returns the
// request listener (it may be async: Fastify, say, hands its listener over via `serverFactory` after
// `await app.ready()`). memory.js measures targets too, by name (its CASES).
'use strict';
const http = require('node:http');
const path = require('node:path');

const SECRET = 'bench-secret-that-is-long-enough-0123456789';
const DAY_MS = 86_400_000;
/** PostgreSQL for the postgres targets when DATABASE_URL is not set: the machine's own. */
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * What a target's `build` gets.
 * @typedef {object} BuildContext
 * @property {string} redisUrl
 * @property {string} keyPrefix every Redis key the target writes starts with it
 * @property {() => import('ioredis').Redis} ioredis a new ioredis client whose commands /__stats counts
 * @property {(count: () => number | Promise<number>) => void} countSessions how /__stats tells the sessions held
 * @property {() => import('pg').Pool} pgPool a new pg Pool on DATABASE_URL whose statements /__stats counts
 */

/**
 * @typedef {object} Target
 * @property {string} framework the bare target its ratio is taken against
 * @property {string | null} cookie the session cookie's name; null for a bare framework (no sessions)
 * @property {boolean} [redis] it talks to Redis (run.js counts the commands per request)
 * @property {boolean} [postgres] it talks to PostgreSQL at DATABASE_URL (run.js counts the statements per request)
 * @property {string[]} [needs] files, relative to the repository, it cannot run without
 * @property {string[]} [packages] the packages it measures, for the versions line of RESULTS.md
 * @property {Partial<Record<'anon' | 'read' | 'write' | 'new', number>>} [bars] the ratio to bare it must reach, per scenario (the bars)
 * @property {(ctx: BuildContext) => http.RequestListener | Promise<http.RequestListener>} build
 */

/**
 * How a route reads and writes `n`. The holder is an Express request, a Koa context or a Fastify
 * request carrying whichever session library the target mounted; their static types say latchkey's
 * (its adapters augment them), so only the accessor pair knows the real shape.
 * @typedef {{ get(holder: any): number | undefined, set(holder: any, n: number): void }} Access
 */

/** @type {Access} latchkey's handle, and @fastify/session's object (which has get() and set() too). */
const latchkeyAccess = {
  get: (holder) => /** @type {number | undefined} */ (holder.session.get('n')),
  set: (holder, n) => holder.session.set('n', n),
};
/** @type {Access} express-session and koa-session: the session is a plain object. */
const plainAccess = {
  get: (holder) => (holder.session ? holder.session.n : undefined),
  set: (holder, n) => {
    holder.session.n = n;
  },
};
/** @type {Access} */
const noAccess = { get: () => undefined, set: () => {} };

/** @type {http.RequestListener} */
const plainRoutes = (_req, res) => {
  res.end('ok');
};

/**
 * The four routes on Express, after `middleware`.
 * @param {Access} access
 * @param {import('express').RequestHandler[]} middleware
 * @returns {http.RequestListener}
 */
function expressApp(access, ...middleware) {
  const express = require('express');
  const app = express();
  for (const m of middleware) app.use(m);
  app.get('/anon', (_req, res) => res.send('ok'));
  app.get('/read', (req, res) => res.send(String(access.get(req) ?? 0)));
  app.get('/write', (req, res) => {
    const n = (access.get(req) ?? 0) + 1;
    access.set(req, n);
    res.send(String(n));
  });
  app.get('/new', (req, res) => {
    access.set(req, 1);
    res.send('1');
  });
  return app;
}

/**
 * The four routes on Koa, after `middleware`; `setup` gets the app first (koa-session wants it).
 * @param {Access} access
 * @param {(app: import('koa')) => import('koa').Middleware[]} setup
 * @returns {http.RequestListener}
 */
function koaApp(access, setup = () => []) {
  const Koa = require('koa');
  const app = new Koa();
  for (const m of setup(app)) app.use(m);
  app.use(async (ctx) => {
    switch (ctx.path) {
      case '/anon':
        ctx.body = 'ok';
        return;
      case '/read':
        ctx.body = String(access.get(ctx) ?? 0);
        return;
      case '/write': {
        const n = (access.get(ctx) ?? 0) + 1;
        access.set(ctx, n);
        ctx.body = String(n);
        return;
      }
      case '/new':
        access.set(ctx, 1);
        ctx.body = '1';
        return;
      default:
        ctx.status = 404;
    }
  });
  return app.callback();
}

/**
 * The four routes on Fastify, after `register` has put a session plugin on the app. Fastify hands
 * its request listener to `serverFactory`; it routes once `ready()` has loaded the plugins.
 * @param {Access} access
 * @param {(app: import('fastify').FastifyInstance) => void} register
 * @returns {Promise<http.RequestListener>}
 */
async function fastifyApp(access, register = () => {}) {
  const Fastify = require('fastify');
  /** @type {http.RequestListener | undefined} */
  let listener;
  const app = Fastify({
    serverFactory: (handler) => {
      listener = handler;
      return http.createServer(handler);
    },
  });
  register(app);
  app.get('/anon', async () => 'ok');
  app.get('/read', async (request) => String(access.get(request) ?? 0));
  app.get('/write', async (request) => {
    const n = (access.get(request) ?? 0) + 1;
    access.set(request, n);
    return String(n);
  });
  app.get('/new', async (request) => {
    access.set(request, 1);
    return '1';
  });
  await app.ready();
  if (!listener) throw new Error('fastify did not call serverFactory');
  return listener;
}

/**
 * latchkey's stores, by the name after the colon.
 * @type {Record<string, { needs: string[], create(ctx: BuildContext): import('latchkey').SessionStore }>}
 */
const LATCHKEY_STORES = {
  memory: {
    needs: [],
    create(ctx) {
      const store = new (require('latchkey').MemoryStore)();
      ctx.countSessions(() => store.size);
      return store;
    },
  },
  cookie: { needs: ['dist/store/cookie.js'], create: () => new (require('latchkey').CookieStore)() },
  redis: {
    needs: ['dist/store/redis.js'],
    create: (ctx) => new (require('latchkey/redis').RedisStore)({ client: ctx.ioredis(), prefix: ctx.keyPrefix }),
  },
  postgres: {
    needs: ['dist/store/postgres.js'],
    create(ctx) {
      const store = new (require('latchkey/postgres').PostgresStore)({ pool: ctx.pgPool(), table: pgTable(ctx.keyPrefix, 'latchkey') });
      ready.push(store.createTable());
      return store;
    },
  },
};

/** Work a target's build starts that must finish before it says "ready" (a table to create). */
/** @type {Promise<unknown>[]} */
const ready = [];

/**
 * connect-redis on the `redis` client, as express-session and @fastify/session users run it.
 * @param {{ redisUrl: string, keyPrefix: string }} ctx
 */
function connectRedisStore(ctx) {
  const { createClient } = require('redis');
  const { RedisStore } = require('connect-redis');
  const client = createClient({ url: ctx.redisUrl });
  client.connect().catch((/** @type {unknown} */ err) => {
    console.error(err);
    process.exit(1);
  });
  return new RedisStore({ client, prefix: ctx.keyPrefix });
}

/**
* A table name of a target's own, from its key prefix: run.js drops it afterwards (bench_<kind>_<prefix>).
 * @param {string} keyPrefix @param {string} kind
 */
function pgTable(keyPrefix, kind) {
  return `bench_${kind}_${keyPrefix.replace(/[^a-z0-9]+/gi, '_').replace(/_+$/, '')}`.toLowerCase().slice(0, 63);
}

/**
 * A latchkey target: `framework` × one of LATCHKEY_STORES; `express-session` is the drop-in
 * (latchkey/express-session: req.session as a plain object) on Express.
 * @param {'express' | 'koa' | 'fastify' | 'express-session'} framework
 * @param {keyof typeof LATCHKEY_STORES} storeName
 * @param {Target['bars']} [bars]
 * @returns {Target}
 */
function latchkeyTarget(framework, storeName, bars) {
  const store = /** @type {(typeof LATCHKEY_STORES)[string]} */ (LATCHKEY_STORES[storeName]);
  const dropIn = framework === 'express-session';
  return {
    framework: dropIn ? 'express' : framework,
    cookie: dropIn ? 'connect.sid' : 'sid',
    redis: storeName === 'redis',
    postgres: storeName === 'postgres',
    needs: [`dist/middleware/${framework}.js`, ...store.needs],
    packages: [dropIn ? 'express' : framework, ...(storeName === 'redis' ? ['ioredis'] : storeName === 'postgres' ? ['pg'] : [])],
    ...(bars ? { bars } : {}),
    build: (ctx) => {
      const options = { secret: SECRET, store: store.create(ctx) };
      // The drop-in with persistent cookies, as the express-session rows are measured (cookie.maxAge one day).
      if (dropIn) return expressApp(plainAccess, require('latchkey/express-session').session({ ...options, cookie: { maxAge: DAY_MS } }));
      if (framework === 'express') return expressApp(latchkeyAccess, require('latchkey/express').session(options));
      if (framework === 'koa') return koaApp(latchkeyAccess, () => [require('latchkey/koa').session(options)]);
      return fastifyApp(latchkeyAccess, (app) => app.register(require('latchkey/fastify').session, options));
    },
  };
}

/**
 * express-session, with its MemoryStore, connect-redis (on the `redis` client) or connect-pg-simple.
 * @param {'memory' | 'connect-redis' | 'connect-pg-simple'} storeName
 * @returns {Target}
 */
function expressSessionTarget(storeName) {
  return {
    framework: 'express',
    cookie: 'connect.sid',
    redis: storeName === 'connect-redis',
    postgres: storeName === 'connect-pg-simple',
    packages: ['express', 'express-session', ...(storeName === 'connect-redis' ? ['connect-redis', 'redis'] : storeName === 'connect-pg-simple' ? ['connect-pg-simple', 'pg'] : [])],
    build(ctx) {
      const expressSession = require('express-session');
      let store;
      if (storeName === 'connect-pg-simple') {
        const PgStore = require('connect-pg-simple')(expressSession);
        store = new PgStore({ pool: ctx.pgPool(), tableName: pgTable(ctx.keyPrefix, 'cps'), createTableIfMissing: true, pruneSessionInterval: false });
      } else if (storeName === 'connect-redis') {
        store = connectRedisStore(ctx);
      } else {
        store = new expressSession.MemoryStore();
        const memory = store;
        ctx.countSessions(() => new Promise((resolve, reject) => memory.length((/** @type {unknown} */ err, /** @type {number} */ n) => (err ? reject(err) : resolve(n)))));
      }
      return expressApp(plainAccess, expressSession({ secret: SECRET, resave: false, saveUninitialized: false, store }));
    },
  };
}

/**
 * koa-session's external store contract, on ioredis: no maintained one supports current ioredis.
 * @param {BuildContext} ctx
 */
function koaSessionIoredisStore(ctx) {
  const client = ctx.ioredis();
  return {
    /** @param {string} key */
    async get(key) {
      const v = await client.get(`${ctx.keyPrefix}${key}`);
      return v ? JSON.parse(v) : undefined;
    },
    /** @param {string} key @param {unknown} sess @param {unknown} maxAge */
    async set(key, sess, maxAge) {
      await client.set(`${ctx.keyPrefix}${key}`, JSON.stringify(sess), 'PX', typeof maxAge === 'number' ? maxAge : DAY_MS);
    },
    /** @param {string} key */
    async destroy(key) {
      await client.del(`${ctx.keyPrefix}${key}`);
    },
  };
}

/**
 * koa-session, in its cookie or in Redis.
 * @param {'cookie' | 'ioredis'} storeName
 * @returns {Target}
 */
function koaSessionTarget(storeName) {
  return {
    framework: 'koa',
    cookie: 'koa.sess',
    redis: storeName === 'ioredis',
    packages: ['koa', 'koa-session', ...(storeName === 'ioredis' ? ['ioredis'] : [])],
    build: (ctx) =>
      koaApp(plainAccess, (app) => {
        const koaSession = require('koa-session');
        app.keys = [SECRET];
        /** @type {Parameters<typeof koaSession.createSession>[0]} */
        const opts = { maxAge: DAY_MS };
        if (storeName === 'ioredis') opts.store = koaSessionIoredisStore(ctx);
        return [koaSession.createSession(opts, app)];
      }),
  };
}

/**
 * @fastify/session (+ @fastify/cookie), with its default store (a Map that never evicts) or with
 * connect-redis (an express-session store, which @fastify/session accepts) on the `redis` client.
 * Its cheapest configuration, and latchkey's semantics: `saveUninitialized: false` (a request that
 * never touches the session stores nothing) and `rolling: false` (a read writes nothing; its default,
 * true, saves the whole session on every response). `cookie.secure: false`: its default, true, never
 * sets the cookie over plain HTTP. The session is read and written with its get() and set().
 * @param {'memory' | 'connect-redis'} storeName
 * @returns {Target}
 */
function fastifySessionTarget(storeName) {
  return {
    framework: 'fastify',
    cookie: 'sessionId',
    redis: storeName === 'connect-redis',
    packages: ['fastify', '@fastify/session', '@fastify/cookie', ...(storeName === 'connect-redis' ? ['connect-redis', 'redis'] : [])],
    build(ctx) {
      // By a computed name, so the type check does not load @fastify/session's declarations: they
      // give FastifyRequest a `session` of their own, which clashes with latchkey/fastify's.
      const fastifySession = require(['@fastify', 'session'].join('/'));
      let store;
      if (storeName === 'connect-redis') {
        store = connectRedisStore(ctx);
      } else {
        store = new fastifySession.MemoryStore();
        const map = /** @type {Map<string, unknown>} */ (store.store);
        ctx.countSessions(() => map.size);
      }
      return fastifyApp(latchkeyAccess, (app) => {
        app.register(require('@fastify/cookie'));
        app.register(fastifySession, { secret: SECRET, store, cookie: { secure: false }, saveUninitialized: false, rolling: false });
      });
    },
  };
}

/**
 * Every target, in the order run.js measures them. The bare ones (cookie null) are the references.
 * @type {Record<string, Target>}
 */
const TARGETS = {
  'node-http': { framework: 'node-http', cookie: null, build: () => plainRoutes },
  express: { framework: 'express', cookie: null, packages: ['express'], build: () => expressApp(noAccess) },
  koa: { framework: 'koa', cookie: null, packages: ['koa'], build: () => koaApp(noAccess) },
  fastify: { framework: 'fastify', cookie: null, packages: ['fastify'], build: () => fastifyApp(noAccess) },
  'latchkey-express:memory': latchkeyTarget('express', 'memory', { anon: 0.97, read: 0.9, write: 0.8, new: 0.8 }),
  'latchkey-express:redis': latchkeyTarget('express', 'redis', { anon: 0.97, read: 0.85, write: 0.7, new: 0.7 }),
  'latchkey-express:cookie': latchkeyTarget('express', 'cookie'),
  'express-session:memory': expressSessionTarget('memory'),
  'express-session:connect-redis': expressSessionTarget('connect-redis'),
  'latchkey-koa:memory': latchkeyTarget('koa', 'memory', { anon: 0.97, read: 0.75, write: 0.6, new: 0.6 }),
  'latchkey-koa:redis': latchkeyTarget('koa', 'redis', { anon: 0.97, read: 0.55, write: 0.45, new: 0.45 }),
  'latchkey-koa:cookie': latchkeyTarget('koa', 'cookie'),
  'koa-session:cookie': koaSessionTarget('cookie'),
  'koa-session:ioredis': koaSessionTarget('ioredis'),
  'latchkey-express-session:memory': latchkeyTarget('express-session', 'memory'),
  'latchkey-express-session:redis': latchkeyTarget('express-session', 'redis'),
  'latchkey-express:postgres': latchkeyTarget('express', 'postgres'),
  'express-session:connect-pg-simple': expressSessionTarget('connect-pg-simple'),
  'latchkey-fastify:memory': latchkeyTarget('fastify', 'memory'),
  'latchkey-fastify:redis': latchkeyTarget('fastify', 'redis'),
  'fastify-session:memory': fastifySessionTarget('memory'),
  'fastify-session:connect-redis': fastifySessionTarget('connect-redis'),
};

/**
 * The files among `target.needs` that are missing.
 * @param {Target} target
 */
function missing(target) {
  const fs = require('node:fs');
  return (target.needs ?? []).filter((f) => !fs.existsSync(path.join(__dirname, '..', f)));
}

module.exports = { PG_URL, TARGETS, missing, pgTable };

/**
 * Serves `name` on 127.0.0.1:`port` until SIGTERM.
 * @param {string} name
 * @param {number} port
 * @param {string} redisUrl
 * @param {string} keyPrefix
 */
async function serve(name, port, redisUrl, keyPrefix) {
  const target = TARGETS[name];
  if (!target) throw new Error(`unknown target ${name}; known: ${Object.keys(TARGETS).join(', ')}`);
  let redisCommands = 0;
  /** @type {() => number | Promise<number>} */
  let sessions = () => NaN;
  /** @type {BuildContext} */
  const ctx = {
    redisUrl,
    keyPrefix,
    // Counts every command an ioredis client sends (one per round trip: a script is one EVALSHA).
    ioredis() {
      const { Redis } = require('ioredis');
      const client = new Redis(redisUrl, { commandTimeout: 2000, maxRetriesPerRequest: 1, enableAutoPipelining: process.env.BENCH_AUTOPIPELINE === '1' });
      const send = client.sendCommand.bind(client);
      client.sendCommand = (command, stream) => {
        redisCommands++;
        return send(command, stream);
      };
      return client;
    },
    countSessions: (count) => (sessions = count),
    pgPool() {
      const { Pool } = require('pg');
      const pool = new Pool({ connectionString: process.env.DATABASE_URL || PG_URL, max: 10 });
      const query = /** @type {(...args: unknown[]) => unknown} */ (pool.query.bind(pool));
      /** @type {any} */ (pool).query = (/** @type {unknown[]} */ ...args) => {
        redisCommands++;
        return query(...args);
      };
      return pool;
    },
  };
  const app = await target.build(ctx);
  await Promise.all(ready);
  const gc = /** @type {{ gc?: () => void }} */ (globalThis).gc;
  const server = http.createServer((req, res) => {
    if (req.url === '/__stats') {
      const cpu = process.cpuUsage();
      Promise.resolve(sessions()).then((n) => res.end(JSON.stringify({ redisCommands, sessions: Number.isFinite(n) ? n : null, cpuMicros: cpu.user + cpu.system })));
    } else if (req.url === '/__heap') {
      if (!gc) {
        res.statusCode = 501;
        res.end('start the target with node --expose-gc');
        return;
      }
      // Twice more than needed: weak references and finalizers are let go over more than one full GC.
      for (let i = 0; i < 4; i++) gc();
      res.end(JSON.stringify({ heapUsed: process.memoryUsage().heapUsed }));
    } else {
      app(req, res);
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

if (require.main === module) {
  const [, , name = '', port = '', redisUrl = '', keyPrefix = ''] = process.argv;
  serve(name, Number(port), redisUrl, keyPrefix || `bench:${process.pid}:`).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
