// The Fastify example: log in (renew), a visit counter, a small cart, log out (purge).
// Built against the package as users install it: `latchkey` resolves to this repo's dist/.
'use strict';
const Fastify = require('fastify');
const { MemoryStore, startExpiredDeletion } = require('latchkey');
const { session } = require('latchkey/fastify');

/** The store: PostgresStore when DATABASE_URL is set, RedisStore when REDIS_URL is set, else the in-process MemoryStore. */
function makeStore() {
  if (process.env.DATABASE_URL) return makePostgresStore(process.env.DATABASE_URL);
  if (!process.env.REDIS_URL) return new MemoryStore();
  const Redis = require('ioredis');
  const { RedisStore } = require('latchkey/redis');
  // Fail fast instead of queueing for tens of seconds while Redis is away (see README, "RedisStore").
  const client = new Redis(process.env.REDIS_URL, { commandTimeout: 1000, maxRetriesPerRequest: 1 });
  client.on('error', (err) => console.error('redis:', err.message));
  return new RedisStore({ client, prefix: 'latchkey-example:' });
}

function makePostgresStore(url) {
  const { Pool } = require('pg');
  const { PostgresStore } = require('latchkey/postgres');
  // Bounded waits while PostgreSQL is away or a row stays locked (see README, "PostgresStore").
  const pool = new Pool({ connectionString: url, connectionTimeoutMillis: 1000, statement_timeout: 1000 });
  pool.on('error', (err) => console.error('postgres:', err.message));
  const store = new PostgresStore({ pool });
  // The table and its expiry index, if missing (a request before that is done gets a 503, it never hangs).
  store.createTable().then(
    () => console.log('postgres: table latchkey_sessions ready'),
    (err) => console.error('postgres: createTable failed:', err.message),
  );
  startExpiredDeletion(store, 15 * 60_000);
  return store;
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(request, reply, body) {
  const user = request.session.get('user');
  return reply.type('text/html; charset=utf-8').send(`<!doctype html><html><head><meta charset="utf-8"><title>latchkey · Fastify</title>
<style>body{font:16px system-ui;max-width:40rem;margin:2rem auto}form{display:inline}nav a{margin-right:1rem}</style></head>
<body><nav><a href="/">Home</a><a href="/cart">Cart</a>${user ? '' : '<a href="/login">Log in</a>'}</nav>
<p>${user ? `Signed in as <b>${escape(user)}</b> <form method="post" action="/logout"><button>Log out</button></form>` : 'Not signed in.'}</p>
${body}</body></html>`);
}

function createApp(options = {}) {
  const app = Fastify();
  // HTML forms post urlencoded bodies: Fastify's own content-type parser hook, so the example needs no @fastify/formbody.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body)));
  });
  app.register(session, {
    secret: process.env.SESSION_SECRET || 'dev-only-secret-change-me-0123456789abcdef',
    store: makeStore(),
    ...options,
  });

  app.get('/', async (request, reply) => {
    const visits = (request.session.get('visits') || 0) + 1;
    request.session.set('visits', visits);
    return page(request, reply, `<h1>Hello</h1><p>You have visited this page <b id="visits">${visits}</b> time(s).</p>`);
  });

  app.get('/login', async (request, reply) =>
    page(request, reply, `<h1>Log in</h1><form method="post" action="/login">
<label>Name <input name="user" required></label> <button>Log in</button></form>`),
  );

  app.post('/login', async (request, reply) => {
    const user = String(request.body?.user || '').trim().slice(0, 64);
    if (!user) return reply.redirect('/login');
    request.session.set('user', user);
    // A new key after a privilege change: a cookie planted before login is worthless (OWASP, session fixation).
    request.session.renew();
    return reply.redirect('/');
  });

  app.get('/cart', async (request, reply) => {
    const cart = request.session.get('cart') || [];
    const items = cart.map((i) => `<li>${escape(i)}</li>`).join('');
    return page(request, reply, `<h1>Cart</h1><ul id="cart">${items || '<li>(empty)</li>'}</ul>
<form method="post" action="/cart"><input name="item" required placeholder="Item"> <button>Add</button></form>
<form method="post" action="/cart/clear"><button>Empty the cart</button></form>`);
  });

  app.post('/cart', async (request, reply) => {
    const item = String(request.body?.item || '').trim().slice(0, 64);
    if (item) request.session.set('cart', [...(request.session.get('cart') || []), item].slice(-50));
    return reply.redirect('/cart');
  });

  app.post('/cart/clear', async (request, reply) => {
    request.session.remove('cart');
    return reply.redirect('/cart');
  });

  app.post('/logout', async (request, reply) => {
    request.session.purge();
    return reply.redirect('/');
  });
  return app;
}

module.exports = { createApp };
