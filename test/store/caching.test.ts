/**
 * CachingStore: a MemoryCache in front of another store. The conformance kit, the shared
 * HTTP scenarios, the backend calls saved on repeated reads, writes going to the backend
 * first, rotation never served stale from the cache, and the staleness window between
 * instances bounded by cacheTtl. Then the same with a real RedisStore (REDIS_URL) behind the
 * cache, each test under its own key prefix, removed afterwards.
 */
import Redis from 'ioredis';
import request from 'supertest';
import { CachingStore, ConfigError, CookieStore, type LoadedSession, MemoryCache, MemoryStore, type SessionStore, VersionConflictError, startExpiredDeletion } from 'latchkey';
import { RedisStore } from 'latchkey/redis';
import { Jar, sessionCookie } from '../support/cookies';
import { frameworks, SECRET } from '../support/harness';
import { commandsSent, REDIS_URL } from '../support/redis-server';
import { DelegatingStore } from '../support/delegating-store';
import { SpyStore } from '../support/spy-store';
import { change, rotation, state } from '../support/state';

const memory = (now?: () => number) => new MemoryStore({ sweepIntervalMs: 0, ...(now ? { now } : {}) });
const memoryCache = (now?: () => number) => new MemoryCache({ sweepIntervalMs: 0, ...(now ? { now } : {}) });

/** A MemoryCache in front of a spied MemoryStore. */
function setup(cacheTtl = 5, now?: () => number) {
  const cache = memoryCache(now);
  const backend = new SpyStore(memory(now));
  const store = new CachingStore(cache, backend, { cacheTtl, ...(now ? { now } : {}) });
  return { cache, backend, store };
}

