/**
 * The packaged build, as users load it: `require` and `import` of every entry point
 * (run by `npm test` after `npm run build`), and every example walked end to end over HTTP
 * (in-process, with supertest). test/browser/examples.test.ts walks them again in Chromium.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestListener, Server } from 'node:http';
import request from 'supertest';
import { MemoryStore, SaveError, type SessionStore } from 'latchkey';
import { Jar, sessionCookie } from './support/cookies';
import { DelegatingStore } from './support/delegating-store';
import type { FastifyInstance } from 'fastify';
import { fastifyListener } from './support/harness';

const root = join(__dirname, '..');
const built = existsSync(join(root, 'dist', 'index.js'));

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
}

describe('the built package', () => {
  beforeAll(() => {
    if (!built) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  });

  it('loads with require', () => {
    const out = node(['-e', `
      const l = require('latchkey'); const e = require('latchkey/express'); const t = require('latchkey/testing');
      const k = require('latchkey/koa'); const f = require('latchkey/fastify');
      console.log([typeof l.MemoryStore, typeof l.SessionError, typeof e.session, typeof t.runStoreConformance, typeof k.session, typeof f.session].join(','));`]);
    expect(out.trim()).toBe('function,function,function,function,function,function');
  });

  it('loads with import, named exports included', () => {
    const out = node(['--input-type=module', '-e', `
      import { MemoryStore, ConfigError } from 'latchkey'; import { session } from 'latchkey/express';
      import { runStoreConformance } from 'latchkey/testing'; import { session as koa } from 'latchkey/koa';
      import fastify, { session as fastifyNamed } from 'latchkey/fastify';
      console.log([typeof MemoryStore, typeof ConfigError, typeof session, typeof runStoreConformance, typeof koa, fastify === fastifyNamed && typeof fastify].join(','));`]);
    expect(out.trim()).toBe('function,function,function,function,function,function');
  });
});

/**
 * What every example serves, and what both walks (this one and the browser's) rely on:
 * - `GET /` counts visits in the session: `<b id="visits">N</b>`;
 * - `GET /login`: a form posting `user` and `password` to `POST /login`; any name signs in with the
 *   password "demo" (the page says so); a wrong password redirects back to /login, which shows
 *   `<p id="message">` once; a login gives the session a new key and keeps the counter and the cart;
 * - `GET /cart`: `<ul id="cart">` with one `<li>` per item, or `<li>(empty)</li>`; `POST /cart` adds `item`;
 * - every page: `<p id="who">` saying `Signed in as <b>NAME</b>` or `Not signed in.`, the log-out
 *   form (`POST /logout`) outside any `<p>`, a one-line `<p class="about">`, the store in
 *   `<b id="store">`, and `<link rel="icon" href="data:,">`; `GET /favicon.ico` is a 204;
 * - `POST /logout` deletes the session and expires the cookie;
 * - a store outage (latchkey's status 503) is a friendly 503 page, any other failure a plain 500
 *   page, neither with a stack trace or a file path;
 * - `createApp(options)` passes `options` to the session middleware; `server.js` listens on
 *   127.0.0.1:$PORT (0: a free port), prints `on http://127.0.0.1:PORT (STORE)`, takes REDIS_URL,
 *   REDIS_PREFIX and DATABASE_URL, and exits 1 with a message when NODE_ENV=production and
 *   SESSION_SECRET is unset.
 */
interface Example {
  dir: string;
  /** The session cookie's name. */
  cookie: string;
  /** The app as the example builds it, `options` passed to its session middleware, for supertest. */
  make(options?: object): RequestListener | Server | Promise<RequestListener | Server>;
}

type CreateApp<T> = { createApp: (options?: object) => T };
/** Every example under examples/, walked the same way; test/browser/examples.test.ts has the same list. */
const examples: Example[] = [
  { dir: 'examples/express-app', cookie: 'connect.sid', make: (o) => (require('../examples/express-app/app') as CreateApp<RequestListener>).createApp(o) },
  { dir: 'examples/koa-app', cookie: 'sid', make: (o) => (require('../examples/koa-app/app') as CreateApp<{ callback(): RequestListener }>).createApp(o).callback() },
  { dir: 'examples/fastify-app', cookie: 'sid', make: (o) => fastifyListener((require('../examples/fastify-app/app') as CreateApp<FastifyInstance>).createApp(o)) },
];

