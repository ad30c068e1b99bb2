/**
 * Fastify-only behaviour, on Fastify 5 and Fastify 4: the commit completes before the first byte
 * of the response leaves, however the handler replies; streams and hijacked replies keep what
 * they change after the head (under the key the client holds); secure 'auto' and trustProxy;
 * store failures reach setErrorHandler (and Fastify's default handler) with 503; the plugin is not
 * encapsulated; unknown options fail at register; the typed `request.session`. (The shared
 * scenario table runs on Fastify 5 and 4 through test/support/harness.ts.)
 */
import { createReadStream, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import request from 'supertest';
import { ConfigError, MemoryStore, type Session, type SessionOptions } from 'latchkey';
import { session } from 'latchkey/fastify';
import defaultSession from 'latchkey/fastify';
import { Jar, sessionCookie, setCookies } from '../support/cookies';
import { childServer } from '../support/child-server';
import { fastifyListener, SECRET } from '../support/harness';
import { expectSavedBeforeFirstByte, getWithFirstByte } from '../support/first-byte';
import { SpyStore } from '../support/spy-store';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Fastify4 = require('fastify4') as typeof Fastify;

declare module 'latchkey' {
  interface SessionData {
    fastifyVisits: number;
  }
}

// Type-level: compiled by `npm run typecheck`. request.session is latchkey's Session, typed by the
// augmented SessionData, in a route and in a hook; options are checked at register.
function typedRequests(): void {
  const app = Fastify();
  void app.register(session, { secret: SECRET });
  app.get('/', async (request) => {
    const visits: number | undefined = request.session.get('fastifyVisits');
    request.session.set('fastifyVisits', (visits ?? 0) + 1);
    // @ts-expect-error a string is not fastifyVisits' type
    request.session.set('fastifyVisits', 'one');
    const s: Session = request.session;
    return s.status;
  });
  app.addHook('preHandler', async (request: FastifyRequest) => {
    // @ts-expect-error get() of a declared key is number | undefined, not string
    const wrong: string | undefined = request.session.get('fastifyVisits');
    void wrong;
  });
  // @ts-expect-error an option latchkey does not have (express-session's) is a type error too
  void app.register(session, { secret: SECRET, resave: false });
}

test('request.session is typed (see npm run typecheck)', () => {
  expect(typeof typedRequests).toBe('function');
});

// The built package with @fastify/cookie (Fastify 5 only), in a child process: jest cannot load
// @fastify/cookie (test/support/child-server.ts says why). npm test builds dist/ first.
const COOKIE_APP = `
const app = require('fastify')();
app.register(require('@fastify/cookie'));
app.register(require('latchkey/fastify').session, { secret: ${JSON.stringify(SECRET)} });
app.get('/w', async (req, reply) => {
  req.session.set('a', 1);
  return reply.setCookie('theirs', 'v', { path: '/' }).send('x');
});
app.listen({ port: 0, host: '127.0.0.1' }).then(() => console.log('listening ' + app.server.address().port));
process.on('SIGTERM', () => process.exit(0));`;

test('cookies set through @fastify/cookie (reply.setCookie) and ours both go out', async () => {
  if (!existsSync(join(__dirname, '..', '..', 'dist', 'middleware', 'fastify.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  const child = await childServer(['-e', COOKIE_APP]);
  try {
    const res = await request(child.url).get('/w');
    expect(setCookies(res, 'theirs')).toHaveLength(1);
    expect(sessionCookie(res)).toBeDefined();
  } finally {
    await child.stop();
  }
});

const dir = mkdtempSync(join(tmpdir(), 'latchkey-fastify-'));
const file = join(dir, 'hello.txt');
writeFileSync(file, 'hello from a file');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Handler = (request: FastifyRequest, reply: FastifyReply) => unknown;

/** The ways a handler can reply; the route sets a session value first. */
const writers: [string, Handler, (res: request.Response) => void][] = [
  ['reply.send(string)', (_q, reply) => reply.send('sent'), (r) => expect(r.text).toBe('sent')],
  ['return a string', async () => 'returned', (r) => expect(r.text).toBe('returned')],
  ['reply.send(object)', (_q, reply) => reply.send({ a: 1 }), (r) => expect(r.body).toEqual({ a: 1 })],
  ['return an object', async () => ({ b: 2 }), (r) => expect(r.body).toEqual({ b: 2 })],
  ['reply.send(Buffer)', (_q, reply) => reply.type('text/plain').send(Buffer.from('buf')), (r) => expect(r.text).toBe('buf')],
  [
    'reply.send(stream)',
    (_q, reply) => reply.type('text/plain').send(Readable.from(Array.from({ length: 200 }, (_, i) => `chunk${i};`))),
    (r) => expect(r.text.split(';')).toHaveLength(201),
  ],
  ['reply.send(fs stream)', (_q, reply) => reply.type('text/plain').send(createReadStream(file)), (r) => expect(r.text).toBe('hello from a file')],
  ['reply.redirect', (_q, reply) => reply.redirect('/elsewhere'), (r) => expect([r.status, r.headers.location]).toEqual([302, '/elsewhere'])],
  ['reply.code(304).send()', (_q, reply) => reply.code(304).send(), (r) => expect(r.status).toBe(304)],
  ['reply.code(204).send()', (_q, reply) => reply.code(204).send(), (r) => expect(r.status).toBe(204)],
  [
    'reply.code(201).headers({…}).send',
    (_q, reply) => reply.code(201).headers({ 'x-mine': '1', 'content-type': 'text/plain' }).send('made'),
    (r) => expect([r.status, r.text, r.headers['x-mine']]).toEqual([201, 'made', '1']),
  ],
  [
    'a Set-Cookie of its own (reply.header)',
    (_q, reply) => reply.header('set-cookie', 'theirs=1; Path=/').send('both'),
    (r) => expect(setCookies(r, 'theirs')).toHaveLength(1),
  ],
  [
    'a 4xx thrown and answered by setErrorHandler',
    () => {
      throw Object.assign(new Error('bad input'), { statusCode: 400 });
    },
    (r) => expect([r.status, r.text]).toEqual([400, 'handled: bad input']),
  ],
];

describe.each([
  ['fastify 5', Fastify],
  ['fastify 4', Fastify4],
])('%s', (_name, lib) => {
  /** An app on `lib` with latchkey and `routes`, as a request listener. */
  function listen(options: Partial<SessionOptions>, routes: (app: FastifyInstance) => void, fastifyOptions: object = {}) {
    const app = lib(fastifyOptions);
    app.register(session, { secret: SECRET, ...options });
    routes(app);
    return fastifyListener(app);
  }

  describe('the commit finishes before the head leaves', () => {
    function build(handler: Handler) {
      const spy = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
      spy.delayMs = 20;
      let saveDoneAt = 0;
      const save = spy.save.bind(spy);
      spy.save = async (...args) => {
        const key = await save(...args);
        saveDoneAt = Date.now();
        return key;
      };
      const app = listen({ store: spy }, (a) => {
        a.setErrorHandler((err: Error, _q, reply) => reply.code(400).type('text/plain').send(`handled: ${err.message}`));
        a.get('/w', async (req, reply) => {
          req.session.set('written', true);
          return handler(req, reply);
        });
        a.get('/read', async (req) => ({ written: req.session.get('written') ?? null }));
      });
      return { app, spy, saveDoneAt: () => saveDoneAt };
    }

    it.each(writers)('%s', async (_label, handler, check) => {
      const { app, spy, saveDoneAt } = build(handler);
      const got = await getWithFirstByte(app, '/w');
      check(got.res);
      expect(got.res.headers['cache-control']).toBe('no-store');
      await expectSavedBeforeFirstByte(app, got, { methods: () => spy.methods(), saveDoneAt: saveDoneAt() });
    });

    it('HEAD (the route Fastify exposes for a GET) gets the cookie and no body', async () => {
      const { app, spy } = build((_q, reply) => reply.send('body'));
      const res = await request(app).head('/w');
      expect(res.status).toBe(200);
      expect(res.text).toBeUndefined();
      expect(sessionCookie(res)).toBeDefined();
      expect(spy.methods()).toEqual(['save']);
    });
  });

  it("Cache-Control that already says private or no-store is kept; anything else becomes no-store", async () => {
    for (const [given, expected] of [
      ['private, max-age=60', 'private, max-age=60'],
      ['no-store', 'no-store'],
      ['public, max-age=600', 'no-store'],
    ]) {
      const app = listen({}, (a) =>
        a.get('/w', async (req, reply) => {
          req.session.set('a', 1);
          return reply.header('cache-control', given).send('x');
        }),
      );
      expect((await request(app).get('/w')).headers['cache-control']).toBe(expected);
    }
  });

  it("secure 'auto' follows trustProxy", async () => {
    const routes = (a: FastifyInstance) =>
      a.get('/w', async (req) => {
        req.session.set('a', 1);
        return 'x';
      });
    const spoofed = await request(listen({}, routes)).get('/w').set('X-Forwarded-Proto', 'https');
    expect(sessionCookie(spoofed)!.attributes.secure).toBeUndefined();
    const viaProxy = await request(listen({}, routes, { trustProxy: true })).get('/w').set('X-Forwarded-Proto', 'https');
    expect(sessionCookie(viaProxy)!.attributes.secure).toBe(true);
  });

  it('an anonymous request that never touches its session: no store call, no Set-Cookie, no Cache-Control', async () => {
    const spy = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const app = listen({ store: spy }, (a) => a.get('/anon', async () => 'x'));
    const res = await request(app).get('/anon');
    expect([res.status, res.text]).toEqual([200, 'x']);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['cache-control']).toBeUndefined();
    expect(spy.count()).toBe(0);
  });

  describe('changes after the head left are saved under the key the client holds, without rotation', () => {
    /** An app with /seed and /read beside `routes`, on a spied store without rotation grace (a rotated-out key would die at once). */
    function withSeed(routes: (a: FastifyInstance) => void) {
      const store = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
      const app = listen({ store, rotationGraceMs: 0 }, (a) => {
        a.get('/seed', async (req) => {
          req.session.set('a', 1);
          return 'ok';
        });
        a.get('/read', async (req) => Object.fromEntries(req.session.entries()));
        routes(a);
      });
      return { app, store };
    }

    /** Resolves once the store has settled `n` more updates; rejects after 2 s. */
    function updates(store: SpyStore, n: number): Promise<void> {
      const update = store.update.bind(store);
      let left = n;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${left} store update(s) missing after 2 s`)), 2000);
        store.update = async (...args) => {
          try {
            return await update(...args);
          } finally {
            if (--left === 0) {
              store.update = update;
              clearTimeout(timer);
              resolve();
            }
          }
        };
      });
    }

    it('reply.send(stream): a change while it streams and one after it ended', async () => {
      const { app, store } = withSeed((a) =>
        a.get('/stream', (req, reply) => {
          const s = req.session;
          async function* body() {
            yield 'first,';
            await sleep(20);
            s.set('during', 2);
            yield 'second';
          }
          reply.raw.on('finish', () => s.set('after', 3));
          return reply.type('text/plain').send(Readable.from(body()));
        }),
      );
      const jar = new Jar().take(await request(app).get('/seed'));
      store.reset();
      const done = updates(store, 2);
      const res = await request(app).get('/stream').set('Cookie', jar.header());
      expect(res.text).toBe('first,second');
      expect(sessionCookie(res)).toBeUndefined();
      await done;
      expect(store.methods()).toEqual(['load', 'update', 'update']);
      expect(store.calls.filter((c) => c.method === 'update').map((c) => c.change!.rotateTo)).toEqual([undefined, undefined]);
      expect((await request(app).get('/read').set('Cookie', jar.header())).body).toEqual({ a: 1, during: 2, after: 3 });
    });

    it('reply.hijack(): a change before the raw write and one after it', async () => {
      const { app, store } = withSeed((a) =>
        a.get('/hijack', (req, reply) => {
          reply.hijack();
          req.session.set('before', 'b');
          reply.raw.writeHead(200, { 'content-type': 'text/plain' });
          reply.raw.end('raw body', () => setTimeout(() => req.session.set('later', 'l'), 10));
        }),
      );
      const jar = new Jar().take(await request(app).get('/seed'));
      store.reset();
      const done = updates(store, 2);
      const res = await request(app).get('/hijack').set('Cookie', jar.header());
      expect(res.text).toBe('raw body');
      expect(sessionCookie(res)).toBeUndefined();
      await done;
      expect(store.calls.filter((c) => c.method === 'update').map((c) => c.change!.rotateTo)).toEqual([undefined, undefined]);
      expect((await request(app).get('/read').set('Cookie', jar.header())).body).toEqual({ a: 1, before: 'b', later: 'l' });
    });
  });

  describe('store failures reach the error handler with status 503, no Set-Cookie', () => {
    it('setErrorHandler gets the error (statusCode 503) and answers; the handler body is dropped', async () => {
      const spy = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
      spy.failWith.save = new Error('ECONNRESET');
      const seen: unknown[] = [];
      const app = listen({ store: spy }, (a) => {
        a.setErrorHandler((err: Error & { statusCode: number; code: string }, _q, reply) => {
          seen.push(err);
          return reply.code(err.statusCode).type('text/plain').send(err.code);
        });
        a.get('/w', async (req, reply) => {
          req.session.set('a', 1);
          return reply.send('the handler body');
        });
      });
      const res = await request(app).get('/w');
      expect(res.status).toBe(503);
      expect(res.text).toBe('LATCHKEY_SAVE');
      expect(sessionCookie(res)).toBeUndefined();
      expect(seen).toHaveLength(1);
      expect((seen[0] as Error & { cause: Error }).cause.message).toBe('ECONNRESET');
    });

    it("Fastify's default error handler answers 503 for a load that fails and a commit that times out", async () => {
      const spy = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
      const app = listen({ store: spy, storeTimeoutMs: 100 }, (a) =>
        a.get('/w', async (req) => {
          req.session.set('b', (req.session.get('b') as number | undefined) ?? 0 + 1);
          return 'x';
        }),
      );
      const jar = new Jar().take(await request(app).get('/w'));
      spy.failWith.load = new Error('ECONNREFUSED 10.0.0.1:6379');
      const loadFail = await request(app).get('/w').set('Cookie', jar.header());
      expect(loadFail.status).toBe(503);
      expect(loadFail.body).toMatchObject({ statusCode: 503, code: 'LATCHKEY_LOAD' });
      expect(sessionCookie(loadFail)).toBeUndefined();
      delete spy.failWith.load;
      spy.hang.add('save');
      const commitTimeout = await request(app).get('/w');
      expect(commitTimeout.status).toBe(503);
      expect(commitTimeout.body).toMatchObject({ statusCode: 503, code: 'LATCHKEY_STORE_TIMEOUT' });
      expect(sessionCookie(commitTimeout)).toBeUndefined();
    });
  });

  describe('registration', () => {
    it('is not encapsulated: routes in child plugins (with a prefix) see request.session', async () => {
      const app = lib();
      app.register(session, { secret: SECRET });
      app.register(
        async (child) => {
          child.get('/set', async (req) => {
            req.session.set('from', 'child');
            return 'ok';
          });
          child.register(async (grandchild) => grandchild.get('/get', async (req) => ({ from: req.session.get('from') ?? null })));
        },
        { prefix: '/p' },
      );
      const listener = fastifyListener(app);
      const jar = new Jar().take(await request(listener).get('/p/set'));
      expect(jar.value).toBeDefined();
      expect((await request(listener).get('/p/get').set('Cookie', jar.header())).body).toEqual({ from: 'child' });
      expect(app.hasRequestDecorator('session')).toBe(true);
      expect(app.hasPlugin('latchkey')).toBe(true);
    });

    it('the default export is the same plugin', () => {
      expect(defaultSession).toBe(session);
    });

    it('an unknown option is a ConfigError naming it, when the plugin is registered', async () => {
      const app = lib();
      await expect(app.register(session, { secret: SECRET, saveUninitialized: false } as SessionOptions)).rejects.toMatchObject({
        code: 'LATCHKEY_CONFIG',
        option: 'saveUninitialized',
      });
      const later = lib();
      later.register(session, { secret: SECRET, cookieName: 'sid' } as SessionOptions);
      await expect(later.ready()).rejects.toBeInstanceOf(ConfigError);
    });

    it('invalid options are a ConfigError at register', async () => {
      const bad: Partial<SessionOptions>[] = [
        { secret: 'short' },
        { secret: undefined },
        { name: '__Host-sid' },
        { cookie: { sameSite: 'none', secure: false } },
        { ttl: -1 },
        { storeTimeoutMs: 0 },
      ];
      for (const options of bad) {
        await expect(lib().register(session, { secret: SECRET, ...options })).rejects.toMatchObject({ code: 'LATCHKEY_CONFIG' });
      }
      await expect(lib().register(session).ready()).rejects.toThrow(/a secret is required/);
    });

    it('registered twice it fails at ready (one request.session), rather than running two sessions', async () => {
      const app = lib();
      app.register(session, { secret: SECRET });
      app.register(session, { secret: SECRET });
      await expect(app.ready()).rejects.toThrow(/session/);
    });

    it('the handle stays the handle: no enumerable extras, no passport shim without @fastify/passport, assignment still throws', async () => {
      const app = listen({}, (a) =>
        a.get('/', async (req) => {
          let threw = '';
          try {
            (req.session as unknown as Record<string, unknown>).visits = 1;
          } catch (err) {
            threw = (err as Error).constructor.name;
          }
          const shim = typeof (req.session as unknown as Record<string, unknown>).regenerate;
          return { keys: Object.keys(req.session), threw, shim };
        }),
      );
      // regenerate()/data() exist only where @fastify/passport is registered (test/compat/fastify-passport.test.ts).
      expect((await request(app).get('/')).body).toEqual({ keys: [], threw: 'TypeError', shim: 'undefined' });
    });
  });
});
