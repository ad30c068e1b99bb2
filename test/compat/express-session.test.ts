/**
 * latchkey/express-session with the real libraries apps put on top of express-session: passport
 * (passport-local), connect-flash and csrf-sync, over HTTP. Every scenario runs on the drop-in with
 * MemoryStore and with RedisStore, and on express-session itself, to prove the scenario right.
 */
import express from 'express';
import type { RequestHandler } from 'express';
import request from 'supertest';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import flash from 'connect-flash';
import { csrfSync } from 'csrf-sync';
import { ConfigError, MemoryStore } from 'latchkey';
import dropIn from 'latchkey/express-session';
import { Jar, sessionCookie } from '../support/cookies';
import { SECRET } from '../support/harness';
import { redisStoresPerTest } from '../suites/stores';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const expressSession = require('express-session') as (options: object) => RequestHandler;

const NAME = 'connect.sid';
const redisStore = redisStoresPerTest('compat-express');

/** The session middlewares every scenario runs on. */
const sessions: [string, (extra?: object) => RequestHandler][] = [
  ['latchkey/express-session on MemoryStore', (extra = {}) => dropIn({ secret: SECRET, store: new MemoryStore({ sweepIntervalMs: 0 }), ...extra }) as RequestHandler],
  [
    'latchkey/express-session on RedisStore',
    (extra = {}) => {
      const store = redisStore();
      return dropIn({ secret: SECRET, store, ...extra }) as RequestHandler;
    },
  ],
  ['express-session (the reference)', (extra = {}) => expressSession({ secret: SECRET, resave: false, saveUninitialized: false, ...extra })],
];
const isLatchkey = (label: string) => label.startsWith('latchkey');

type AnyReq = express.Request & { session: Record<string, any>; sessionID?: string; flash(type?: string, msg?: string): unknown; csrfToken?: () => string };

/** Passport with passport-local: user "ada", password "secret". */
function passportApp(session: RequestHandler): express.Express {
  const pass = new passport.Passport();
  pass.use(new LocalStrategy((username, password, done) => (password === 'secret' ? done(null, { id: 7, name: username }) : done(null, false, { message: 'bad credentials' }))));
  pass.serializeUser((user, done) => done(null, (user as { id: number }).id));
  pass.deserializeUser((id, done) => done(null, { id, name: 'ada' }));
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(session);
  app.use(pass.authenticate('session'));
  app.get('/me', (req, res) => void res.json({ user: req.user ?? null, sessionID: (req as AnyReq).sessionID ?? null, id: (req as AnyReq).session?.id ?? null }));
  app.get('/protected', (req, res) => {
    if (req.user) return void res.send('the secret page');
    (req as AnyReq).session.returnTo = req.originalUrl;
    res.redirect('/login');
  });
  app.get('/set', (req, res) => {
    (req as AnyReq).session.cart = ['tea'];
    res.send('ok');
  });
  app.get('/dump', (req, res) => void res.json({ cart: (req as AnyReq).session?.cart ?? null, messages: (req as AnyReq).session?.messages ?? null }));
  app.post('/login', (req, res, next) =>
    pass.authenticate('local', { failureMessage: true, failureRedirect: '/login', successReturnToOrRedirect: '/home', keepSessionInfo: req.query.keep === '1' })(req, res, next),
  );
  app.post('/logout', (req, res, next) => req.logout((err) => (err ? next(err) : res.redirect('/'))));
  return app;
}

async function login(app: express.Express, jar: Jar, password = 'secret', query = '') {
  const res = await request(app).post(`/login${query}`).type('form').send({ username: 'ada', password }).set('Cookie', jar.header());
  jar.take(res);
  return res;
}

