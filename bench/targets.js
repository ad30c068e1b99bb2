// One benchmark target per process: `node bench/targets.js <target> <port> [redisUrl]`.
// Every target serves the same four routes over the same session semantics:
//   /anon  never touches the session          /read  returns the value of `n`
//   /write increments `n` and returns it       /new   sets `n` = 1 on a request without a cookie
// and /__stats returns the Redis commands this process sent (counted at the client).
'use strict';
const http = require('node:http');

const [, , target, portArg, redisUrl] = process.argv;
const port = Number(portArg);
const SECRET = 'bench-secret-that-is-long-enough-0123456789';
let redisCommands = 0;

/** Counts every command an ioredis client sends (one per round trip: a script is one EVALSHA). */
function countingIoredis() {
  const Redis = require('ioredis');
  const client = new Redis(redisUrl, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    redisCommands++;
    return send(command, stream);
  };
  return client;
}

function plainRoutes(req, res) {
  if (req.url === '/__stats') return res.end(JSON.stringify({ redisCommands }));
  res.end('ok');
}

function expressRoutes(app, get, set) {
  app.get('/__stats', (_req, res) => res.json({ redisCommands }));
  app.get('/anon', (_req, res) => res.send('ok'));
  app.get('/read', (req, res) => res.send(String(get(req) ?? 0)));
  app.get('/write', (req, res) => {
    const n = (get(req) ?? 0) + 1;
    set(req, n);
    res.send(String(n));
  });
  app.get('/new', (req, res) => {
    set(req, 1);
    res.send('1');
  });
  return app;
}

function koaRoutes(app, get, set) {
  app.use(async (ctx) => {
    switch (ctx.path) {
      case '/__stats':
        ctx.body = { redisCommands };
        return;
      case '/anon':
        ctx.body = 'ok';
        return;
      case '/read':
        ctx.body = String(get(ctx) ?? 0);
        return;
      case '/write': {
        const n = (get(ctx) ?? 0) + 1;
        set(ctx, n);
        ctx.body = String(n);
        return;
      }
      case '/new':
        set(ctx, 1);
        ctx.body = '1';
        return;
      default:
        ctx.status = 404;
    }
  });
  return app;
}

const latchkeyGet = (holder) => holder.session.get('n');
const latchkeySet = (holder, n) => holder.session.set('n', n);
const plainGet = (holder) => (holder.session ? holder.session.n : undefined);
const plainSet = (holder, n) => {
  holder.session.n = n;
};

function latchkeyStore(kind) {
  const latchkey = require('latchkey');
  if (kind === 'memory') return new latchkey.MemoryStore();
  if (kind === 'cookie') return new latchkey.CookieStore();
  const { RedisStore } = require('latchkey/redis');
  return new RedisStore({ client: countingIoredis(), prefix: `bench:${process.pid}:` });
}

/** koa-session's external store contract, on ioredis: no maintained one supports current ioredis. */
function koaSessionIoredisStore() {
  const client = countingIoredis();
  return {
    async get(key) {
      const v = await client.get(`koa:${key}`);
      return v ? JSON.parse(v) : undefined;
    },
    async set(key, sess, maxAge) {
      await client.set(`koa:${key}`, JSON.stringify(sess), 'PX', typeof maxAge === 'number' ? maxAge : 86_400_000);
    },
    async destroy(key) {
      await client.del(`koa:${key}`);
    },
  };
}

function build() {
  const [family, store] = target.split(':');
  switch (family) {
    case 'node-http':
      return plainRoutes;
    case 'express': {
      const express = require('express');
      const app = express();
      return expressRoutes(app, () => undefined, () => {});
    }
    case 'koa': {
      const Koa = require('koa');
      return koaRoutes(new Koa(), () => undefined, () => {}).callback();
    }
    case 'latchkey-express': {
      const express = require('express');
      const { session } = require('latchkey/express');
      const app = express();
      app.use(session({ secret: SECRET, store: latchkeyStore(store) }));
      return expressRoutes(app, latchkeyGet, latchkeySet);
    }
    case 'latchkey-koa': {
      const Koa = require('koa');
      const { session } = require('latchkey/koa');
      const app = new Koa();
      app.use(session({ secret: SECRET, store: latchkeyStore(store) }));
      return koaRoutes(app, latchkeyGet, latchkeySet).callback();
    }
    case 'express-session': {
      const express = require('express');
      const expressSession = require('express-session');
      const app = express();
      let sessionStore;
      if (store === 'connect-redis') {
        const { createClient } = require('redis');
        const { RedisStore } = require('connect-redis');
        const client = createClient({ url: redisUrl });
        client.connect().catch((err) => {
          console.error(err);
          process.exit(1);
        });
        sessionStore = new RedisStore({ client, prefix: `bench-cr:${process.pid}:` });
      }
      app.use(expressSession({ secret: SECRET, resave: false, saveUninitialized: false, store: sessionStore }));
      return expressRoutes(app, plainGet, plainSet);
    }
    case 'koa-session': {
      const Koa = require('koa');
      const koaSession = require('koa-session');
      const app = new Koa();
      app.keys = [SECRET];
      const opts = { maxAge: 86_400_000 };
      if (store === 'ioredis') opts.store = koaSessionIoredisStore();
      app.use((koaSession.default || koaSession)(opts, app));
      return koaRoutes(app, plainGet, plainSet).callback();
    }
    default:
      throw new Error(`unknown target ${target}`);
  }
}

const server = http.createServer(build());
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
