/**
 * @fastify/passport with passport-local on latchkey/fastify, unchanged, over HTTP: login,
 * `request.user` on the next request, logout, bad credentials, flash. Every scenario runs on
 * latchkey/fastify with MemoryStore and with RedisStore, and on @fastify/session (+ @fastify/cookie)
 * to prove the scenario right; the reference runs in a child process (test/support/child-server.ts
 * says why), from the same app code (test/support/fastify-passport-app.js).
 *
 * What @fastify/passport calls on request.session: get(key), set(key, value), set(key, undefined)
 * (the handle's own API) and, written for @fastify/session and @fastify/secure-session,
 * regenerate(keep?) and data(), which the Fastify adapter adds for it (src/middleware/fastify.ts).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import request from 'supertest';
import { MemoryStore, type SessionStore } from 'latchkey';
import { session } from 'latchkey/fastify';
import { childServer, type ChildServer } from '../support/child-server';
import { Jar } from '../support/cookies';
import { fastifyListener, SECRET } from '../support/harness';
import { redisStoresPerTest } from '../suites/stores';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { passportApp } = require('../support/fastify-passport-app') as {
  passportApp: (lib: typeof Fastify, register: (app: FastifyInstance) => void, authenticatorOptions?: object) => FastifyInstance;
};

const redisStore = redisStoresPerTest('compat-fastify');
const children: ChildServer[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) await child.stop();
});

/** What supertest talks to: a listener in this process, or the URL of the reference's child process. */
type Target = Parameters<typeof request>[0];

/** The session libraries every scenario runs on: a cookie name and how to build the app. */
const sessions: [string, string, (authenticatorOptions?: object) => Promise<Target>][] = [
  [
    'latchkey/fastify on MemoryStore',
    'sid',
    async (o) => fastifyListener(passportApp(Fastify, (app) => app.register(session, { secret: SECRET, store: new MemoryStore({ sweepIntervalMs: 0 }) }), o)),
  ],
  [
    'latchkey/fastify on RedisStore',
    'sid',
    async (o) => {
      const store = redisStore();
      return fastifyListener(passportApp(Fastify, (app) => app.register(session, { secret: SECRET, store }), o));
    },
  ],
  [
    '@fastify/session (the reference)',
    'sessionId',
    async (o) => {
      const child = await childServer(['test/support/fastify-session-reference.js', ...(o ? [JSON.stringify(o)] : [])]);
      children.push(child);
      return child.url;
    },
  ],
];
const isLatchkey = (label: string) => label.startsWith('latchkey');