describe.each(sessions)('%s', (label, session) => {
  describe('passport + passport-local', () => {
    it('login renews the session id; req.user on the next request; logout ends it', async () => {
      const app = passportApp(session());
      const jar = new Jar(NAME);
      jar.take(await request(app).get('/set'));
      const before = (await request(app).get('/me').set('Cookie', jar.header())).body;
      expect(before.user).toBeNull();
      const res = await login(app, jar);
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe('/home');
      const me = (await request(app).get('/me').set('Cookie', jar.header())).body;
      expect(me.user).toEqual({ id: 7, name: 'ada' });
      expect(me.sessionID).not.toBe(before.sessionID);
      expect(me.id).toBe(me.sessionID);
      const out = await request(app).post('/logout').set('Cookie', jar.header());
      expect(out.status).toBe(302);
      jar.take(out);
      expect((await request(app).get('/me').set('Cookie', jar.header())).body.user).toBeNull();
    });

    it('logout of a visitor who is not logged in works', async () => {
      const res = await request(passportApp(session())).post('/logout');
      expect(res.status).toBe(302);
    });

    it('bad credentials: redirected back, the message in req.session.messages, no user', async () => {
      const app = passportApp(session());
      const jar = new Jar(NAME);
      const res = await login(app, jar, 'wrong');
      expect([res.status, res.headers.location]).toEqual([302, '/login']);
      expect((await request(app).get('/dump').set('Cookie', jar.header())).body.messages).toEqual(['bad credentials']);
      expect((await request(app).get('/me').set('Cookie', jar.header())).body.user).toBeNull();
    });

    it('keepSessionInfo keeps what the session held before login; without it, login starts empty', async () => {
      const app = passportApp(session());
      for (const [query, cart] of [['?keep=1', ['tea']], ['', null]] as const) {
        const jar = new Jar(NAME);
        jar.take(await request(app).get('/set'));
        await login(app, jar, 'secret', query);
        expect((await request(app).get('/dump').set('Cookie', jar.header())).body.cart).toEqual(cart);
      }
    });

    it('returnTo: after login the visitor lands where they were going', async () => {
      const app = passportApp(session());
      const jar = new Jar(NAME);
      const first = await request(app).get('/protected');
      expect(first.headers.location).toBe('/login');
      jar.take(first);
      const res = await login(app, jar, 'secret', '?keep=1');
      expect(res.headers.location).toBe('/protected');
      expect((await request(app).get('/protected').set('Cookie', jar.header())).text).toBe('the secret page');
    });
  });

  it('connect-flash: a message is shown once, on the next request', async () => {
    const app = express();
    app.use(session());
    app.use(flash());
    app.get('/do', (req, res) => {
      (req as unknown as AnyReq).flash('info', 'saved');
      res.redirect('/show');
    });
    app.get('/show', (req, res) => void res.json((req as unknown as AnyReq).flash('info')));
    const jar = new Jar(NAME);
    jar.take(await request(app).get('/do'));
    let res = await request(app).get('/show').set('Cookie', jar.header());
    jar.take(res);
    expect(res.body).toEqual(['saved']);
    res = await request(app).get('/show').set('Cookie', jar.header());
    expect(res.body).toEqual([]);
  });

  it('csrf-sync: a POST with the token passes, without it 403; a revoked token no longer passes', async () => {
    const { csrfSynchronisedProtection, generateToken, revokeToken } = csrfSync();
    const app = express();
    app.use(express.json());
    app.use(session());
    app.get('/form', (req, res) => void res.json({ token: generateToken(req) }));
    app.post('/revoke', (req, res) => {
      revokeToken(req);
      res.send('revoked');
    });
    app.use(csrfSynchronisedProtection);
    app.post('/transfer', (_req, res) => void res.send('done'));
    app.use(((err, _req, res, _next) => void res.status(err.status ?? 500).send(err.message)) as express.ErrorRequestHandler);
    const jar = new Jar(NAME);
    const form = await request(app).get('/form');
    jar.take(form);
    const token = form.body.token as string;
    expect((await request(app).post('/transfer').set('Cookie', jar.header()).set('x-csrf-token', token)).status).toBe(200);
    expect((await request(app).post('/transfer').set('Cookie', jar.header())).status).toBe(403);
    expect((await request(app).post('/transfer').set('Cookie', jar.header()).set('x-csrf-token', 'forged')).status).toBe(403);
    jar.take(await request(app).post('/revoke').set('Cookie', jar.header()).set('x-csrf-token', token));
    expect((await request(app).post('/transfer').set('Cookie', jar.header()).set('x-csrf-token', token)).status).toBe(403);
  });

  it('the express-session habits: properties, nested mutation, delete, undefined removes, JSON values', async () => {
    const app = express();
    app.use(session());
    app.get('/write', (req, res) => {
      const s = (req as AnyReq).session;
      s.count = 1;
      s.nested = { list: [1] };
      s.gone = 'x';
      s.undef = 'y';
      s.when = new Date(0);
      res.send('ok');
    });
    app.get('/mutate', (req, res) => {
      const s = (req as AnyReq).session;
      s.count += 1;
      s.nested.list.push(2, undefined);
      s.nested.opt = undefined;
      delete s.gone;
      s.undef = undefined;
      res.send('ok');
    });
    app.get('/read', (req, res) => void res.json({ data: { ...(req as AnyReq).session, cookie: undefined }, keys: Object.keys((req as AnyReq).session).filter((k) => k !== 'cookie').sort() }));
    const jar = new Jar(NAME);
    jar.take(await request(app).get('/write'));
    jar.take(await request(app).get('/mutate').set('Cookie', jar.header()));
    const read = (await request(app).get('/read').set('Cookie', jar.header())).body;
    expect(read.data).toEqual({ count: 2, nested: { list: [1, 2, null] }, when: '1970-01-01T00:00:00.000Z' });
    expect(read.keys).toEqual(['count', 'nested', 'when']);
  });

  it('two parallel requests setting different properties of one session', async () => {
    const app = express();
    app.use(session());
    app.get('/seed', (req, res) => {
      (req as AnyReq).session.base = true;
      res.send('ok');
    });
    app.get('/set/:key', (req, res) => {
      (req as AnyReq).session[req.params.key!] = 1;
      setTimeout(() => res.send('ok'), 50);
    });
    app.get('/keys', (req, res) => void res.json(Object.keys((req as AnyReq).session).filter((k) => k !== 'cookie').sort()));
    const jar = new Jar(NAME);
    jar.take(await request(app).get('/seed'));
    const [a, b] = await Promise.all([request(app).get('/set/a').set('Cookie', jar.header()), request(app).get('/set/b').set('Cookie', jar.header())]);
    const latest = new Jar(NAME).take(a).take(b);
    const keys = (await request(app).get('/keys').set('Cookie', (latest.value ? latest : jar).header())).body;
    // latchkey applies each request's keys; express-session saves whole objects, so the last writer wins.
    expect(keys).toEqual(isLatchkey(label) ? ['a', 'b', 'base'] : expect.arrayContaining(['base']));
    if (!isLatchkey(label)) expect(keys).toHaveLength(2);
  });

  it('regenerate, save, reload and destroy take a callback or return a promise; id === sessionID', async () => {
    const app = express();
    app.use(session());
    app.get('/flow', async (req, res) => {
      const r = req as AnyReq;
      r.session.a = 1;
      await new Promise<void>((resolve, reject) => r.session.save((err: unknown) => (err ? reject(err) : resolve())));
      const before = r.sessionID;
      await new Promise<void>((resolve) => r.session.regenerate(() => resolve()));
      const afterRegenerate = { a: r.session.a ?? null, same: r.session.id === r.sessionID };
      r.session.b = 2;
      res.json({ before: before ?? null, afterRegenerate });
    });
    app.get('/destroy', (req, res) => {
      (req as AnyReq).session.destroy(() => res.json({ session: (req as AnyReq).session ?? null }));
    });
    app.get('/read', (req, res) => void res.json({ a: (req as AnyReq).session.a ?? null, b: (req as AnyReq).session.b ?? null }));
    const jar = new Jar(NAME);
    const flow = await request(app).get('/flow');
    jar.take(flow);
    expect(flow.body.afterRegenerate).toEqual({ a: null, same: true });
    expect((await request(app).get('/read').set('Cookie', jar.header())).body).toEqual({ a: null, b: 2 });
    const destroyed = await request(app).get('/destroy').set('Cookie', jar.header());
    expect(destroyed.body.session).toBeNull();
    jar.take(destroyed);
    expect((await request(app).get('/read').set('Cookie', jar.header())).body).toEqual({ a: null, b: null });
  });

  it('cookie: connect.sid, a browser-session cookie by default, cookie.maxAge in ms, and setting it per session', async () => {
    const app = (extra: object) => {
      const a = express();
      a.use(session(extra));
      a.get('/set', (req, res) => {
        (req as AnyReq).session.n = 1;
        if (req.query.remember) (req as AnyReq).session.cookie.maxAge = 30 * 86_400_000;
        res.json({ originalMaxAge: (req as AnyReq).session.cookie.originalMaxAge, httpOnly: (req as AnyReq).session.cookie.httpOnly });
      });
      return a;
    };
    const plain = await request(app({})).get('/set');
    const c = sessionCookie(plain, NAME)!;
    expect(c.attributes['max-age']).toBeUndefined();
    expect(c.attributes.expires).toBeUndefined();
    expect(plain.body).toEqual({ originalMaxAge: null, httpOnly: true });
    const timed = sessionCookie(await request(app({ cookie: { maxAge: 60_000 } })).get('/set'), NAME)!;
    expect(timed.attributes['max-age'] ?? timed.attributes.expires).toBeDefined();
    const remember = await request(app({})).get('/set?remember=1');
    const r = sessionCookie(remember, NAME)!;
    expect(Number(r.attributes['max-age'] ?? (Date.parse(String(r.attributes.expires)) - Date.now()) / 1000)).toBeGreaterThan(29 * 86_400);
  });
});

