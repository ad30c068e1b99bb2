// The Fastify example: a visit counter and a small cart in the session, log in (renew) and out
// (purge), on latchkey/fastify's handle (request.session.get/set/remove), the same as the Koa one.
// Built against the package as users install it: `latchkey` resolves to this repo's dist/.
'use strict';
const Fastify = require('fastify');
const { MemoryStore, startExpiredDeletion } = require('latchkey');
const { session } = require('latchkey/fastify');

/** Used only when SESSION_SECRET is unset and NODE_ENV is not production (then the app refuses to start). */
const DEV_SECRET = 'dev-only-secret-change-me-0123456789abcdef';
/** The demo "user table": any name signs in with this password (the login page says so). */
const DEMO_PASSWORD = 'demo';

/** The secret that signs the cookies: SESSION_SECRET, or the development one, never in production. */
function sessionSecret(env = process.env) {
  if (env.SESSION_SECRET) return env.SESSION_SECRET;
  if (env.NODE_ENV === 'production') {
    const err = new Error(
      'SESSION_SECRET is not set and NODE_ENV=production: refusing to start with the built-in development secret\n' +
        "(it is in the example's source for anyone to read, so anyone could sign a session cookie with it).\n" +
        'Make a secret (32 random bytes) once, keep it where you keep your other secrets, and start with it:\n' +
        `  node -e "console.log(require('node:crypto').randomBytes(32).toString('base64url'))"\n` +
        '  SESSION_SECRET=<what that printed> NODE_ENV=production node examples/fastify-app/server.js',
    );
    err.code = 'EXAMPLE_NO_SECRET';
    throw err;
  }
  return DEV_SECRET;
}

/**
 * The store: PostgresStore when DATABASE_URL is set, RedisStore when REDIS_URL is set, else the in-process MemoryStore.
 * Returns the store and what the pages say about it.
 */