describe('CachingStore (MemoryCache in front of MemoryStore)', () => {
  it('N repeated reads cost the backend one load', async () => {
    const { backend, store } = setup();
    const key = await store.save(state({ user: 'ada' }), 60);
    backend.reset();
    const N = 100;
    for (let i = 0; i < N; i++) expect((await store.load(key))?.state.get('user')).toBe('"ada"');
    expect(backend.methods()).toEqual(['load']);
    // Without the cache the same reads are N backend loads.
    const bare = new SpyStore(memory());
    const bareKey = await bare.save(state({ user: 'ada' }), 60);
    bare.reset();
    for (let i = 0; i < N; i++) await bare.load(bareKey);
    expect(bare.count('load')).toBe(N);
  });

  it('through HTTP: 20 read-only requests, one backend load', async () => {
    for (const fw of frameworks) {
      const { backend, store } = setup();
      const app = fw.app({ secret: SECRET, store });
      const jar = new Jar().take(await request(app).get('/set?key=k&json=1'));
      backend.reset();
      for (let i = 0; i < 20; i++) expect((await request(app).get('/read?key=k').set('Cookie', jar.header())).body.value).toBe(1);
      expect({ fw: fw.name, calls: backend.methods() }).toEqual({ fw: fw.name, calls: ['load'] });
    }
  });

  it('writes go to the backend, then drop the cached copy: the next read sees the write', async () => {
    const { cache, backend, store } = setup();
    const key = await store.save(state({ a: 1 }), 60);
    await store.load(key);
    expect(await cache.get(key)).not.toBeNull();
    backend.reset();
    expect(await store.update(key, change({ a: 2 }), 60)).toBe(key);
    expect(backend.methods()).toEqual(['update']);
    expect(await cache.get(key)).toBeNull();
    expect((await store.load(key))?.state.get('a')).toBe('2');
    expect((await store.load(key))?.version).toBe(2);
    expect(backend.methods()).toEqual(['update', 'load']);
    await store.updateTtl(key, 600);
    expect(await cache.get(key)).toBeNull();
    expect((await store.load(key))!.expiresAt).toBeGreaterThan(Date.now() + 590_000);
    await store.delete(key);
    expect(await cache.get(key)).toBeNull();
    expect(await store.load(key)).toBeNull();
    expect(backend.methods()).toEqual(['update', 'load', 'updateTtl', 'load', 'delete', 'load']);
  });

  it('a failed backend write leaves the cache unchanged and reaches the caller', async () => {
    const { cache, backend, store } = setup();
    const key = await store.save(state({ a: 1 }), 60);
    const { stale: _stale, ...cached } = (await store.load(key))!; // the backend's answer, as the cache keeps it
    expect(await cache.get(key)).toEqual(cached);
    for (const method of ['update', 'updateTtl', 'delete'] as const) {
      backend.failWith = { [method]: new Error(`${method} failed`) };
      const call =
        method === 'update' ? store.update(key, change({ a: 2 }), 60) : method === 'updateTtl' ? store.updateTtl(key, 60) : store.delete(key);
      await expect(call).rejects.toThrow(`${method} failed`);
      expect(await cache.get(key)).toEqual(cached);
    }
    backend.failWith = {};
    backend.reset();
    expect(await store.load(key)).toEqual(cached);
    expect(backend.count()).toBe(0); // still served from the cache
  });

  it('after a rotation the old key is never served as current from the cache', async () => {
    const { backend, store } = setup();
    const key = await store.save(state({ a: 1 }), 60);
    await store.load(key); // cached under the key about to rotate
    const next = await store.update(key, rotation(store, key, { a: 2 }, { graceMs: 60_000 }), 60);
    expect(next).not.toBe(key);
    const old = await store.load(key);
    expect(old).toMatchObject({ stale: true });
    expect(old?.state.get('a')).toBe('2');
    // Stale answers are not cached: each read of the old key asks the backend, which judges the grace.
    backend.reset();
    await store.load(key);
    await store.load(key);
    expect(backend.count('load')).toBe(2);
    const current = await store.load(next!);
    expect(current?.stale).toBeFalsy();
    // An update through the old key (inside the grace) drops the cached current copy too.
    await store.update(key, change({ b: 3 }), 60);
    expect((await store.load(next!))?.state.get('b')).toBe('3');
  });

  it('a version conflict drops the cached copy, so a reload reads the backend', async () => {
    const shared = memory();
    const a = new CachingStore(memoryCache(), shared, { cacheTtl: 60 });
    const b = new CachingStore(memoryCache(), shared, { cacheTtl: 60 });
    const key = await a.save(state({ n: 0 }), 60);
    const seen = (await b.load(key))!; // b caches version 1
    await a.update(key, change({ n: 1 }), 60); // version 2 in the backend; b's cache is behind
    expect((await b.load(key))?.version).toBe(seen.version);
    await expect(b.update(key, rotation(b, key, { n: 2 }, { expectedVersion: seen.version, graceMs: 1000 }), 60)).rejects.toBeInstanceOf(
      VersionConflictError,
    );
    expect((await b.load(key))?.version).toBe(seen.version + 1);
  });

  it('a load that raced a write does not fill the cache with what it read before the write', async () => {
    /** A backend whose load reads at once but answers late: the answer is from before the write. */
    class SlowAnswer extends DelegatingStore {
      release: (() => void) | undefined;
      override async load(key: string): Promise<LoadedSession | null> {
        const record = await this.inner.load(key);
        await new Promise<void>((r) => (this.release = r));
        return record;
      }
    }
    const backend = new SlowAnswer(memory());
    const cache = memoryCache();
    const store = new CachingStore(cache, backend, { cacheTtl: 60 });
    const key = await store.save(state({ a: 1 }), 60);
    const racing = store.load(key);
    await new Promise((r) => setImmediate(r));
    await store.update(key, change({ a: 2 }), 60);
    backend.release!();
    expect((await racing)?.state.get('a')).toBe('1'); // that request saw the old state, fine
    expect(await cache.get(key)).toBeNull(); // but it was not cached
    const next = store.load(key);
    await new Promise((r) => setImmediate(r));
    backend.release!();
    expect((await next)?.state.get('a')).toBe('2');
  });

  it('the cache never outlives the session: its TTL is cut to the time the session has left', async () => {
    const c = { t: 1_700_000_000_000 };
    const now = () => c.t;
    const { cache, backend, store } = setup(60, now);
    const key = await store.save(state({ a: 1 }), 2);
    expect(await store.load(key)).not.toBeNull();
    c.t += 1_999;
    backend.reset();
    expect(await store.load(key)).not.toBeNull();
    expect(backend.count()).toBe(0);
    c.t += 1;
    expect(await store.load(key)).toBeNull();
    expect(await cache.get(key)).toBeNull();
  });

  it('deleteExpired is the backend\'s, so startExpiredDeletion works on it', async () => {
    const backend = memory();
    const store = new CachingStore(memoryCache(), backend, { cacheTtl: 5 });
    expect(typeof store.deleteExpired).toBe('function');
    for (let i = 0; i < 5; i++) await store.save(state({ i }), 0.05);
    const stop = startExpiredDeletion(store, 30);
    try {
      const until = Date.now() + 2_000;
      while (backend.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    } finally {
      stop();
    }
    expect(backend.size).toBe(0);
    const noSweep: SessionStore = { load: async () => null, save: async () => 'k', update: async () => null, updateTtl: async () => null, delete: async () => {} };
    expect(new CachingStore(memoryCache(), noSweep, { cacheTtl: 5 }).deleteExpired).toBeUndefined();
  });

  it('refuses a bad cacheTtl and a stateless backend at construction', () => {
    for (const cacheTtl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      expect(() => new CachingStore(memoryCache(), memory(), { cacheTtl })).toThrow(ConfigError);
    }
    expect(() => new CachingStore(memoryCache(), memory(), undefined as unknown as { cacheTtl: number })).toThrow(ConfigError);
    expect(() => new CachingStore(memoryCache(), new CookieStore(), { cacheTtl: 5 })).toThrow(/stateless/);
    // A store is not a cache: the front must be a SessionCache.
    expect(() => new CachingStore(memory() as never, memory(), { cacheTtl: 5 })).toThrow(/MemoryCache/);
  });

  describe('several instances sharing one backend: staleness bounded by cacheTtl', () => {
    it('a change made through another instance is seen here at most cacheTtl later', async () => {
      const c = { t: 1_700_000_000_000 };
      const now = () => c.t;
      const shared = memory(now);
      const a = new CachingStore(memoryCache(now), shared, { cacheTtl: 5, now });
      const b = new CachingStore(memoryCache(now), shared, { cacheTtl: 5, now });
      const key = await a.save(state({ role: 'user' }), 3600);
      expect((await b.load(key))?.state.get('role')).toBe('"user"'); // b caches at t0
      c.t += 1_000;
      await a.update(key, change({ role: 'admin' }), 3600);
      expect((await a.load(key))?.state.get('role')).toBe('"admin"'); // the writing instance: at once
      c.t += 3_999; // t0 + 4.999 s
      expect((await b.load(key))?.state.get('role')).toBe('"user"'); // inside b's window: stale
      c.t += 1; // t0 + 5 s
      expect((await b.load(key))?.state.get('role')).toBe('"admin"');
    });

    it('a logout through another instance: the session is served here until cacheTtl ends (documented)', async () => {
      const c = { t: 1_700_000_000_000 };
      const now = () => c.t;
      const shared = memory(now);
      const a = new CachingStore(memoryCache(now), shared, { cacheTtl: 2, now });
      const b = new CachingStore(memoryCache(now), shared, { cacheTtl: 2, now });
      const key = await a.save(state({ user: 'ada' }), 3600);
      await b.load(key);
      await a.delete(key);
      expect(await a.load(key)).toBeNull();
      c.t += 1_999;
      expect(await b.load(key)).not.toBeNull();
      c.t += 1;
      expect(await b.load(key)).toBeNull();
    });
  });
});


describe('CachingStore through HTTP: purge and renew through the same instance take effect at once', () => {
  it('after purge and after renew, the old cookie gets a fresh session on the next request', async () => {
    const app = frameworks[0]!.app({ secret: SECRET, store: new CachingStore(memoryCache(), memory(), { cacheTtl: 60 }) });
    const jar = new Jar().take(await request(app).get('/set?key=k&json=1'));
    const first = jar.header();
    expect((await request(app).get('/read?key=k').set('Cookie', first)).body.value).toBe(1); // now cached
    jar.take(await request(app).get('/login').set('Cookie', first));
    expect((await request(app).get('/read?key=k').set('Cookie', first)).body.isNew).toBe(true);
    const second = jar.header();
    expect((await request(app).get('/read?key=k').set('Cookie', second)).body.value).toBe(1);
    const purged = await request(app).get('/purge').set('Cookie', second);
    expect(sessionCookie(purged)!.attributes['max-age']).toBe('0');
    expect((await request(app).get('/read?key=k').set('Cookie', second)).body.isNew).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// A MemoryCache in front of a RedisStore (the real Redis at REDIS_URL).

const redis = new Redis(REDIS_URL, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
let prefixes = 0;
const usedPrefixes = new Set<string>();
/** A RedisStore under a key prefix of its own, dropped in afterAll. */
function redisStore(): RedisStore {
  const prefix = `latchkey-test:caching:${process.pid}:${++prefixes}:`;
  usedPrefixes.add(prefix);
  return new RedisStore({ client: redis, prefix });
}
const overRedis = (cacheTtl = 5) => new CachingStore(memoryCache(), redisStore(), { cacheTtl });

const redisCommands = (fn: () => Promise<void>): Promise<string[]> => commandsSent(redis, fn);

afterAll(async () => {
  for (const prefix of usedPrefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  }
  redis.disconnect();
});

describe('CachingStore (MemoryCache in front of RedisStore)', () => {
  it('N repeated reads: one backend load, one Redis command', async () => {
    const backend = new SpyStore(redisStore());
    const store = new CachingStore(memoryCache(), backend, { cacheTtl: 5 });
    const key = await store.save(state({ user: 'ada' }), 60);
    const N = 100;
    const sent = await redisCommands(async () => {
      for (let i = 0; i < N; i++) expect((await store.load(key))?.state.get('user')).toBe('"ada"');
    });
    expect(backend.count('load')).toBe(1);
    expect(sent).toHaveLength(1);
    // The bare RedisStore: one command per read.
    const bare = redisStore();
    const bareKey = await bare.save(state({ user: 'ada' }), 60);
    const bareSent = await redisCommands(async () => {
      for (let i = 0; i < N; i++) await bare.load(bareKey);
    });
    expect(bareSent).toHaveLength(N);
  });

  it('through HTTP on every framework: 20 read-only requests, one Redis command', async () => {
    for (const fw of frameworks) {
      const app = fw.app({ secret: SECRET, store: overRedis() });
      const jar = new Jar().take(await request(app).get('/set?key=k&json=1'));
      const sent = await redisCommands(async () => {
        for (let i = 0; i < 20; i++) expect((await request(app).get('/read?key=k').set('Cookie', jar.header())).body.value).toBe(1);
      });
      expect({ fw: fw.name, commands: sent.length }).toEqual({ fw: fw.name, commands: 1 });
    }
  });

  it('a write reaches Redis first and the next read sees it; a rotated key is not served as current', async () => {
    const backend = redisStore();
    const store = new CachingStore(memoryCache(), backend, { cacheTtl: 60 });
    const key = await store.save(state({ a: 1 }), 60);
    await store.load(key); // cached
    const next = await store.update(key, rotation(store, key, { a: 2 }, { graceMs: 60_000 }), 60);
    expect(next).not.toBe(key);
    expect((await backend.load(next!))?.state.get('a')).toBe('2');
    expect(await store.load(key)).toMatchObject({ stale: true });
    const current = await store.load(next!);
    expect(current?.stale).toBeFalsy();
    expect(current?.state.get('a')).toBe('2');
    await store.delete(next!);
    expect(await backend.load(next!)).toBeNull();
    expect(await store.load(next!)).toBeNull();
  });

  it('two instances sharing Redis: a change through one is seen by the other once its cacheTtl ends', async () => {
    const c = { t: Date.now() };
    const now = () => c.t;
    const shared = redisStore();
    const a = new CachingStore(memoryCache(now), shared, { cacheTtl: 5, now });
    const b = new CachingStore(memoryCache(now), shared, { cacheTtl: 5, now });
    const key = await a.save(state({ role: 'user' }), 3600);
    expect((await b.load(key))?.state.get('role')).toBe('"user"');
    await a.update(key, change({ role: 'admin' }), 3600);
    expect((await a.load(key))?.state.get('role')).toBe('"admin"');
    c.t += 4_999;
    expect((await b.load(key))?.state.get('role')).toBe('"user"'); // inside b's window
    c.t += 1;
    expect((await b.load(key))?.state.get('role')).toBe('"admin"');
  });
});

