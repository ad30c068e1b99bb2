// The Koa example: a visit counter and a small cart in the session, log in (renew) and out
// (purge), on latchkey/koa's own handle (ctx.session.get/set/remove).
// Built against the package as users install it: `latchkey` resolves to this repo's dist/.
'use strict';
const Koa = require('koa');
const { MemoryStore, startExpiredDeletion } = require('latchkey');
const { session } = require('latchkey/koa');

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
        '  SESSION_SECRET=<what that printed> NODE_ENV=production node examples/koa-app/server.js',
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

/** A tiny urlencoded form reader (at most 4 KiB), so the example needs no body-parser. */
async function form(ctx) {
  let raw = '';
  for await (const chunk of ctx.req) {
    raw += chunk;
    if (raw.length > 4096) ctx.throw(413);
  }
  return new URLSearchParams(raw);
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
function page(ctx, store, { title, about, body }) {
  const user = ctx.session.get('user');
  const who = user
    ? `<div class="who"><p id="who">Signed in as <b>${escape(user)}</b> (ctx.session.get('user')).</p>
<form method="post" action="/logout"><button>Log out</button></form>
<small>Logging out (ctx.session.purge()) deletes the session from the store and expires its cookie.</small></div>`
    : '<p id="who">Not signed in.</p>';
  ctx.type = 'html';
  ctx.body = `<!doctype html><html lang="en"><head>${HEAD}<title>${title} · latchkey Koa example</title></head>
<body><header><nav><a href="/">Home</a><a href="/cart">Cart</a>${user ? '' : '<a href="/login">Log in</a>'}</nav>
${who}</header>
<main><h1>${title}</h1><p class="about">${about}</p>
${body}</main>
<footer><p>Sessions live in <b id="store">${store.name}</b>, ${escape(store.about)}. The cookie holds only a signed key.</p></footer></body></html>`;
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
  return `<!doctype html><html lang="en"><head>${HEAD}<title>${status} · latchkey Koa example</title></head>
<body><main><h1>${title}</h1><p id="error">${text}</p><p><a href="/">Home</a></p></main></body></html>`;
}

/**
 * Errors: a store that is away is latchkey's status 503 (a friendly page that says so); anything
 * else is a plain page. Never a stack trace in the browser. First, so it also catches the
 * session middleware's own failures (loading before the handler, committing after it).
 */
async function errors(ctx, next) {
  try {
    await next();
  } catch (err) {
    const status = err.status === 503 ? 503 : err.status >= 400 && err.status < 500 && err.expose ? err.status : 500;
    console.error(`${ctx.method} ${ctx.url}: ${status}:`, status === 503 ? err.message : err);
    for (const name of ctx.res.getHeaderNames()) ctx.res.removeHeader(name); // e.g. the Location of a redirect whose commit failed
    ctx.status = status;
    ctx.set('Cache-Control', 'no-store');
    if (status === 503) ctx.set('Retry-After', '5');
    ctx.type = 'html';
    ctx.body = errorPage(status);
  }
}

function createApp(options = {}) {
  const secret = sessionSecret(); // first: in production without SESSION_SECRET, stop before opening any connection
  const store = makeStore();
  const app = new Koa();
  app.keys = [secret];
  app.use(errors);
  // Browsers ask for /favicon.ico on pages without an icon link: no session, no 404.
  app.use(async (ctx, next) => {
    if (ctx.path !== '/favicon.ico') return next();
    ctx.status = 204;
  });
  app.use(session({ store: store.store, ...options }, app));

  app.use(async (ctx) => {
    const route = `${ctx.method} ${ctx.path}`;
    switch (route) {
      case 'GET /': {
        const visits = (ctx.session.get('visits') || 0) + 1;
        ctx.session.set('visits', visits);
        return page(ctx, store, {
          title: 'Hello',
          about: 'The visit counter lives in the session: each reload adds one, and it survives logging in.',
          body: `<p>You have visited this page <b id="visits">${visits}</b> time(s).</p>
<p class="about">This example uses latchkey's own handle (<code>ctx.session.get/set</code>, <code>renew()</code>, <code>purge()</code>);
the Express example uses <code>latchkey/express-session</code>, the drop-in for express-session, with passport.</p>`,
        });
      }
      case 'GET /login': {
        const message = ctx.session.get('message');
        ctx.session.remove('message'); // shown once
        return page(ctx, store, {
          title: 'Log in',
          about: 'Logging in calls ctx.session.renew(): the session gets a new key, the cookie you had before stops working at once; your counter and cart come along.',
          body: `${message ? `<p id="message">${escape(message)}</p>` : ''}
<p>Demo accounts: any name, with the password <b>${DEMO_PASSWORD}</b>.</p>
<form method="post" action="/login"><label>Name <input name="user" required autocomplete="username"></label>
<label>Password <input name="password" type="password" required autocomplete="current-password"></label> <button>Log in</button></form>`,
        });
      }
      case 'POST /login': {
        const body = await form(ctx);
        const user = (body.get('user') || '').trim().slice(0, 64);
        if (!user || body.get('password') !== DEMO_PASSWORD) {
          ctx.session.set('message', `Wrong name or password: any name signs in with the password "${DEMO_PASSWORD}".`);
          return ctx.redirect('/login');
        }
        ctx.session.set('user', user);
        // A new key after a privilege change: a cookie planted before login is worthless (OWASP, session fixation).
        ctx.session.renew();
        return ctx.redirect('/');
      }
      case 'GET /cart': {
        const items = (ctx.session.get('cart') || []).map((i) => `<li>${escape(i)}</li>`).join('');
        return page(ctx, store, {
          title: 'Cart',
          about: "The cart lives in the session (ctx.session.get('cart')): reload or come back later and it is still here; logging out deletes it.",
          body: `<ul id="cart">${items || '<li>(empty)</li>'}</ul>
<form method="post" action="/cart"><input name="item" required placeholder="Item" maxlength="64"> <button>Add</button></form>
<form method="post" action="/cart/clear"><button>Empty the cart</button></form>`,
        });
      }
      case 'POST /cart': {
        const item = ((await form(ctx)).get('item') || '').trim().slice(0, 64);
        if (item) ctx.session.set('cart', [...(ctx.session.get('cart') || []), item].slice(-50));
        return ctx.redirect('/cart');
      }
      case 'POST /cart/clear':
        ctx.session.remove('cart');
        return ctx.redirect('/cart');
      case 'POST /logout':
        // Deleted from the store, the cookie expired, and Clear-Site-Data: "cache" on this response.
        ctx.session.purge();
        return ctx.redirect('/');
      default:
        ctx.status = 404;
        ctx.type = 'html';
        ctx.body = errorPage(404);
    }
  });
  return app;
}

module.exports = { createApp, sessionSecret, DEV_SECRET };