function makeStore(env = process.env) {
  if (env.DATABASE_URL) return { store: makePostgresStore(env.DATABASE_URL), name: 'PostgresStore', about: 'in PostgreSQL (DATABASE_URL is set): restart the app and you are still signed in' };
  if (!env.REDIS_URL) return { store: new MemoryStore(), name: 'MemoryStore', about: 'in this process: a restart forgets every session (set REDIS_URL for RedisStore, DATABASE_URL for PostgresStore)' };
  const Redis = require('ioredis');
  const { RedisStore } = require('latchkey/redis');
  // Fail fast instead of queueing for tens of seconds while Redis is away (see README, "RedisStore").
  const client = new Redis(env.REDIS_URL, { commandTimeout: 1000, maxRetriesPerRequest: 1 });
  client.on('error', (err) => console.error('redis:', err.message));
  // REDIS_PREFIX: the keys' prefix, so several apps (or test runs) can share one Redis.
  const store = new RedisStore({ client, prefix: env.REDIS_PREFIX || 'latchkey-example:' });
  return { store, name: 'RedisStore', about: 'in Redis (REDIS_URL is set): restart the app and you are still signed in' };
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

// `<link rel="icon" href="data:,">`: no favicon request, so no 404 in the log.
const HEAD = `<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}nav a{margin-right:1rem}
.who{display:flex;gap:.25rem 1rem;align-items:center;flex-wrap:wrap}.who p{margin:.5rem 0}.who small{flex-basis:100%;color:#444}.about{color:#444}footer{margin-top:2rem;border-top:1px solid #ccc;color:#444;font-size:.9rem}</style>`;

/** Renders a page: who is signed in, the page's one-line explanation, its body, and which store runs. */
function page(request, reply, store, { title, about, body }) {
  const user = request.session.get('user');
  const who = user
    ? `<div class="who"><p id="who">Signed in as <b>${escape(user)}</b> (request.session.get('user')).</p>
<form method="post" action="/logout"><button>Log out</button></form>
<small>Logging out (request.session.purge()) deletes the session from the store and expires its cookie.</small></div>`
    : '<p id="who">Not signed in.</p>';
  return reply.type('text/html; charset=utf-8').send(`<!doctype html><html lang="en"><head>${HEAD}<title>${title} · latchkey Fastify example</title></head>
<body><header><nav><a href="/">Home</a><a href="/cart">Cart</a>${user ? '' : '<a href="/login">Log in</a>'}</nav>
${who}</header>
<main><h1>${title}</h1><p class="about">${about}</p>
${body}</main>
<footer><p>Sessions live in <b id="store">${store.name}</b>, ${escape(store.about)}. The cookie holds only a signed key.</p></footer></body></html>`);
}

/** The error page: no stack trace and no file paths, whatever NODE_ENV says (the details go to the server's log). */
function errorPage(status) {
  const [title, text] =
    status === 503
      ? ['The session store is not answering', 'Your session is safe: nothing was changed. Try again in a few seconds.']
      : status >= 500
        ? ['Something went wrong', 'The server could not handle this request. Try again, or go back home.']
        : status === 404
          ? ['Not found', 'There is no page here.']
          : ['That request could not be handled', 'Go back and try again.'];
  return `<!doctype html><html lang="en"><head>${HEAD}<title>${status} · latchkey Fastify example</title></head>
<body><main><h1>${title}</h1><p id="error">${text}</p><p><a href="/">Home</a></p></main></body></html>`;
}

/**
 * Errors: a store that is away is latchkey's status 503 (a friendly page that says so); anything
 * else is a plain page. Never a stack trace in the browser (Fastify's error handler, for the
 * session plugin's failures too).
 */
function errors(err, request, reply) {
  const status = err.statusCode === 503 ? 503 : err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  console.error(`${request.method} ${request.url}: ${status}:`, status === 503 ? err.message : err);
  for (const name of Object.keys(reply.getHeaders())) if (name.toLowerCase() !== 'set-cookie') reply.removeHeader(name); // e.g. a redirect's Location
  reply.code(status).header('Cache-Control', 'no-store').type('text/html; charset=utf-8');
  if (status === 503) reply.header('Retry-After', '5');
  return reply.send(errorPage(status));
}

function createApp(options = {}) {
  const secret = sessionSecret(); // first: in production without SESSION_SECRET, stop before opening any connection
  const store = makeStore();
  const app = Fastify();
  // HTML forms post urlencoded bodies: Fastify's own content-type parser hook, so the example needs no @fastify/formbody.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body)));
  });
  app.setErrorHandler(errors);
  app.setNotFoundHandler((_request, reply) => reply.code(404).type('text/html; charset=utf-8').send(errorPage(404)));
  // Browsers ask for /favicon.ico on pages without an icon link: a 204, no session, no 404.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
  app.register(session, { secret, store: store.store, ...options });

  app.get('/', async (request, reply) => {
    const visits = (request.session.get('visits') || 0) + 1;
    request.session.set('visits', visits);
    return page(request, reply, store, {
      title: 'Hello',
      about: 'The visit counter lives in the session: each reload adds one, and it survives logging in.',
      body: `<p>You have visited this page <b id="visits">${visits}</b> time(s).</p>
<p class="about">This example uses latchkey's handle on Fastify (<code>request.session.get/set</code>, <code>renew()</code>, <code>purge()</code>);
the Express example uses <code>latchkey/express-session</code>, the drop-in for express-session, with passport.</p>`,
    });
  });

  app.get('/login', async (request, reply) => {
    const message = request.session.get('message');
    request.session.remove('message'); // shown once
    return page(request, reply, store, {
      title: 'Log in',
      about: 'Logging in calls request.session.renew(): the session gets a new key, the cookie you had before stops working at once; your counter and cart come along.',
      body: `${message ? `<p id="message">${escape(message)}</p>` : ''}
<p>Demo accounts: any name, with the password <b>${DEMO_PASSWORD}</b>.</p>
<form method="post" action="/login"><label>Name <input name="user" required autocomplete="username"></label>
<label>Password <input name="password" type="password" required autocomplete="current-password"></label> <button>Log in</button></form>`,
    });
  });

  app.post('/login', async (request, reply) => {
    const body = request.body || {};
    const user = String(body.user || '').trim().slice(0, 64);
    if (!user || body.password !== DEMO_PASSWORD) {
      request.session.set('message', `Wrong name or password: any name signs in with the password "${DEMO_PASSWORD}".`);
      return reply.redirect('/login');
    }
    request.session.set('user', user);
    // A new key after a privilege change: a cookie planted before login is worthless (OWASP, session fixation).
    request.session.renew();
    return reply.redirect('/');
  });

  app.get('/cart', async (request, reply) => {
    const items = (request.session.get('cart') || []).map((i) => `<li>${escape(i)}</li>`).join('');
    return page(request, reply, store, {
      title: 'Cart',
      about: "The cart lives in the session (request.session.get('cart')): reload or come back later and it is still here; logging out deletes it.",
      body: `<ul id="cart">${items || '<li>(empty)</li>'}</ul>
<form method="post" action="/cart"><input name="item" required placeholder="Item" maxlength="64"> <button>Add</button></form>
<form method="post" action="/cart/clear"><button>Empty the cart</button></form>`,
    });
  });

  app.post('/cart', async (request, reply) => {
    const item = String((request.body || {}).item || '').trim().slice(0, 64);
    if (item) request.session.set('cart', [...(request.session.get('cart') || []), item].slice(-50));
    return reply.redirect('/cart');
  });

  app.post('/cart/clear', async (request, reply) => {
    request.session.remove('cart');
    return reply.redirect('/cart');
  });

  app.post('/logout', async (request, reply) => {
    // Deleted from the store, the cookie expired, and Clear-Site-Data: "cache" on this response.
    request.session.purge();
    return reply.redirect('/');
  });
  return app;
}

module.exports = { createApp, sessionSecret, DEV_SECRET };
