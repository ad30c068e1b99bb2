/**
 * A Redis that dies, hangs and comes back, under a running app: requests fail fast with 503
 * (within storeTimeoutMs + 1 s), the process stays up, and recovery needs no restart.
 * The Redis here is a throwaway redis-server on its own port, controlled by pid.
 */
import Redis from 'ioredis';
import request from 'supertest';
import type { RequestListener } from 'node:http';
import { RedisStore } from 'latchkey/redis';
import { sessionCookie } from '../support/cookies';
import { express5Framework, koa3Framework, SECRET } from '../support/harness';
import { RedisProcess } from '../support/redis-server';

const TIMEOUT = 500;
let redis: RedisProcess;
let client: Redis;

beforeAll(async () => {
  redis = await RedisProcess.start();
  // Fail-fast client options (README, "RedisStore"): never queue for tens of seconds.
  client = new Redis(redis.url, { commandTimeout: TIMEOUT, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => {
    /* reported per request through the engine; ioredis would only print it */
  });
}, 20_000);

afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

async function waitForRecovery(app: RequestListener, cookie: string): Promise<request.Response> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await request(app).get('/read?key=k').set('Cookie', cookie);
    if (res.status === 200 || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each([express5Framework, koa3Framework])('a failing Redis under $name', (fw) => {
  let app: RequestListener;
  let cookie: string;

  beforeAll(async () => {
    app = fw.app({ secret: SECRET, store: new RedisStore({ client, prefix: `faults:${fw.name}:` }), storeTimeoutMs: TIMEOUT });
    cookie = `sid=${sessionCookie(await request(app).get('/set?key=k&json=42'))!.value}`;
  });

  it('killed: 503 within storeTimeoutMs + 1 s, no Set-Cookie; restarted: served again', async () => {
    await redis.kill();
    const started = Date.now();
    const res = await request(app).get('/read?key=k').set('Cookie', cookie);
    expect(Date.now() - started).toBeLessThan(TIMEOUT + 1000);
    expect(res.status).toBe(503);
    expect(sessionCookie(res)).toBeUndefined();
    await redis.start();
    // Redis keeps nothing on disk here: the session is gone, and the request is served with a fresh one.
    const back = await waitForRecovery(app, cookie);
    expect(back.status).toBe(200);
    expect(back.body.isNew).toBe(true);
    cookie = `sid=${sessionCookie(await request(app).get('/set?key=k&json=42'))!.value}`;
  }, 30_000);

  it('paused (SIGSTOP): 503 within storeTimeoutMs + 1 s; SIGCONT: the session is back', async () => {
    redis.signal('SIGSTOP');
    try {
      const started = Date.now();
      const res = await request(app).get('/read?key=k').set('Cookie', cookie);
      expect(Date.now() - started).toBeLessThan(TIMEOUT + 1000);
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ error: 'LATCHKEY_STORE_TIMEOUT' });
    } finally {
      redis.signal('SIGCONT');
    }
    const back = await waitForRecovery(app, cookie);
    expect(back.body).toEqual({ value: 42, isNew: false, status: 'unchanged' });
  }, 30_000);

  it("onStoreError 'anonymous': 200 with an empty session that is not saved", async () => {
    const anonymous = fw.app({
      secret: SECRET,
      store: new RedisStore({ client, prefix: `faults:${fw.name}:` }),
      storeTimeoutMs: TIMEOUT,
      onStoreError: 'anonymous',
      onEvent: () => {},
    });
    await redis.kill();
    try {
      const res = await request(anonymous).get('/read?key=k').set('Cookie', cookie);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
      expect(sessionCookie(res)).toBeUndefined();
    } finally {
      await redis.start();
      await waitForRecovery(app, cookie);
    }
  }, 30_000);
});