describe.each(sessions)('%s', (label, name, make) => {
  async function login(app: Target, jar: Jar, password = 'secret', query = '') {
    const res = await request(app).post(`/login${query}`).send({ username: 'ada', password }).set('Cookie', jar.header());
    jar.take(res);
    return res;
  }
  const me = async (app: Target, cookie: string) => (await request(app).get('/me').set('Cookie', cookie)).body.user;

  it('login gives a new session key (the old one is dead); request.user on the next request; logout ends it', async () => {
    const app = await make();
    const jar = new Jar(name);
    jar.take(await request(app).get('/set'));
    const beforeLogin = jar.header();
    expect(await me(app, beforeLogin)).toBeNull();
    const res = await login(app, jar);
    expect([res.status, res.headers.location]).toEqual([302, '/home']);
    expect(jar.header()).not.toBe(beforeLogin);
    expect(await me(app, jar.header())).toEqual({ id: 7, name: 'ada' });
    // Session fixation: the key from before login does not carry the login.
    expect(await me(app, beforeLogin)).toBeNull();
    const loggedIn = jar.header();
    const out = await request(app).post('/logout').set('Cookie', loggedIn);
    expect([out.status, out.headers.location]).toEqual([302, '/']);
    jar.take(out);
    expect(await me(app, jar.header())).toBeNull();
    // The cookie of the logged-in session is worthless after logout.
    expect(await me(app, loggedIn)).toBeNull();
    if (isLatchkey(label)) expect(jar.value).toBeUndefined(); // the cookie was expired
  });

  it('logout of a visitor who is not logged in works', async () => {
    const res = await request(await make()).post('/logout');
    expect([res.status, res.headers.location]).toEqual([302, '/']);
  });

  it('bad credentials: redirected back, the message in the session, no user', async () => {
    const app = await make();
    const jar = new Jar(name);
    const res = await login(app, jar, 'wrong');
    expect([res.status, res.headers.location]).toEqual([302, '/login']);
    expect((await request(app).get('/dump').set('Cookie', jar.header())).body.messages).toEqual(['bad credentials']);
    expect(await me(app, jar.header())).toBeNull();
  });

  it('failureFlash: the message through @fastify/flash, shown once', async () => {
    const app = await make();
    const jar = new Jar(name);
    const res = await request(app).post('/login-flash').send({ username: 'ada', password: 'wrong' });
    jar.take(res);
    expect([res.status, res.headers.location]).toEqual([302, '/flash']);
    const shown = await request(app).get('/flash').set('Cookie', jar.header());
    jar.take(shown);
    expect(shown.body).toEqual(['try again']);
    expect((await request(app).get('/flash').set('Cookie', jar.header())).body).toEqual([]);
  });

  it('login starts the session empty but for clearSessionIgnoreFields (clearSessionOnLogin, the default)', async () => {
    for (const [options, cart] of [[undefined, null], [{ clearSessionIgnoreFields: ['cart'] }, ['tea']]] as const) {
      const app = await make(options);
      const jar = new Jar(name);
      jar.take(await request(app).get('/set'));
      await login(app, jar);
      expect(await me(app, jar.header())).toEqual({ id: 7, name: 'ada' });
      expect((await request(app).get('/dump').set('Cookie', jar.header())).body.cart).toEqual(cart);
    }
  });

  it('clearSessionOnLogin: false: login gives a new key and keeps what the session held (not on @fastify/session)', async () => {
    // @fastify/passport saves the values with request.session.data() (@fastify/secure-session's), then
    // regenerate()s and puts them back: @fastify/session has no data(), so the reference loses them.
    const kept = isLatchkey(label) ? ['tea'] : null;
    const app = await make({ clearSessionOnLogin: false });
    const jar = new Jar(name);
    jar.take(await request(app).get('/set'));
    const beforeLogin = jar.header();
    await login(app, jar);
    expect(jar.header()).not.toBe(beforeLogin);
    expect(await me(app, beforeLogin)).toBeNull();
    expect((await request(app).get('/dump').set('Cookie', jar.header())).body.cart).toEqual(kept);
    expect(await me(app, jar.header())).toEqual({ id: 7, name: 'ada' });
    jar.take(await request(app).post('/logout').set('Cookie', jar.header()));
    expect(await me(app, jar.header())).toBeNull();
    expect((await request(app).get('/dump').set('Cookie', jar.header())).body.cart).toEqual(kept);
  });

  it('keepSessionInfo and returnTo: kept by @fastify/session; not on latchkey/fastify (a known limitation)', async () => {
    // @fastify/passport lists what to keep with Object.keys(request.session): @fastify/session's
    // values are properties of its object; latchkey's handle has none, so nothing extra is kept.
    const app = await make();
    const jar = new Jar(name);
    const first = await request(app).get('/protected');
    expect(first.headers.location).toBe('/login');
    jar.take(first);
    jar.take(await request(app).get('/set').set('Cookie', jar.header()));
    const res = await login(app, jar, 'secret', '?keep=1');
    expect(res.headers.location).toBe(isLatchkey(label) ? '/home' : '/protected');
    expect((await request(app).get('/dump').set('Cookie', jar.header())).body.cart).toEqual(isLatchkey(label) ? null : ['tea']);
    expect((await request(app).get('/protected').set('Cookie', jar.header())).text).toBe('the secret page');
  });
});
