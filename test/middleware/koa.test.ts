/**
 * Koa-only behaviour: every body type gets the cookie, app.keys as the secret, app.proxy and
 * secure 'auto', errors thrown downstream propagate unchanged, store failures answer 503
 * through Koa's default error handler without leaking a detail.
 */
import { Readable } from 'node:stream';
import Koa from 'koa';
import request from 'supertest';
import { sign } from 'cookie-signature';
import { MemoryStore, SessionError } from 'latchkey';
import { session } from 'latchkey/koa';
import { Jar, sessionCookie } from '../support/cookies';
import { OLD_SECRET, SECRET } from '../support/harness';
import { SpyStore } from '../support/spy-store';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Koa2 = require('koa2') as typeof Koa;

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

  it('missing or short app.keys are a ConfigError', async () => {
    const app = new Lib();
    expect(() => session({}, app)).toThrow(expect.objectContaining({ code: 'LATCHKEY_CONFIG' }));
    app.keys = ['short'];
    expect(() => session({}, app)).toThrow(/32 characters/);
    const lazy = new Lib();
    lazy.silent = true;
    lazy.use(session());
    lazy.use((ctx) => void (ctx.body = 'never'));
    expect((await request(lazy.callback()).get('/')).status).toBe(500);
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
    expect(errors.map((e) => (e as SessionError).code)).toEqual(['LATCHKEY_LOAD', 'LATCHKEY_STORE_TIMEOUT']);
  });
});

describe('examples/koa-app', () => {
  it('logs in, counts, fills a cart and logs out', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createApp } = require('../../examples/koa-app/app') as { createApp: () => Koa };
    const app = createApp().callback();
    const jar = new Jar();
    let res = await request(app).get('/');
    jar.take(res);
    expect(res.text).toContain('<b id="visits">1</b>');
    res = await request(app).get('/').set('Cookie', jar.header());
    jar.take(res);
    expect(res.text).toContain('<b id="visits">2</b>');
    const beforeLogin = jar.header();
    res = await request(app).post('/login').type('form').send({ user: 'grace' }).set('Cookie', jar.header());
    jar.take(res);
    expect(res.status).toBe(302);
    expect(jar.header()).not.toBe(beforeLogin);
    jar.take(await request(app).post('/cart').type('form').send({ item: 'coffee' }).set('Cookie', jar.header()));
    res = await request(app).get('/cart').set('Cookie', jar.header());
    jar.take(res);
    expect(res.text).toContain('Signed in as <b>grace</b>');
    expect(res.text).toContain('<li>coffee</li>');
    expect((await request(app).get('/cart').set('Cookie', beforeLogin)).text).toContain('Not signed in.');
    jar.take(await request(app).post('/logout').set('Cookie', jar.header()));
    expect(jar.value).toBeUndefined();
  });
});
