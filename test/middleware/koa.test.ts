/**
 * Koa-only behaviour: every body type gets the cookie, app.keys as the secret, app.proxy and
 * secure 'auto', errors thrown downstream propagate unchanged, store failures answer 503
 * through Koa's default error handler without leaking a detail, late changes, the typed
 * `ctx.session`, and the Koa example walked end to end. (The shared scenario table runs on
 * Koa 3 and Koa 2 through test/support/harness.ts.)
 */
import { Readable } from 'node:stream';
import Koa from 'koa';
import request from 'supertest';
import { sign } from 'cookie-signature';
import { ConfigError, MemoryStore, type Session, SessionError } from 'latchkey';
import { session } from 'latchkey/koa';
import { Jar, sessionCookie } from '../support/cookies';
import { OLD_SECRET, SECRET } from '../support/harness';
import { SpyStore } from '../support/spy-store';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Koa2 = require('koa2') as typeof Koa;

declare module 'latchkey' {
  interface SessionData {
    koaVisits: number;
  }
}

// Type-level: compiled by `npm run typecheck`. ctx.session is latchkey's Session, typed by the
// augmented SessionData, on a plain app, on an app with its own state and context types, and in
// a middleware typed through Koa.Context.
function typedContexts(): void {
  const plain = new Koa();
  plain.use(session({ secret: SECRET }));
  plain.use((ctx) => {
    const visits: number | undefined = ctx.session.get('koaVisits');
    ctx.session.set('koaVisits', (visits ?? 0) + 1);
    // @ts-expect-error a string is not koaVisits' type
    ctx.session.set('koaVisits', 'one');
    const s: Session = ctx.session;
    void s;
  });
  const custom = new Koa<{ user?: string }, { requestId: string }>();
  custom.use(session({ secret: SECRET }));
  custom.use((ctx) => {
    const visits: number | undefined = ctx.session.get('koaVisits');
    // @ts-expect-error a string is not koaVisits' type
    ctx.session.set('koaVisits', 'one');
    void [visits, ctx.requestId];
  });
  const viaContext = (ctx: Koa.Context): number | undefined => ctx.session.get('koaVisits');
  void viaContext;
}

/** Resolves after the store's next update() has settled; rejects after 2 s. */
function nextUpdate(store: SpyStore): Promise<void> {
  const update = store.update.bind(store);
  let timer: NodeJS.Timeout | undefined;
  const updated = new Promise<void>((resolve) => {
    store.update = async (...args) => {
      try {
        return await update(...args);
      } finally {
        store.update = update;
        resolve();
      }
    };
  });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no store update within 2 s')), 2000);
  });
  return Promise.race([updated, timeout]).finally(() => clearTimeout(timer));
}

test('ctx.session is typed (see npm run typecheck)', () => {
  expect(typeof typedContexts).toBe('function');
});

