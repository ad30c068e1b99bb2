/**
 * latchkey/koa-session with koa-passport (passport-local) over HTTP, on MemoryStore and RedisStore,
 * and the same scenarios on koa-session itself; then koa-session's own API: ctx.session = null,
 * ctx.session = {…}, isNew, maxAge, length, populated, save, regenerate, manuallyCommit.
 */
import Koa from 'koa';
import request from 'supertest';
import { Strategy as LocalStrategy } from 'passport-local';
import { ConfigError, MemoryStore } from 'latchkey';
import dropIn from 'latchkey/koa-session';
import { CookieJar, sessionCookie } from '../support/cookies';
import { SECRET } from '../support/harness';
import { redisStoresPerTest } from '../suites/stores';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const koaSession = require('koa-session') as { default: (options: object, app: Koa) => Koa.Middleware };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { KoaPassport } = require('koa-passport') as { KoaPassport: new () => KoaPassportLike };

/** What the test uses of koa-passport (its own types are not installed: they would pull in @types/koa-session-era typings). */
interface KoaPassportLike {
  use(strategy: unknown): void;
  serializeUser(fn: (user: unknown, done: (err: unknown, id?: unknown) => void) => void): void;
  deserializeUser(fn: (id: unknown, done: (err: unknown, user?: unknown) => void) => void): void;
  initialize(): Koa.Middleware;
  session(): Koa.Middleware;
  authenticate(name: string, options: object): Koa.Middleware;
}

const NAME = 'koa.sess';
const redisStore = redisStoresPerTest('compat-koa');

type Ctx = Omit<Koa.Context, 'session'> & { session: Record<string, any> | null; logout(): Promise<void>; isAuthenticated(): boolean };

const sessions: [string, (app: Koa, extra?: object) => Koa.Middleware][] = [
  ['latchkey/koa-session on MemoryStore', (app, extra = {}) => dropIn({ store: new MemoryStore({ sweepIntervalMs: 0 }), ...extra }, app)],
  [
    'latchkey/koa-session on RedisStore',
    (app, extra = {}) => {
      const store = redisStore();
      return dropIn({ store, ...extra }, app);
    },
  ],
  ['koa-session (the reference)', (app, extra = {}) => koaSession.default(extra, app)],
];

/** A Koa app with `session`, a tiny urlencoded reader, and `routes`. */
function koaApp(session: (app: Koa, extra?: object) => Koa.Middleware, routes: (app: Koa) => void, extra?: object): Koa {
  const app = new Koa();
  app.keys = [SECRET];
  app.use(session(app, extra));
  app.use(async (ctx, next) => {
    if (ctx.method === 'POST') {
      let raw = '';
      for await (const chunk of ctx.req) raw += chunk;
      (ctx.request as unknown as { body: unknown }).body = Object.fromEntries(new URLSearchParams(raw));
    }
    await next();
  });
  routes(app);
  return app;
}

