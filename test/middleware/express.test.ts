/**
 * Express-only behaviour: the commit completes before the first byte of the response
 * leaves, however the handler writes it; secure 'auto' and trust proxy; headers the handler set survive.
 */
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import express5 from 'express';
import request from 'supertest';
import { MemoryStore, type SessionOptions } from 'latchkey';
import { session } from 'latchkey/express';
import { Jar, sessionCookie, setCookies } from '../support/cookies';
import { SECRET } from '../support/harness';
import { expectSavedBeforeFirstByte, getWithFirstByte } from '../support/first-byte';
import { SpyStore } from '../support/spy-store';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as typeof express5;

const dir = mkdtempSync(join(tmpdir(), 'latchkey-'));
const file = join(dir, 'hello.txt');
writeFileSync(file, 'hello from a file');

type Handler = (req: express5.Request, res: express5.Response) => void;

/** The ways a handler can write a response; each sets a session value first. */
const writers: [string, Handler, (res: request.Response) => void][] = [
  ['res.send', (_req, res) => void res.send('sent'), (r) => expect(r.text).toBe('sent')],
  ['res.json', (_req, res) => void res.json({ a: 1 }), (r) => expect(r.body).toEqual({ a: 1 })],
  ['res.end', (_req, res) => void res.end('ended'), (r) => expect(r.text).toBe('ended')],
  ['res.redirect', (_req, res) => res.redirect('/elsewhere'), (r) => expect(r.status).toBe(302)],
  ['res.sendFile', (_req, res) => res.sendFile(file), (r) => expect(r.text).toBe('hello from a file')],
  [
    'writeHead(object) then end',
    (_req, res) => void res.writeHead(201, { 'Content-Type': 'text/plain', 'X-Mine': '1' }).end('made'),
    (r) => expect([r.status, r.text, r.headers['x-mine']]).toEqual([201, 'made', '1']),
  ],
  [
    'writeHead(status, message, object) then end',
    (_req, res) => void res.writeHead(202, 'Fine', { 'X-Mine': '2' }).end('ok'),
    (r) => expect([r.status, r.headers['x-mine']]).toEqual([202, '2']),
  ],
  [
    'writeHead(flat array) then end',
    (_req, res) => void res.writeHead(200, ['X-A', '1', 'X-A', '2', 'Content-Type', 'text/plain']).end('arr'),
    (r) => expect([r.text, r.headers['x-a']]).toEqual(['arr', '1, 2']),
  ],
  [
    'writeHead(array of pairs) then end',
    (_req, res) => void (res.writeHead as (s: number, h: unknown) => express5.Response)(200, [['X-B', 'b'], ['Content-Type', 'text/plain']]).end('pairs'),
    (r) => expect([r.text, r.headers['x-b']]).toEqual(['pairs', 'b']),
  ],
  [
    'writeHead with its own Set-Cookie',
    (_req, res) => void res.writeHead(200, { 'Set-Cookie': 'theirs=1; Path=/' }).end('both'),
    (r) => expect(setCookies(r, 'theirs')).toHaveLength(1),
  ],
  [
    'res.write then end',
    (_req, res) => {
      res.write('part1,');
      res.write('part2');
      res.end();
    },
    (r) => expect(r.text).toBe('part1,part2'),
  ],
  [
    'stream.pipe(res)',
    (_req, res) => void Readable.from(Array.from({ length: 200 }, (_, i) => `chunk${i};`)).pipe(res),
    (r) => expect(r.text.split(';')).toHaveLength(201),
  ],
  ['fs stream pipe', (_req, res) => void createReadStream(file).pipe(res), (r) => expect(r.text).toBe('hello from a file')],
  ['flushHeaders then end', (_req, res) => {
    res.flushHeaders();
    res.end('flushed');
  }, (r) => expect(r.text).toBe('flushed')],
  ['304', (_req, res) => void res.status(304).end(), (r) => expect(r.status).toBe(304)],
];