describe.each([
  ['koa 3', Koa],
  ['koa 2', Koa2],
])('%s', (_name, Lib) => {
  function build(body: (ctx: Koa.Context) => void | Promise<void>, store = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }))) {
    const app = new Lib();
    app.use(session({ secret: SECRET, store }));
    app.use(async (ctx) => {
      if (ctx.path === '/read') {
        ctx.body = { v: ctx.session.get('v') ?? null };
        return;
      }
      ctx.session.set('v', ctx.path);
      await body(ctx);
    });
    return { app: app.callback(), store };
  }

  it.each<[string, (ctx: Koa.Context) => void, (res: request.Response) => void]>([
    ['string', (ctx) => void (ctx.body = 'text'), (r) => expect(r.text).toBe('text')],
    ['Buffer', (ctx) => void (ctx.body = Buffer.from('buf')), (r) => expect(r.body.toString()).toBe('buf')],
    ['JSON', (ctx) => void (ctx.body = { a: 1 }), (r) => expect(r.body).toEqual({ a: 1 })],
    ['stream', (ctx) => { ctx.type = 'text'; ctx.body = Readable.from(['s1,', 's2']); }, (r) => expect(r.text).toBe('s1,s2')],
    ['empty (204)', (ctx) => void (ctx.status = 204), (r) => expect(r.status).toBe(204)],
    ['redirect', (ctx) => ctx.redirect('/elsewhere'), (r) => expect(r.status).toBe(302)],
    ['no body (404)', () => undefined, (r) => expect(r.status).toBe(404)],
  ])('a %s body gets the Set-Cookie and the next request sees the value', async (_kind, body, check) => {
    const { app } = build(body);
    const res = await request(app).get('/w').buffer(true);
    check(res);
    const c = sessionCookie(res)!;
    expect(c).toBeDefined();
    expect(res.headers['cache-control']).toBe('no-store');
    expect((await request(app).get('/read').set('Cookie', `sid=${c.value}`)).body).toEqual({ v: '/w' });
  });

  it('HEAD gets the cookie', async () => {
    const { app } = build((ctx) => void (ctx.body = 'x'));
    const res = await request(app).head('/w');
    expect(res.status).toBe(200);
    expect(sessionCookie(res)).toBeDefined();
  });

  it('Cache-Control that already says private is kept', async () => {
    const { app } = build((ctx) => {
      ctx.set('Cache-Control', 'private, max-age=5');
      ctx.body = 'x';
    });
    expect((await request(app).get('/w')).headers['cache-control']).toBe('private, max-age=5');
  });

  it('secret defaults to app.keys, and rotating app.keys re-signs an old cookie with the new key', async () => {
    const before = new Lib();
    before.keys = [OLD_SECRET];
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    before.use(session({ store }, before));
    before.use((ctx) => {
      ctx.session.set('u', 1);
      ctx.body = 'ok';
    });
    const old = sessionCookie(await request(before.callback()).get('/'))!;
    const key = old.value.slice(0, old.value.lastIndexOf('.'));
    expect(old.value).toBe(sign(key, OLD_SECRET));

    const after = new Lib();
    after.keys = [SECRET, OLD_SECRET];
    after.use(session({ store })); // no app given: keys read on the first request
    after.use((ctx) => void (ctx.body = { u: ctx.session.get('u') ?? null }));
    const res = await request(after.callback()).get('/').set('Cookie', `sid=${old.value}`);
    expect(res.body).toEqual({ u: 1 });
    expect(sessionCookie(res)!.value).toBe(sign(key, SECRET));
  });

  it('missing, short or non-string app.keys are a ConfigError, at startup with the app, else on each request', async () => {
    const app = new Lib();
    expect(() => session({}, app)).toThrow(ConfigError);
    expect(() => session({}, app)).toThrow(/needs a secret: pass session\(\{ secret \}\) or set app.keys/);
    app.keys = [];
    expect(() => session({}, app)).toThrow(/needs a secret/);
    app.keys = [SECRET, 'short'];
    expect(() => session({}, app)).toThrow(/^app\.keys, used as the session secret: .*at least 32 characters/);
    (app as { keys: unknown }).keys = { sign: () => '', verify: () => true, index: () => 0 };
    expect(() => session({}, app)).toThrow(/Keygrip/);
    // A secret given wins over app.keys, which is then never read.
    expect(() => session({ secret: SECRET }, app)).not.toThrow();

    const lazy = new Lib();
    const errors: unknown[] = [];
    lazy.on('error', (err) => errors.push(err));
    lazy.use(session());
    lazy.use((ctx) => void (ctx.body = 'never'));
    const res = await request(lazy.callback()).get('/');
    expect(res.status).toBe(500);
    expect(res.text).toBe('Internal Server Error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ConfigError);
    expect((errors[0] as ConfigError).message).toMatch(/app.keys/);
    // Keys set after a failed first request are picked up: the engine is only kept once built.
    lazy.keys = [SECRET];
    expect((await request(lazy.callback()).get('/')).text).toBe('never');
  });

  it("secure 'auto' follows app.proxy", async () => {
    const plain = new Lib();
    plain.use(session({ secret: SECRET }));
    plain.use((ctx) => {
      ctx.session.set('a', 1);
      ctx.body = 'x';
    });
    const spoofed = await request(plain.callback()).get('/').set('X-Forwarded-Proto', 'https');
    expect(sessionCookie(spoofed)!.attributes.secure).toBeUndefined();
    plain.proxy = true;
    const viaProxy = await request(plain.callback()).get('/').set('X-Forwarded-Proto', 'https');
    expect(sessionCookie(viaProxy)!.attributes.secure).toBe(true);
  });

  it('an error thrown downstream reaches the upstream catch unchanged, and nothing is committed', async () => {
    const store = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const thrown = new Error('downstream');
    let caught: unknown;
    const app = new Lib();
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        caught = err;
        ctx.status = 418;
        ctx.body = 'caught';
      }
    });
    app.use(session({ secret: SECRET, store }));
    app.use((ctx) => {
      ctx.session.set('a', 1);
      throw thrown;
    });
    const res = await request(app.callback()).get('/');
    expect(caught).toBe(thrown);
    expect(res.status).toBe(418);
    expect(sessionCookie(res)).toBeUndefined();
    expect(store.count()).toBe(0);
  });

  it("a store failure answers 503 through Koa's default handler, without details", async () => {
    const store = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const { app } = build((ctx) => void (ctx.body = 'x'), store);
    const jar = new Jar().take(await request(app).get('/w'));
    const errors: unknown[] = [];
    const koa = new Lib();
    koa.on('error', (err) => errors.push(err));
    koa.use(session({ secret: SECRET, store, storeTimeoutMs: 100 }));
    koa.use((ctx) => {
      ctx.session.set('b', 1);
      ctx.body = 'x';
    });
    store.failWith.load = new Error('ECONNREFUSED 10.0.0.1:6379');
    const loadFail = await request(koa.callback()).get('/').set('Cookie', jar.header());
    expect(loadFail.status).toBe(503);
    expect(loadFail.text).toBe('Service Unavailable');
    expect(sessionCookie(loadFail)).toBeUndefined();
    delete store.failWith.load;
    store.hang.add('update');
    const commitTimeout = await request(koa.callback()).get('/').set('Cookie', jar.header());
    expect(commitTimeout.status).toBe(503);
    expect(commitTimeout.text).toBe('Service Unavailable');
    // The rotating write was given up on: the 503 carries the cookie that opens the session either way
    // (the next key and the presented one), through Koa's default handler (err.headers).
    const carried = sessionCookie(commitTimeout)!;
    expect(carried.value).toContain('~');
    expect(commitTimeout.headers['cache-control']).toBe('no-store');
    expect(errors.map((e) => (e as SessionError).code)).toEqual(['LATCHKEY_LOAD', 'LATCHKEY_STORE_TIMEOUT']);
    store.hang.clear();
    const reader = new Lib();
    reader.use(session({ secret: SECRET, store }));
    reader.use((ctx) => void (ctx.body = { isNew: ctx.session.isNew }));
    expect((await request(reader.callback()).get('/').set('Cookie', `sid=${carried.value}`)).body).toEqual({ isNew: false });
  });

  it('a handler that writes the response itself (ctx.respond = false): its change is saved under the key the client holds', async () => {
    const store = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const { app } = build((ctx) => void (ctx.body = 'x'), store);
    const jar = new Jar().take(await request(app).get('/w'));
    const koa = new Lib();
    // No grace: a rotated-out key would be dead at once, so the old cookie working shows no rotation.
    koa.use(session({ secret: SECRET, store, rotationGraceMs: 0 }));
    koa.use((ctx) => {
      ctx.session.set('raw', 'kept');
      ctx.respond = false;
      ctx.res.statusCode = 200;
      ctx.res.end('raw body');
    });
    store.reset();
    const updated = nextUpdate(store);
    const res = await request(koa.callback()).get('/').set('Cookie', jar.header());
    expect(res.text).toBe('raw body');
    expect(sessionCookie(res)).toBeUndefined();
    await updated;
    expect(store.calls.filter((c) => c.method === 'update').map((c) => c.change?.rotateTo)).toEqual([undefined]);
    const reader = new Lib();
    reader.use(session({ secret: SECRET, store }));
    reader.use((ctx) => void (ctx.body = { raw: ctx.session.get('raw') ?? null }));
    expect((await request(reader.callback()).get('/').set('Cookie', jar.header())).body).toEqual({ raw: 'kept' });
  });

  it('a change made after the response (un-awaited work) is saved under the key the client holds', async () => {
    const store = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const { app } = build((ctx) => void (ctx.body = 'x'), store);
    const jar = new Jar().take(await request(app).get('/w'));
    const koa = new Lib();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    koa.use(session({ secret: SECRET, store }));
    koa.use((ctx) => {
      const s = ctx.session;
      void gate.then(() => s.set('late', 'kept'));
      ctx.body = 'sent before the change';
    });
    const res = await request(koa.callback()).get('/').set('Cookie', jar.header());
    expect(res.text).toBe('sent before the change');
    expect(sessionCookie(res)).toBeUndefined();
    store.reset();
    const updated = nextUpdate(store);
    release();
    await updated;
    expect(store.methods()).toEqual(['update']);
    expect(store.calls[0]!.change!.rotateTo).toBeUndefined();
    const reader = new Lib();
    reader.use(session({ secret: SECRET, store }));
    reader.use((ctx) => void (ctx.body = { late: ctx.session.get('late') ?? null }));
    expect((await request(reader.callback()).get('/').set('Cookie', jar.header())).body).toEqual({ late: 'kept' });
  });
});

describe('mistakes are reported as what they are', () => {
  it('app.use(session) without calling it: the request fails saying to call session({ … }), keys set or not', async () => {
    for (const Lib of [Koa, Koa2]) {
      const app = new Lib();
      app.keys = [SECRET];
      const errors: Error[] = [];
      app.on('error', (err: Error) => errors.push(err));
      app.use(session as unknown as Koa.Middleware);
      await request(app.callback()).get('/');
      expect(errors[0]?.message).toMatch(/call it, app\.use\(session\(\{ secret, … \}\)\), not app\.use\(session\)/);
    }
  });
});