it('walks every example under examples/ (a new one is added to `examples` here and in test/browser/examples.test.ts)', () => {
  // Every directory with a server.js is an example; examples/shared holds what they share.
  const dirs = readdirSync(join(root, 'examples'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, 'examples', d.name, 'server.js')))
    .map((d) => `examples/${d.name}`);
  expect(examples.map((e) => e.dir).sort()).toEqual(dirs.sort());
});

/** Builds an app with REDIS_URL and DATABASE_URL unset: with them, the example would open a client nobody closes. */
async function withoutRedis(example: Example, options?: object): Promise<RequestListener | Server> {
  const saved = { REDIS_URL: process.env.REDIS_URL, DATABASE_URL: process.env.DATABASE_URL };
  delete process.env.REDIS_URL;
  delete process.env.DATABASE_URL;
  try {
    return await example.make(options);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  }
}

/** A store that never answers: the engine's deadline (storeTimeoutMs) turns that into a 503. */
class SilentStore extends DelegatingStore {
  override load = () => new Promise<never>(() => {});
  override save = () => new Promise<never>(() => {});
  override update = () => new Promise<never>(() => {});
}

/** A store whose writes fail with a non-outage error (status 500), carrying a file path in its message. */
class BrokenStore extends DelegatingStore {
  override save = () => Promise.reject(new SaveError('serialization', `cannot encode at ${__filename}:1:1`));
}

