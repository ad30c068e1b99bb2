/**
 * A Redis that dies, hangs and comes back, under a running app: requests fail fast with 503
 * (within storeTimeoutMs + 1 s), the process stays up, and recovery needs no restart of the app.
 * Each block has its own throwaway redis-server on a free port, controlled by pid.
 */
import Redis, { type RedisOptions } from 'ioredis';
import request from 'supertest';
import type { RequestListener } from 'node:http';
import type { SessionEvent } from 'latchkey';
import { RedisStore } from 'latchkey/redis';
import { sessionCookie } from '../support/cookies';
import { express5Framework, type Framework, koa3Framework, SECRET } from '../support/harness';
import { RedisProcess } from '../support/redis-server';

const STORE_TIMEOUT = 800;

interface Setup {
  label: string;
  fw: Framework;
  options: RedisOptions;
  /** The code of the 503 while Redis is paused: whichever bound fires first. */
  pausedCode: string;
}

const RECOMMENDED: RedisOptions = {
  commandTimeout: 400,
  maxRetriesPerRequest: 1,
  // Above the pause the tests make, so a paused Redis is met by commandTimeout as in the README.
  socketTimeout: 3000,
  retryStrategy: (times) => Math.min(times * 100, 1000),
};

const setups: Setup[] = [
  {
    // The earlier README pair: ioredis gives up before the engine's deadline.
    label: 'commandTimeout < storeTimeoutMs, maxRetriesPerRequest 1',
    fw: express5Framework,
    options: { commandTimeout: 400, maxRetriesPerRequest: 1 },
    pausedCode: 'LATCHKEY_LOAD',
  },
  {
    // The engine's deadline alone bounds the wait; commands fail at once while disconnected.
    label: 'commandTimeout > storeTimeoutMs, enableOfflineQueue false',
    fw: express5Framework,
    options: { commandTimeout: 5000, maxRetriesPerRequest: 1, enableOfflineQueue: false },
    pausedCode: 'LATCHKEY_STORE_TIMEOUT',
  },
  {
    label: 'commandTimeout < storeTimeoutMs, maxRetriesPerRequest 1',
    fw: koa3Framework,
    options: { commandTimeout: 400, maxRetriesPerRequest: 1 },
    pausedCode: 'LATCHKEY_LOAD',
  },
  // The README's recommended options, scaled to this file's deadline (README: 1000/2000 under 2000).
  { label: 'recommended options', fw: express5Framework, options: RECOMMENDED, pausedCode: 'LATCHKEY_LOAD' },
  { label: 'recommended options', fw: koa3Framework, options: RECOMMENDED, pausedCode: 'LATCHKEY_LOAD' },
];

/** Polls (at most 10 s) until a request with `cookie` gets a 200. */
async function waitForRecovery(app: RequestListener, cookie: string): Promise<request.Response> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await request(app).get('/read?key=k').set('Cookie', cookie);
    if (res.status === 200 || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(setups)('a failing Redis under $fw.name, $label', ({ fw, options, pausedCode }) => {
  let redis: RedisProcess;
  let client: Redis;
  const clientErrors: Error[] = [];
  let app: RequestListener;
  let cookie: string;

  async function seed(): Promise<string> {
    const res = await request(app).get('/set?key=k&json=42');
    expect(res.status).toBe(200);
    return `sid=${sessionCookie(res)!.value}`;
  }

  beforeAll(async () => {
    redis = await RedisProcess.start();
    client = new Redis(redis.url, options);
    // Without a listener ioredis prints every reconnection failure as "Unhandled error event".
    client.on('error', (err: Error) => clientErrors.push(err));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('client not ready in 5 s')), 5000);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    app = fw.app({ secret: SECRET, store: new RedisStore({ client }), storeTimeoutMs: STORE_TIMEOUT });
    cookie = await seed();
  }, 20_000);

  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  afterEach(async () => {
    // A failed case must not leave the next one a dead or paused server.
    redis.signal('SIGCONT');
    if (!redis.running) await redis.start();
  });

  it('killed: 503 within storeTimeoutMs + 1 s, no Set-Cookie; restarted: served again, writes work', async () => {
    await redis.kill();
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const res = await request(app).get('/read?key=k').set('Cookie', cookie);
      expect(Date.now() - started).toBeLessThan(STORE_TIMEOUT + 1000);
      expect(res.status).toBe(503);
      expect(res.body.error).toMatch(/^LATCHKEY_(LOAD|STORE_TIMEOUT)$/);
      expect(sessionCookie(res)).toBeUndefined();
    }
    // The reconnection failures reach the 'error' listener (bounded wait: they follow the close).
    const deadline = Date.now() + 3000;
    while (clientErrors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(clientErrors.length).toBeGreaterThan(0);
    await redis.start();
    // Nothing was kept on disk: the old session is gone and the request gets a fresh one. The
    // restarted Redis has no scripts either: EVALSHA gets NOSCRIPT and ioredis resends the script.
    const back = await waitForRecovery(app, cookie);
    expect(back.status).toBe(200);
    expect(back.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
    cookie = await seed();
    expect((await request(app).get('/read?key=k').set('Cookie', cookie)).body).toEqual({ value: 42, isNew: false, status: 'unchanged' });
  }, 30_000);

  it('paused (SIGSTOP): 503 within storeTimeoutMs + 1 s; SIGCONT: the same session is back', async () => {
    redis.signal('SIGSTOP');
    try {
      for (let i = 0; i < 2; i++) {
        const started = Date.now();
        const res = await request(app).get('/read?key=k').set('Cookie', cookie);
        expect(Date.now() - started).toBeLessThan(STORE_TIMEOUT + 1000);
        expect(res.status).toBe(503);
        expect(res.body).toEqual({ error: pausedCode });
        expect(sessionCookie(res)).toBeUndefined();
      }
    } finally {
      redis.signal('SIGCONT');
    }
    const back = await waitForRecovery(app, cookie);
    expect(back.body).toEqual({ value: 42, isNew: false, status: 'unchanged' });
  }, 30_000);

  it("onStoreError 'anonymous': 200 with an empty session that is not saved, and an event", async () => {
    const events: SessionEvent[] = [];
    const anonymous = fw.app({
      secret: SECRET,
      store: new RedisStore({ client }),
      storeTimeoutMs: STORE_TIMEOUT,
      onStoreError: 'anonymous',
      onEvent: (e) => events.push(e),
    });
    await redis.kill();
    try {
      const started = Date.now();
      const res = await request(anonymous).get('/read?key=k').set('Cookie', cookie);
      expect(Date.now() - started).toBeLessThan(STORE_TIMEOUT + 1000);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
      expect(sessionCookie(res)).toBeUndefined();
      expect(events.map((e) => e.type)).toEqual(['store-unavailable']);
    } finally {
      await redis.start();
    }
    expect((await waitForRecovery(anonymous, cookie)).status).toBe(200);
  }, 30_000);
});
