/**
 * CachingStore as it is meant to run: a MemoryStore in front of a RedisStore on the real
 * Redis at REDIS_URL. The kit, the scenario table, and the backend loads saved on repeated reads.
 */
import Redis from 'ioredis';
import request from 'supertest';
import { CachingStore, MemoryStore } from 'latchkey';
import { RedisStore } from 'latchkey/redis';
import { runStoreConformance } from 'latchkey/testing';
import { sessionCookie } from '../support/cookies';
import { express5Framework, koa3Framework, SECRET } from '../support/harness';
import { REDIS_URL } from '../support/redis-server';
import { describeScenarios } from '../support/scenarios';
import { SpyStore } from '../support/spy-store';

const client = new Redis(REDIS_URL, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
const prefixes: string[] = [];
let n = 0;

function redisStore(): RedisStore {
  const prefix = `latchkey-test:caching:${process.pid}:${++n}:`;
  prefixes.push(prefix);
  return new RedisStore({ client, prefix });
}
const makeStore = () => new CachingStore(new MemoryStore({ sweepIntervalMs: 0 }), redisStore(), { cacheTtl: 5 });

afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length) await client.del(...keys);
  }
  client.disconnect();
});

test('passes the conformance kit', async () => {
  await runStoreConformance(makeStore);
}, 30_000);

describeScenarios('CachingStore(MemoryStore, RedisStore)', makeStore, { frameworks: [express5Framework, koa3Framework] });

test('20 reads of one session cost the Redis backend one load', async () => {
  const backend = new SpyStore(redisStore());
  const store = new CachingStore(new MemoryStore({ sweepIntervalMs: 0 }), backend, { cacheTtl: 60 });
  const app = express5Framework.app({ secret: SECRET, store });
  const cookie = `sid=${sessionCookie(await request(app).get('/set?key=k&json=7'))!.value}`;
  backend.reset();
  for (let i = 0; i < 20; i++) expect((await request(app).get('/read?key=k').set('Cookie', cookie)).body.value).toBe(7);
  expect(backend.methods()).toEqual(['load']);
});