const noLeaks = (text: string) => {
  expect(text).not.toContain(root);
  expect(text).not.toMatch(/\bat .*\(|\.js:\d|\.ts:\d|node_modules/);
};

describe.each(examples)('$dir', (example) => {
  const NAME = example.cookie;

  it('counts, refuses a wrong password, logs in on a new key, fills a cart, and logout deletes the session', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const app = await withoutRedis(example, { store });
    const jar = new Jar(NAME);
    const go = async (req: request.Test) => {
      const res = await req.set('Cookie', jar.header());
      jar.take(res);
      return res;
    };
    let res = await go(request(app).get('/'));
    expect(res.text).toContain('<b id="visits">1</b>');
    expect(res.text).toContain('<p id="who">Not signed in.</p>');
    res = await go(request(app).get('/'));
    expect(res.text).toContain('<b id="visits">2</b>');
    expect(res.headers['cache-control']).toBe('no-store'); // a page of a live session
    // A wrong password: back to the form, which says why (once), and nobody is signed in.
    res = await go(request(app).post('/login').type('form').send({ user: 'ada', password: 'secret' }));
    expect([res.status, res.headers.location]).toEqual([302, '/login']);
    res = await go(request(app).get('/login'));
    expect(res.text).toMatch(/<p id="message">Wrong name or password[^<]*demo/);
    expect(res.text).toContain('<p id="who">Not signed in.</p>');
    expect((await go(request(app).get('/login'))).text).not.toContain('id="message"');
    const beforeLogin = jar.header();
    res = await go(request(app).post('/login').type('form').send({ user: 'ada', password: 'demo' }));
    expect([res.status, res.headers.location]).toEqual([302, '/']);
    expect(jar.header()).not.toBe(beforeLogin);
    res = await go(request(app).post('/cart').type('form').send({ item: 'tea <b>' }));
    expect(res.status).toBe(302);
    res = await go(request(app).get('/cart'));
    expect(res.text).toContain('Signed in as <b>ada</b>');
    expect(res.text).toContain('<li>tea &#60;b&#62;</li>');
    // The counter came along through the login.
    expect((await go(request(app).get('/'))).text).toContain('<b id="visits">3</b>');
    // The pre-login cookie is dead (the new key kills the old one at once).
    expect((await request(app).get('/cart').set('Cookie', beforeLogin)).text).toContain('Not signed in.');
    const loggedIn = jar.header();
    expect(store.size).toBe(1);
    res = await request(app).post('/logout').set('Cookie', jar.header());
    expect([res.status, res.headers.location]).toEqual([302, '/']);
    const expired = sessionCookie(res, NAME);
    expect(expired?.attributes['max-age']).toBe('0');
    expect(res.headers['clear-site-data']).toBe('"cache"');
    expect(store.size).toBe(0);
    // The logged-out cookie is dead too, and a fresh visitor sees an empty cart.
    expect((await request(app).get('/cart').set('Cookie', loggedIn)).text).toContain('(empty)');
    expect((await request(app).get('/cart')).text).toContain('(empty)');
  });

  it('says on each page what it shows, which store runs; a favicon without a 404; the log-out form outside <p>', async () => {
    const app = await withoutRedis(example);
    const jar = new Jar(NAME);
    jar.take(await request(app).post('/login').type('form').send({ user: 'ada', password: 'demo' }));
    for (const path of ['/', '/login', '/cart']) {
      const text = (await request(app).get(path).set('Cookie', jar.header())).text;
      expect(text).toMatch(/<p class="about">[^<]*session/);
      expect(text).toContain('<b id="store">MemoryStore</b>');
      expect(text).toContain('<link rel="icon" href="data:,">');
      expect(text).toContain('<form method="post" action="/logout">');
      // No <form> inside a <p> (the parser would close the <p> and break the layout).
      expect(text).not.toMatch(/<p\b[^>]*>(?:(?!<\/p>)[\s\S])*<form/);
    }
    const home = (await request(app).get('/')).text;
    expect(home).toContain('latchkey/express-session'); // both home pages name both styles
    expect(home).toMatch(/(ctx|request)\.session/); // and the handle's style
    expect((await request(app).get('/login')).text).toContain('the password <b>demo</b>');
    expect((await request(app).get('/cart')).text).toMatch(/cart lives in the session/);
    const icon = await request(app).get('/favicon.ico');
    expect(icon.status).toBe(204);
    expect(icon.headers['set-cookie']).toBeUndefined();
  });

  it('a store outage is a friendly 503 page, another failure a plain 500 page: no stack trace, no path, with NODE_ENV unset', async () => {
    const saved = process.env.NODE_ENV;
    delete process.env.NODE_ENV;
    const errors = jest.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const inner = new MemoryStore({ sweepIntervalMs: 0 });
      const live = await withoutRedis(example, { store: inner });
      const jar = new Jar(NAME);
      jar.take(await request(live).get('/'));
      // The same sessions, now behind a store that does not answer.
      const down = await withoutRedis(example, { store: new SilentStore(inner) as SessionStore, storeTimeoutMs: 100 });
      for (const req of [request(down).get('/').set('Cookie', jar.header()), request(down).get('/'), request(down).post('/cart').type('form').send({ item: 'tea' })]) {
        const res = await req;
        expect(res.status).toBe(503);
        expect(res.headers['content-type']).toMatch(/^text\/html/);
        expect(res.headers['set-cookie']).toBeUndefined();
        expect(res.headers.location).toBeUndefined();
        expect(res.text).toContain('The session store is not answering');
        expect(res.text).toContain('<link rel="icon" href="data:,">');
        noLeaks(res.text);
      }
      const broken = await withoutRedis(example, { store: new BrokenStore(inner) as SessionStore });
      const res = await request(broken).get('/');
      expect(res.status).toBe(500);
      expect(res.text).toContain('Something went wrong');
      expect(res.text).not.toContain('cannot encode');
      noLeaks(res.text);
      expect(errors).toHaveBeenCalled(); // the details go to the server's log
    } finally {
      errors.mockRestore();
      if (saved !== undefined) process.env.NODE_ENV = saved;
    }
  });

  it('refuses to start with NODE_ENV=production and no SESSION_SECRET, saying how to make one', () => {
    if (!built) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', PORT: '0' };
    delete env.SESSION_SECRET;
    delete env.REDIS_URL;
    delete env.DATABASE_URL;
    const run = spawnSync(process.execPath, [join(root, example.dir, 'server.js')], { cwd: root, env, encoding: 'utf8', timeout: 10_000 });
    expect(run.status).toBe(1);
    expect(run.stdout).not.toContain('on http://');
    expect(run.stderr).toContain('SESSION_SECRET is not set and NODE_ENV=production');
    expect(run.stderr).toContain("randomBytes(32).toString('base64url')");
    expect(run.stderr).toContain(`SESSION_SECRET=<what that printed> NODE_ENV=production node ${example.dir}/server.js`);
  });
});
