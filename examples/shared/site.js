// What the three examples share, so each example's own file shows only what differs: the
// framework, its session middleware and its routes. The store chosen from the environment, the
// secret, the page layout, the error page and starting the server.
'use strict';
const { MemoryStore, startExpiredDeletion } = require('latchkey');

/** Used only when SESSION_SECRET is unset and NODE_ENV is not production (then the app refuses to start). */
const DEV_SECRET = 'dev-only-secret-change-me-0123456789abcdef';
/** The demo "user table": any name signs in with this password (the login page says so). */
const DEMO_PASSWORD = 'demo';

/** The secret that signs the cookies: SESSION_SECRET, or the development one, never in production. */
function sessionSecret(example, env = process.env) {
  if (env.SESSION_SECRET) return env.SESSION_SECRET;
  if (env.NODE_ENV === 'production') {
    const err = new Error(
      'SESSION_SECRET is not set and NODE_ENV=production: refusing to start with the built-in development secret\n' +
        "(it is in the example's source for anyone to read, so anyone could sign a session cookie with it).\n" +
        'Make a secret (32 random bytes) once, keep it where you keep your other secrets, and start with it:\n' +
        `  node -e "console.log(require('node:crypto').randomBytes(32).toString('base64url'))"\n` +
        `  SESSION_SECRET=<what that printed> NODE_ENV=production node examples/${example}/server.js`,
    );
    err.code = 'EXAMPLE_NO_SECRET';
    throw err;
  }
  return DEV_SECRET;
}

/**
 * The store: PostgresStore when DATABASE_URL is set, RedisStore when REDIS_URL is set, else the
 * in-process MemoryStore. Returns the store and what the pages say about it.
 */