describe.each([
  ['express 5', express5],
  ['express 4', express4],
])('%s: the commit finishes before the head leaves', (_name, lib) => {
  function build(handler: Handler, options: Partial<SessionOptions> = {}) {
    const spy = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    spy.delayMs = 20;
    let saveDoneAt = 0;
    const save = spy.save.bind(spy);
    spy.save = async (...args) => {
      const key = await save(...args);
      saveDoneAt = Date.now();
      return key;
    };
    const app = lib();
    app.use(session({ secret: SECRET, store: spy, ...options }));
    app.all('/w', (req, res) => {
      req.session.set('written', true);
      handler(req, res);
    });
    app.get('/read', (req, res) => void res.json({ written: req.session.get('written') ?? null }));
    return { app, spy, saveDoneAt: () => saveDoneAt };
  }

  it.each(writers)('%s', async (_label, handler, check) => {
    const { app, spy, saveDoneAt } = build(handler);
    const got = await getWithFirstByte(app, '/w');
    check(got.res);
    await expectSavedBeforeFirstByte(app, got, { methods: () => spy.methods(), saveDoneAt: saveDoneAt() });
  });

  it('HEAD gets the cookie and no body', async () => {
    const { app } = build((_req, res) => void res.send('body'));
    const res = await request(app).head('/w');
    expect(res.status).toBe(200);
    expect(sessionCookie(res)).toBeDefined();
  });

  it("Cache-Control that already says private or no-store is kept; anything else becomes no-store", async () => {
    for (const [given, expected] of [
      ['private, max-age=60', 'private, max-age=60'],
      ['no-store', 'no-store'],
      ['public, max-age=600', 'no-store'],
    ]) {
      const { app } = build((_req, res) => void res.set('Cache-Control', given).send('x'));
      const res = await request(app).get('/w');
      expect(res.headers['cache-control']).toBe(expected);
    }
    const { app } = build((_req, res) => void res.writeHead(200, { 'Cache-Control': 'public' }).end('x'));
    expect((await request(app).get('/w')).headers['cache-control']).toBe('no-store');
  });

  it("secure 'auto' honours trust proxy", async () => {
    const plain = build((_req, res) => void res.send('x'));
    const spoofed = await request(plain.app).get('/w').set('X-Forwarded-Proto', 'https');
    expect(sessionCookie(spoofed)!.attributes.secure).toBeUndefined();
    const trusted = build((_req, res) => void res.send('x'));
    trusted.app.set('trust proxy', true);
    const viaProxy = await request(trusted.app).get('/w').set('X-Forwarded-Proto', 'https');
    expect(sessionCookie(viaProxy)!.attributes.secure).toBe(true);
  });

  it('changes made after the head left are saved under the key the client holds, without rotation', async () => {
    const store = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const app = lib();
    let late: Promise<void> = Promise.resolve();
    app.use(session({ secret: SECRET, store }));
    app.get('/seed', (req, res) => {
      req.session.set('a', 1);
      res.send('ok');
    });
    app.get('/late', (req, res) => {
      res.send('sent first');
      late = new Promise((resolve) => {
        res.on('finish', () => {
          req.session.set('later', 2);
          setTimeout(resolve, 50);
        });
      });
    });
    app.get('/read', (req, res) => void res.json(Object.fromEntries(req.session.entries())));
    const jar = new Jar().take(await request(app).get('/seed'));
    store.reset();
    const res = await request(app).get('/late').set('Cookie', jar.header());
    await late;
    expect(sessionCookie(res)).toBeUndefined();
    expect(store.calls.map((c) => [c.method, c.change !== undefined && c.change.rotateTo !== undefined])).toEqual([
      ['load', false],
      ['update', false],
    ]);
    expect((await request(app).get('/read').set('Cookie', jar.header())).body).toEqual({ a: 1, later: 2 });
  });

  it('a store failure at commit reaches the error path (next(err)) with status 503 and drops the handler body', async () => {
    const spy = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    spy.failWith.save = new Error('ECONNRESET');
    const app = lib();
    const seen: unknown[] = [];
    app.use(session({ secret: SECRET, store: spy }));
    app.get('/w', (req, res) => {
      req.session.set('a', 1);
      res.send('the handler body');
    });
    app.use((err: { status: number; code: string }, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) => {
      seen.push(err);
      res.status(err.status).send(err.code);
    });
    const res = await request(app).get('/w');
    expect(res.status).toBe(503);
    expect(res.text).toBe('LATCHKEY_SAVE');
    expect(sessionCookie(res)).toBeUndefined();
    expect(seen).toHaveLength(1);
    expect((seen[0] as Error & { cause: Error }).cause.message).toBe('ECONNRESET');
  });

  it('with the default error handler a store timeout answers 503 and the process stays up', async () => {
    const spy = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const app = lib();
    app.use(session({ secret: SECRET, store: spy, storeTimeoutMs: 100 }));
    app.get('/w', (req, res) => {
      req.session.set('a', 1);
      res.send('x');
    });
    app.get('/r', (req, res) => void res.send(String(req.session.get('a'))));
    const cookie = sessionCookie(await request(app).get('/w'))!;
    spy.hang.add('load');
    const res = await request(app).get('/r').set('Cookie', `sid=${cookie.value}`);
    expect(res.status).toBe(503);
    expect(sessionCookie(res)).toBeUndefined();
  });

  it('an anonymous request that never touches its session wraps nothing on the response', async () => {
    const app = lib();
    app.use(session({ secret: SECRET }));
    let own: string[] = [];
    app.get('/anon', (_req, res) => {
      own = ['writeHead', 'write', 'end'].filter((m) => Object.prototype.hasOwnProperty.call(res, m));
      res.send('x');
    });
    await request(app).get('/anon');
    expect(own).toEqual([]);
  });
});

