// The Express example: a visit counter and a small cart in the session, log in and out through
// passport (passport-local) on latchkey/express-session, the drop-in for express-session.
// Built against the package as users install it: `latchkey` resolves to this repo's dist/.
'use strict';
const express = require('express');
const passport = require('passport');
const { Strategy: LocalStrategy } = require('passport-local');
const { MemoryStore, startExpiredDeletion } = require('latchkey');
const { session } = require('latchkey/express-session');

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
        '  SESSION_SECRET=<what that printed> NODE_ENV=production node examples/express-app/server.js',
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

/** A page: who is signed in (req.user, from passport), the page's one-line explanation, its body, and which store runs. */
function page(req, store, { title, about, body }) {
  const user = req.user && req.user.name;
  const who = user
    ? `<div class="who"><p id="who">Signed in as <b>${escape(user)}</b> (req.user, from passport).</p>
<form method="post" action="/logout"><button>Log out</button></form>
<small>Logging out (req.logout) deletes the session from the store and expires its cookie.</small></div>`
    : '<p id="who">Not signed in.</p>';
  return `<!doctype html><html lang="en"><head>${HEAD}<title>${title} · latchkey Express example</title></head>
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
        : ['That request could not be handled', 'Go back and try again.'];
  return `<!doctype html><html lang="en"><head>${HEAD}<title>${status} · latchkey Express example</title></head>
<body><main><h1>${title}</h1><p id="error">${text}</p><p><a href="/">Home</a></p></main></body></html>`;
}

function createApp(options = {}) {
  const secret = sessionSecret(); // first: in production without SESSION_SECRET, stop before opening any connection
  const store = makeStore();
  const app = express();
  app.disable('x-powered-by');
  // Browsers ask for /favicon.ico on pages without an icon link (Express's own 404 page): no session, no 404.
  app.get('/favicon.ico', (_req, res) => void res.status(204).end());
  app.use(express.urlencoded({ extended: false, limit: '4kb' }));
  // The drop-in: req.session is shaped like express-session's, which is what passport uses.
  app.use(
    session({
      secret,
      store: store.store,
      cookie: { maxAge: 24 * 60 * 60 * 1000 }, // a persistent cookie (express-session's default is a browser-session one)
      ...options,
    }),
  );

  // Passport, with passport-local and a fixed demo user table: any name, password "demo".
  const auth = new passport.Passport();
  auth.use(
    new LocalStrategy({ usernameField: 'user', passwordField: 'password' }, (name, password, done) => {
      const user = String(name).trim().slice(0, 64);
      if (!user || password !== DEMO_PASSWORD) return done(null, false, { message: `Wrong name or password: any name signs in with the password "${DEMO_PASSWORD}".` });
      done(null, { name: user });
    }),
  );
  auth.serializeUser((user, done) => done(null, user.name)); // req.session.passport.user
  auth.deserializeUser((name, done) => done(null, { name })); // req.user on every request
  app.use(auth.authenticate('session'));

  app.get('/', (req, res) => {
    req.session.visits = (req.session.visits || 0) + 1;
    res.send(
      page(req, store, {
        title: 'Hello',
        about: 'The visit counter lives in the session: each reload adds one, and it survives logging in.',
        body: `<p>You have visited this page <b id="visits">${req.session.visits}</b> time(s).</p>
<p class="about">This example uses <code>latchkey/express-session</code>, the drop-in for express-session, so passport signs you in unchanged;
the Koa example uses latchkey's own handle (<code>ctx.session.get/set</code>, <code>renew()</code>, <code>purge()</code>).</p>`,
      }),
    );
  });

  app.get('/login', (req, res) => {
    // passport's failureMessage leaves the reason in req.session.messages: show it once.
    const messages = req.session.messages || [];
    delete req.session.messages;
    res.send(
      page(req, store, {
        title: 'Log in',
        about: 'Logging in (passport, on the drop-in) gives the session a new key: the cookie you had before stops working at once; your counter and cart come along.',
        body: `${messages.length ? `<p id="message">${escape(messages[messages.length - 1])}</p>` : ''}
<p>Demo accounts: any name, with the password <b>${DEMO_PASSWORD}</b>.</p>
<form method="post" action="/login"><label>Name <input name="user" required autocomplete="username"></label>
<label>Password <input name="password" type="password" required autocomplete="current-password"></label> <button>Log in</button></form>`,
      }),
    );
  });

  // keepSessionInfo: passport regenerates the session (new key) and copies the counter and cart into it.
  app.post('/login', auth.authenticate('local', { successRedirect: '/', failureRedirect: '/login', failureMessage: true, keepSessionInfo: true }));

  app.get('/cart', (req, res) => {
    const cart = req.session.cart || [];
    const items = cart.map((i) => `<li>${escape(i)}</li>`).join('');
    res.send(
      page(req, store, {
        title: 'Cart',
        about: 'The cart lives in the session (req.session.cart): reload or come back later and it is still here; logging out deletes it.',
        body: `<ul id="cart">${items || '<li>(empty)</li>'}</ul>
<form method="post" action="/cart"><input name="item" required placeholder="Item" maxlength="64"> <button>Add</button></form>
<form method="post" action="/cart/clear"><button>Empty the cart</button></form>`,
      }),
    );
  });

  app.post('/cart', (req, res) => {
    const item = String(req.body.item || '').trim().slice(0, 64);
    if (item) req.session.cart = [...(req.session.cart || []), item].slice(-50);
    res.redirect('/cart');
  });

  app.post('/cart/clear', (req, res) => {
    delete req.session.cart;
    res.redirect('/cart');
  });

  // req.logout (passport) drops the user and regenerates the session with nothing in it; latchkey
  // purges an emptied session at commit: deleted from the store, the cookie expired, and the
  // response says Clear-Site-Data: "cache" so the back button cannot show a signed-in page.
  app.post('/logout', (req, res, next) => {
    req.logout((err) => (err ? next(err) : res.redirect('/')));
  });

  // Errors: a store that is away is latchkey's status 503 (a friendly page that says so); anything
  // else is a plain page. Never a stack trace in the browser.
  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    const status = err.status === 503 ? 503 : err.status >= 400 && err.status < 500 ? err.status : 500;
    console.error(`${req.method} ${req.originalUrl}: ${status}:`, status === 503 ? err.message : err);
    for (const name of res.getHeaderNames()) res.removeHeader(name); // e.g. the Location of a redirect whose commit failed
    res.status(status).set('Cache-Control', 'no-store');
    if (status === 503) res.set('Retry-After', '5');
    res.type('html').send(errorPage(status));
  });
  return app;
}

module.exports = { createApp, sessionSecret, DEV_SECRET };