function makeStore(env = process.env) {
  if (env.DATABASE_URL) return { store: makePostgresStore(env.DATABASE_URL), name: 'PostgresStore', about: 'in PostgreSQL (DATABASE_URL is set): restart the app and you are still signed in' };
  if (!env.REDIS_URL) return { store: new MemoryStore(), name: 'MemoryStore', about: 'in this process: a restart forgets every session (set REDIS_URL for RedisStore, DATABASE_URL for PostgresStore)' };
  const Redis = require('ioredis');
  const { RedisStore } = require('latchkey/redis');
  // The README's recommended options ("RedisStore"): a 503 after 1 s, bounded queues while Redis
  // is away, and back within 1 s of its return.
  const client = new Redis(env.REDIS_URL, {
    commandTimeout: 1000,
    maxRetriesPerRequest: 1,
    socketTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
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

/**
 * A page: who is signed in (`user`, and in words how the example knows: `how.who`, `how.logout`),
 * the page's one-line explanation, its body, and which store runs.
 */
function page({ framework, store, user, how, title, about, body }) {
  const who = user
    ? `<div class="who"><p id="who">Signed in as <b>${escape(user)}</b> (${how.who}).</p>
<form method="post" action="/logout"><button>Log out</button></form>
<small>Logging out (${how.logout}) deletes the session from the store and expires its cookie.</small></div>`
    : '<p id="who">Not signed in.</p>';
  return `<!doctype html><html lang="en"><head>${HEAD}<title>${title} · latchkey ${framework} example</title></head>
<body><header><nav><a href="/">Home</a><a href="/cart">Cart</a>${user ? '' : '<a href="/login">Log in</a>'}</nav>
${who}</header>
<main><h1>${title}</h1><p class="about">${about}</p>
${body}</main>
<footer><p>Sessions live in <b id="store">${store.name}</b>, ${escape(store.about)}. The cookie holds only a signed key.</p></footer></body></html>`;
}

/** The pages' bodies, the same in every example. */
const bodies = {
  home: (visits, styles) => `<p>You have visited this page <b id="visits">${visits}</b> time(s).</p>\n<p class="about">${styles}</p>`,
  login: (message) => `${message ? `<p id="message">${escape(message)}</p>` : ''}
<p>Demo accounts: any name, with the password <b>${DEMO_PASSWORD}</b>.</p>
<form method="post" action="/login"><label>Name <input name="user" required autocomplete="username"></label>
<label>Password <input name="password" type="password" required autocomplete="current-password"></label> <button>Log in</button></form>`,
  cart: (cart) => `<ul id="cart">${cart.map((i) => `<li>${escape(i)}</li>`).join('') || '<li>(empty)</li>'}</ul>
<form method="post" action="/cart"><input name="item" required placeholder="Item" maxlength="64"> <button>Add</button></form>
<form method="post" action="/cart/clear"><button>Empty the cart</button></form>`,
};

const WRONG_PASSWORD = `Wrong name or password: any name signs in with the password "${DEMO_PASSWORD}".`;

/** A login form's name, if the password is the demo one; else undefined. */
function checkLogin(name, password) {
  const user = String(name || '').trim().slice(0, 64);
  return user && password === DEMO_PASSWORD ? user : undefined;
}

/** The cart with `item` added (at most 50 items of 64 characters). */
const addToCart = (cart, item) => {
  const it = String(item || '').trim().slice(0, 64);
  return it ? [...(cart || []), it].slice(-50) : cart || [];
};

/** The status an error is answered with: a store that is away (latchkey's 503), a 4xx that says so, else 500. */
function errorStatus(err) {
  const status = err.status ?? err.statusCode;
  if (status === 503) return 503;
  return status >= 400 && status < 500 && err.expose !== false ? status : 500;
}

/** The error page: no stack trace and no file paths, whatever NODE_ENV says (the details go to the server's log). */
function errorPage(framework, status) {
  const [title, text] =
    status === 503
      ? ['The session store is not answering', 'Your session is safe: nothing was changed. Try again in a few seconds.']
      : status >= 500
        ? ['Something went wrong', 'The server could not handle this request. Try again, or go back home.']
        : status === 404
          ? ['Not found', 'There is no page here.']
          : ['That request could not be handled', 'Go back and try again.'];
  return `<!doctype html><html lang="en"><head>${HEAD}<title>${status} · latchkey ${framework} example</title></head>
<body><main><h1>${title}</h1><p id="error">${text}</p><p><a href="/">Home</a></p></main></body></html>`;
}

/**
 * The headers an error response keeps of what was already set: only the session cookie (a store
 * write given up on carries the cookie that keeps the session: latchkey's err.headers).
 */
function errorHeaders(err, status) {
  return { 'Cache-Control': 'no-store', ...(status === 503 ? { 'Retry-After': '5' } : {}), ...(err.headers || {}) };
}

/** server.js: builds the app (or says why not and exits 1) and listens on 127.0.0.1:$PORT. */
async function serve(framework, defaultPort, createApp, listen) {
  const storeName = process.env.DATABASE_URL ? 'PostgresStore' : process.env.REDIS_URL ? 'RedisStore' : 'MemoryStore';
  let app;
  try {
    app = createApp();
  } catch (err) {
    // No SESSION_SECRET in production, or a secret latchkey refuses (shorter than 32 characters): say why, exit 1.
    if (err.code !== 'EXAMPLE_NO_SECRET' && err.code !== 'LATCHKEY_CONFIG') throw err;
    console.error(`latchkey ${framework} example: ${err.message}`);
    process.exit(1);
  }
  if (!process.env.SESSION_SECRET) {
    console.warn(`latchkey ${framework} example: SESSION_SECRET is not set, so cookies are signed with the built-in development secret (with NODE_ENV=production the example refuses to start).`);
  }
  const port = Number(process.env.PORT || defaultPort); // PORT=0: any free port (the line below says which)
  try {
    const bound = await listen(app, port);
    console.log(`latchkey ${framework} example on http://127.0.0.1:${bound} (${storeName})`);
  } catch (err) {
    console.error(`latchkey ${framework} example: cannot listen on 127.0.0.1:${port}: ${err.message} (set PORT to another port)`);
    process.exit(1);
  }
}

module.exports = { DEV_SECRET, DEMO_PASSWORD, WRONG_PASSWORD, addToCart, bodies, checkLogin, errorHeaders, errorPage, errorStatus, escape, makeStore, page, serve, sessionSecret };