test('invalid options fail at startup with a ConfigError', () => {
  const bad: Partial<SessionOptions>[] = [
    { secret: 'short' },
    { secret: undefined },
    { secret: [SECRET, 'short'] },
    { name: '__Host-sid' },
    { name: '__Host-sid', cookie: { secure: true, path: '/app' } },
    { name: '__Host-sid', cookie: { secure: true, domain: 'example.com' } },
    { name: '__Secure-sid', cookie: { secure: 'auto' } },
    { cookie: { path: '/;samesite=none' } },
    { cookie: { domain: 'a\r\nX-Injected: 1' } },
    { name: 'si;d' },
    { name: '__proto__' },
    { cookie: { sameSite: 'none', secure: false } },
    { ttl: -1 },
    { ttl: 401 * 86_400 },
    { storeTimeoutMs: 0 },
    { rotationGraceMs: -5 },
    { ttlExtension: 'always' as never },
  ];
  for (const options of bad) {
    expect(() => session({ secret: SECRET, ...options })).toThrow(expect.objectContaining({ code: 'LATCHKEY_CONFIG' }));
  }
});

describe('mistakes are reported as what they are', () => {
  it('app.use(session) without calling it: every request says to call session({ … })', async () => {
    const app = express5();
    app.use(session as unknown as express5.RequestHandler);
    app.get('/', (_req, res) => void res.send('never'));
    let seen: unknown;
    app.use(((err, _req, res, _next) => {
      seen = err;
      res.status(500).end();
    }) as express5.ErrorRequestHandler);
    await request(app).get('/');
    expect(String((seen as Error).message)).toMatch(/call it, app\.use\(session\(\{ secret, … \}\)\), not app\.use\(session\)/);
  });

  it('options that are not latchkey\'s (resave, cookie.maxAge, a typo) are a ConfigError naming them, with what to do', () => {
    expect(() => session({ secret: SECRET, resave: false } as never)).toThrow(/unknown option resave: .*latchkey\/express-session/);
    expect(() => session({ secret: SECRET, cookie: { maxAge: 1000 } } as never)).toThrow(/unknown option cookie\.maxAge: the lifetime is the ttl option, in seconds/);
    expect(() => session({ secret: SECRET, ttlExtention: 'sliding' } as never)).toThrow(/unknown option ttlExtention/);
  });

  it('a short secret says how long it must be and how to make one', () => {
    expect(() => session({ secret: 'short' })).toThrow(/at least 32 characters \(one has 5\); make one with: node -e/);
  });
});