describe('latchkey/express-session only', () => {
  it('req.session.id is the record id: it cannot open the session, and stays the same across rotations', async () => {
    const app = express();
    app.use(dropIn({ secret: SECRET }) as RequestHandler);
    app.get('/incr', (req, res) => {
      const s = (req as AnyReq).session;
      s.n = (s.n ?? 0) + 1;
      res.json({ id: s.id ?? null });
    });
    const jar = new Jar(NAME);
    const first = await request(app).get('/incr');
    jar.take(first);
    const second = await request(app).get('/incr').set('Cookie', jar.header());
    const before = jar.value;
    jar.take(second);
    expect(jar.value).not.toBe(before); // rotated
    const ids = [first.body.id, second.body.id];
    expect(ids[0]).toBeNull(); // a new session has no record until it is saved
    expect(typeof ids[1]).toBe('string');
    expect(decodeURIComponent(jar.value!)).toContain(ids[1]);
    const third = await request(app).get('/incr').set('Cookie', jar.header());
    expect(third.body.id).toBe(ids[1]);
    expect((await request(app).get('/incr').set('Cookie', `${NAME}=${ids[1]}`)).body.id).toBeNull();
  });

  it("express-session's options are translated; those with no meaning here and unknown ones are a ConfigError that says what to do", () => {
    expect(() => dropIn({ secret: SECRET, resave: true, saveUninitialized: true, rolling: true, proxy: true, name: 'sid', cookie: { maxAge: 1000, sameSite: true, secure: 'auto' } })).not.toThrow();
    for (const [options, message] of [
      [{ genid: () => 'x' }, /genid.*store/],
      [{ unset: 'destroy' }, /unset.*destroy\(\)/],
      [{ cookie: { expires: new Date() } }, /cookie\.expires.*maxAge/],
      [{ store: { get() {}, set() {}, destroy() {} } }, /express-session store.*RedisStore/],
      [{ resavee: false }, /unknown option resavee/],
      [{ cookie: { maxAge: -1 } }, /cookie\.maxAge/],
    ] as [object, RegExp][]) {
      expect(() => dropIn({ secret: SECRET, ...options } as never)).toThrow(ConfigError);
      expect(() => dropIn({ secret: SECRET, ...options } as never)).toThrow(message);
    }
  });

  it('the API names cannot be assigned; the handle of latchkey/express points here when a property is assigned', async () => {
    const app = express();
    app.use(dropIn({ secret: SECRET }) as RequestHandler);
    app.get('/', (req, res) => {
      const errors: string[] = [];
      for (const name of ['id', 'cookie', 'regenerate', 'save']) {
        try {
          (req as AnyReq).session[name] = 1;
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
      res.json(errors);
    });
    const res = await request(app).get('/');
    expect(res.body).toHaveLength(4);
    expect(res.body[0]).toMatch(/req\.session\.id .*express-session API/);
  });
});