describe.each(sessions)('%s', (_label, session) => {
  it('koa-passport: login, ctx.state.user on the next request, logout', async () => {
    const passport = new KoaPassport();
    passport.use(new LocalStrategy((username, password, done) => (password === 'secret' ? done(null, { id: 7, name: username }) : done(null, false))));
    passport.serializeUser((user, done) => done(null, (user as { id: number }).id));
    passport.deserializeUser((id, done) => done(null, { id, name: 'ada' }));
    const app = koaApp(session, (a) => {
      a.use(passport.initialize());
      a.use(passport.session());
      a.use(async (ctx, next) => {
        if (ctx.path === '/login') return passport.authenticate('local', { successRedirect: '/home', failureRedirect: '/login' })(ctx, next);
        const c = ctx as unknown as Ctx;
        if (ctx.path === '/logout') {
          await c.logout();
          return ctx.redirect('/');
        }
        if (ctx.path === '/me') ctx.body = { user: ctx.state.user ?? null, authenticated: c.isAuthenticated() };
      });
    });
    const jar = new CookieJar();
    const cb = app.callback();
    const bad = await request(cb).post('/login').type('form').send({ username: 'ada', password: 'nope' });
    expect(bad.headers.location).toBe('/login');
    const res = await request(cb).post('/login').type('form').send({ username: 'ada', password: 'secret' });
    expect([res.status, res.headers.location]).toEqual([302, '/home']);
    jar.take(res);
    expect((await request(cb).get('/me').set('Cookie', jar.header())).body).toEqual({ user: { id: 7, name: 'ada' }, authenticated: true });
    const out = await request(cb).post('/logout').set('Cookie', jar.header());
    jar.take(out);
    expect((await request(cb).get('/me').set('Cookie', jar.header())).body).toEqual({ user: null, authenticated: false });
  });

  it('ctx.session as koa-session has it: properties, length/populated, isNew, = {…} replaces, = null logs out', async () => {
    const app = koaApp(session, (a) =>
      a.use((koaCtx) => {
        const ctx = koaCtx as unknown as Ctx;
        const s = ctx.session!;
        switch (ctx.path) {
          case '/set':
            s.a = 1;
            s.obj = { list: [1] };
            ctx.body = { isNew: s.isNew, length: s.length, populated: s.populated };
            return;
          case '/mutate':
            s.obj.list.push(2);
            ctx.body = { isNew: s.isNew };
            return;
          case '/replace':
            ctx.session = { b: 2 };
            ctx.body = 'replaced';
            return;
          case '/null':
            ctx.session = null;
            ctx.body = { after: ctx.session };
            return;
          default:
            ctx.body = { data: s.toJSON(), length: s.length };
        }
      }),
    );
    const cb = app.callback();
    const jar = new CookieJar();
    const set = await request(cb).get('/set');
    expect(set.body).toEqual({ isNew: true, length: 2, populated: true });
    jar.take(set);
    const mutate = await request(cb).get('/mutate').set('Cookie', jar.header());
    expect(mutate.body).toEqual({ isNew: false });
    jar.take(mutate);
    expect((await request(cb).get('/read').set('Cookie', jar.header())).body).toEqual({ data: { a: 1, obj: { list: [1, 2] } }, length: 2 });
    jar.take(await request(cb).get('/replace').set('Cookie', jar.header()));
    expect((await request(cb).get('/read').set('Cookie', jar.header())).body.data).toEqual({ b: 2 });
    const nulled = await request(cb).get('/null').set('Cookie', jar.header());
    expect(nulled.body).toEqual({ after: null });
    jar.take(nulled);
    expect((await request(cb).get('/read').set('Cookie', jar.header())).body.data).toEqual({});
  });

  it("maxAge: 'session' gives a browser-session cookie; a number of ms a Max-Age; ctx.session.maxAge sets it per session", async () => {
    const app = (extra?: object) =>
      koaApp(session, (a) =>
        a.use((koaCtx) => {
        const ctx = koaCtx as unknown as Ctx;
          ctx.session!.n = 1;
          if (ctx.query.remember) ctx.session!.maxAge = 30 * 86_400_000;
          ctx.body = { maxAge: ctx.session!.maxAge };
        }),
      extra).callback();
    const browser = await request(app({ maxAge: 'session' })).get('/');
    expect(browser.body.maxAge).toBe('session');
    expect(sessionCookie(browser, NAME)!.attributes.expires ?? sessionCookie(browser, NAME)!.attributes['max-age']).toBeUndefined();
    const remember = await request(app({ maxAge: 60_000 })).get('/?remember=1');
    const c = sessionCookie(remember, NAME)!;
    const seconds = Number(c.attributes['max-age'] ?? (Date.parse(String(c.attributes.expires)) - Date.now()) / 1000);
    expect(seconds).toBeGreaterThan(29 * 86_400);
  });

  it('autoCommit: false commits only through manuallyCommit()', async () => {
    const app = koaApp(
      session,
      (a) =>
        a.use(async (koaCtx) => {
          const ctx = koaCtx as unknown as Ctx;
          ctx.session!.n = 1;
          if (ctx.query.commit) await ctx.session!.manuallyCommit();
          ctx.body = 'ok';
        }),
      { autoCommit: false },
    ).callback();
    expect(sessionCookie(await request(app).get('/'), NAME)).toBeUndefined();
    expect(sessionCookie(await request(app).get('/?commit=1'), NAME)).toBeDefined();
  });

  it('save() and regenerate() take a callback or return a promise; regenerate keeps the values under a new key', async () => {
    const app = koaApp(session, (a) =>
      a.use(async (koaCtx) => {
          const ctx = koaCtx as unknown as Ctx;
        if (ctx.path === '/seed') ctx.session!.v = 'kept';
        if (ctx.path === '/regenerate') await ctx.session!.regenerate();
        if (ctx.path === '/save') await new Promise<void>((resolve) => ctx.session!.save(() => resolve()));
        ctx.body = { v: ctx.session!.v ?? null };
      }),
    ).callback();
    const jar = new CookieJar();
    jar.take(await request(app).get('/seed'));
    const before = jar.value(NAME);
    const res = await request(app).get('/regenerate').set('Cookie', jar.header());
    jar.take(res);
    expect(jar.value(NAME)).not.toBe(before);
    expect((await request(app).get('/save').set('Cookie', jar.header())).body).toEqual({ v: 'kept' });
  });
});

describe('latchkey/koa-session only', () => {
  it("koa-session's options are translated; those with no meaning here and unknown ones are a ConfigError", () => {
    const app = new Koa();
    app.keys = [SECRET];
    expect(() => dropIn({ key: 'sess', maxAge: 'session', rolling: true, renew: true, httpOnly: true, signed: true, overwrite: true, sameSite: 'strict' }, app)).not.toThrow();
    for (const [options, message] of [
      [{ encode: () => '' }, /encode/],
      [{ genid: () => 'x' }, /genid.*store/],
      [{ signed: false }, /always signed/],
      [{ store: { get() {}, set() {}, destroy() {} } }, /koa-session store/],
      [{ maxAge: 0 }, /maxAge/],
      [{ keyy: 'x' }, /unknown option keyy/],
    ] as [object, RegExp][]) {
      expect(() => dropIn(options as never, app)).toThrow(ConfigError);
      expect(() => dropIn(options as never, app)).toThrow(message);
    }
  });
});
