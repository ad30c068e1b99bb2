/**
 * RedisStore against the real Redis at REDIS_URL: the conformance kit, the shared HTTP
 * scenario table on every framework, what it keeps, bad data, and one round trip per operation.
 * Every store gets its own key prefix, and its keys are removed after each case.
 */
import { createHash } from 'node:crypto';
import Redis from 'ioredis';
import request from 'supertest';
import { ConfigError, LoadError, type SessionEvent, type SessionStore } from 'latchkey';
import { RedisStore } from 'latchkey/redis';
import { sessionCookie } from '../support/cookies';
import { express5Framework, SECRET } from '../support/harness';
import { commandsSent, REDIS_URL } from '../support/redis-server';
import { rotation } from '../support/state';

// Opened in beforeAll, not at import: Jest skips the hooks of a file whose tests are all filtered
// out (-t), and a client opened at import would then never be closed and keep Jest from exiting.
let client: Redis;
beforeAll(() => {
  client = new Redis(REDIS_URL, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
});
let counter = 0;
const prefixes = new WeakMap<SessionStore, string>();
const pending = new Set<string>();

function makeStore(): RedisStore {
  const prefix = `latchkey-test:${process.pid}:${++counter}:`;
  const store = new RedisStore({ client, prefix });
  prefixes.set(store, prefix);
  pending.add(prefix);
  return store;
}

async function keysOf(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

async function cleanup(store: SessionStore): Promise<void> {
  const prefix = prefixes.get(store)!;
  const keys = await keysOf(prefix);
  if (keys.length) await client.del(...keys);
  pending.delete(prefix);
}

/** A store and its prefix, for the tests below that look at Redis directly. */
function fresh(): { store: RedisStore; prefix: string } {
  const store = makeStore();
  return { store, prefix: prefixes.get(store)! };
}
let opened: RedisStore[] = [];
afterEach(async () => {
  for (const store of opened) await cleanup(store);
  opened = [];
});
function track(): { store: RedisStore; prefix: string } {
  const f = fresh();
  opened.push(f.store);
  return f;
}

afterAll(async () => {
  // Whatever a failed case left behind.
  for (const prefix of pending) {
    const keys = await keysOf(prefix);
    if (keys.length) await client.del(...keys);
  }
  client?.disconnect();
});



describe('RedisStore', () => {
  it('refuses a missing client or a prefix that is not a string', () => {
    expect(() => new RedisStore({} as never)).toThrow(ConfigError);
    expect(() => new RedisStore({ client, prefix: 5 as never })).toThrow(ConfigError);
  });

  it('keeps one small hash per session, holding only a hash of the validator, under the default prefix too', async () => {
    const { store, prefix } = track();
    const key = await store.save(new Map([['user', '"ada"']]), 60);
    const [id, validator] = key.split('.') as [string, string];
    expect(await keysOf(prefix)).toEqual([`${prefix}${id}`]);
    const record = `${prefix}${id}`;
    expect(await client.type(record)).toBe('hash');
    // Short field names and values keep the hash a listpack, Redis's compact encoding.
    expect(await client.object('ENCODING', record)).toBe('listpack');
    expect((await client.hkeys(record)).sort()).toEqual(['.user', 'c', 'h']);
    const dump = (await client.hgetallBuffer(record)) as Record<string, Buffer>;
    // 16 bytes of SHA-256(validator), top bits cleared: ASCII, so no Buffer argument is ever sent.
    const expected = createHash('sha256').update(validator).digest().subarray(0, 16).map((b) => b & 0x7f);
    expect(dump.h).toEqual(Buffer.from(expected));
    expect(Buffer.concat(Object.values(dump)).includes(validator)).toBe(false);
    expect(await client.hget(record, '.user')).toBe('"ada"');
    const pttl = await client.pttl(record);
    expect(pttl).toBeGreaterThan(59_000);
    expect(pttl).toBeLessThanOrEqual(60_000);

    const byDefault = new RedisStore({ client });
    const other = await byDefault.save(new Map([['a', '1']]), 5);
    try {
      expect(await client.exists(`latchkey:${other.split('.')[0]}`)).toBe(1);
    } finally {
      await byDefault.delete(other);
    }
  });

  it('fractional TTLs become PEXPIRE milliseconds, rounded up', async () => {
    const { store, prefix } = track();
    const key = await store.save(new Map([['a', '1']]), 1.2345);
    const record = `${prefix}${key.split('.')[0]}`;
    expect(await client.pttl(record)).toBeGreaterThan(1100);
    expect(await client.pttl(record)).toBeLessThanOrEqual(1235);
    expect(await store.updateTtl(key, 2.5)).toBe(key);
    expect(await client.pttl(record)).toBeGreaterThan(2400);
    expect(await client.pttl(record)).toBeLessThanOrEqual(2500);
  });

  it('session keys that look like metadata (h, c, v, p, u, "", ".x") are plain values', async () => {
    const { store, prefix } = track();
    const names = ['h', 'c', 'v', 'p', 'u', '', '.x'];
    const key = await store.save(new Map(names.map((n, i) => [n, String(i)])), 60);
    const loaded = await store.load(key);
    expect([...loaded!.state]).toEqual(names.map((n, i) => [n, String(i)]));
    expect(loaded!.version).toBe(1);
    const next = await store.update(key, { ...rotation(store, key, {}, { graceMs: 0 }), set: new Map([['h', '"x"']]), removed: new Set(['c']) }, 60);
    const after = await store.load(next!);
    expect(after!.version).toBe(2);
    expect(after!.state.get('h')).toBe('"x"');
    expect(after!.state.has('c')).toBe(false);
    expect(await client.hexists(`${prefix}${key.split('.')[0]}`, 'c')).toBe(1);
  });

  it('rotation keeps the previous hash only for a grace window; graceMs 0 keeps none', async () => {
    const { store, prefix } = track();
    const key = await store.save(new Map([['a', '1']]), 60);
    const record = `${prefix}${key.split('.')[0]}`;
    const k2 = await store.update(key, rotation(store, key, {}, { graceMs: 5000 }), 60);
    expect((await client.hkeys(record)).sort()).toEqual(['.a', 'c', 'h', 'p', 'u', 'v']);
    expect((await store.load(key))!.stale).toBe(true);
    // Through the stale key: saved, never rotated.
    expect(await store.update(key, rotation(store, key, { b: 2 }, { graceMs: 5000 }), 60)).toBe(key);
    expect((await store.load(k2!))!.state.get('b')).toBe('2');
    const k3 = await store.update(k2!, rotation(store, k2!, {}, { graceMs: 0 }), 60);
    expect((await client.hkeys(record)).sort()).toEqual(['.a', '.b', 'c', 'h', 'v']);
    expect(await store.load(key)).toBeNull();
    expect(await store.load(k2!)).toBeNull();
    expect((await store.load(k3!))!.version).toBe(4);
  });

  it('a session of 10 000 values saves, changes and loads (the scripts write in slices Lua can unpack)', async () => {
    const { store } = track();
    const many = new Map(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, String(i)]));
    const key = await store.save(many, 60);
    const set = new Map(Array.from({ length: 10_000 }, (_, i) => [`n${i}`, String(-i)]));
    const removed = new Set(Array.from({ length: 9_000 }, (_, i) => `k${i}`));
    const next = await store.update(key, { set, removed, graceMs: 0, expectedVersion: 1 }, 60);
    const loaded = await store.load(next!);
    expect(loaded!.state.size).toBe(11_000);
    expect(loaded!.state.get('k9999')).toBe('9999');
    expect(loaded!.state.get('n9999')).toBe('-9999');
    expect(loaded!.state.has('k0')).toBe(false);
  });

  it('every operation is one round trip', async () => {
    const { store } = track();
    const sent = await commandsSent(client, async () => {
      const key = await store.save(new Map([['a', '1']]), 60);
      await store.load(key);
      const next = await store.update(key, { ...rotation(store, key, { b: 2 }, { graceMs: 1000, expectedVersion: 1 }), removed: new Set(['a']) }, 60);
      await store.load(key); // stale
      await store.updateTtl(next!, 120);
      await store.delete(next!);
      await store.delete(next!);
    });
    expect(sent).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'evalsha', 'del', 'del']);
  });

  it('sends no Buffer argument (one would switch ioredis to its slower mixed-buffer encoding of the whole command)', async () => {
    const { store } = track();
    const args: unknown[] = [];
    const send = client.sendCommand;
    client.sendCommand = function (this: unknown, ...a: Parameters<typeof send>) {
      args.push(...(a[0] as unknown as { args: unknown[] }).args);
      return send.apply(this, a);
    } as typeof send;
    try {
      const key = await store.save(new Map([['a', '1']]), 60, { createdAt: Date.now(), settings: { ttl: 90, persistent: true } });
      await store.load(key);
      const next = await store.update(key, { ...rotation(store, key, { b: 2 }, { graceMs: 1000, expectedVersion: 1 }), removed: new Set(['a']) }, 60);
      await store.updateTtl(next!, 120);
    } finally {
      client.sendCommand = send;
    }
    expect(args.length).toBeGreaterThan(20);
    expect(args.filter((a) => Buffer.isBuffer(a))).toEqual([]);
  });

  it('valid JSON that Redis\'s cjson would refuse (a lone surrogate escape, deep nesting) loads: values are judged by JSON.parse, as get() reads them', async () => {
    const { store } = track();
    const lone = JSON.stringify('\ud800 and \udc00');
    const deep = '['.repeat(1500) + ']'.repeat(1500);
    const key = await store.save(new Map([['lone', lone], ['deep', deep], ['n', '1']]), 60);
    const loaded = await store.load(key);
    expect(loaded!.state.get('lone')).toBe(lone);
    expect(loaded!.state.get('deep')).toBe(deep);
    expect(loaded!.state.get('n')).toBe('1');
  });

  it('a value that is not JSON, the wrong type at the key, or broken metadata is a LoadError of kind deserialization', async () => {
    const { store, prefix } = track();
    const key = await store.save(new Map([['a', '1'], ['b', '2']]), 60);
    const record = `${prefix}${key.split('.')[0]}`;
    await client.hset(record, '.a', '{not json');
    await expect(store.load(key)).rejects.toMatchObject({ kind: 'deserialization', code: 'LATCHKEY_LOAD_DESERIALIZATION', message: expect.stringContaining('"a"') });
    await client.hset(record, '.a', '1', 'v', 'seven');
    await expect(store.load(key)).rejects.toMatchObject({ kind: 'deserialization' });
    await client.hdel(record, 'v', 'c');
    await expect(store.load(key)).rejects.toMatchObject({ kind: 'deserialization' });
    await client.del(record);
    await client.set(record, 'a string');
    const wrongType = store.load(key);
    await expect(wrongType).rejects.toBeInstanceOf(LoadError);
    await expect(wrongType).rejects.toMatchObject({ kind: 'deserialization' });
    await client.del(record);
    await client.hset(record, 'x', 'y');
    await expect(store.load(key)).rejects.toMatchObject({ kind: 'deserialization' });
  });

  it('text Redis\'s cjson would accept but JSON.parse refuses (NaN, Infinity, hex, leading zeros, +1, 1., -.5, raw control characters) is a LoadError too', async () => {
    const { store, prefix } = track();
    const key = await store.save(new Map([['a', '1'], ['b', '"ok"']]), 60);
    const record = `${prefix}${key.split('.')[0]}`;
    const odd = ['NaN', '-Infinity', 'inf', '[nan]', '0x10', '{"a":0X1f}', '01', '[-01]', '+1', '[1,+2]', '1.', '[1.]', '-.5', '1.e5', '"a\tb"', '"\u0001"'];
    for (const text of odd) {
      expect(() => JSON.parse(text)).toThrow(SyntaxError);
      await client.hset(record, '.a', text);
      await expect(store.load(key)).rejects.toMatchObject({ kind: 'deserialization', message: expect.stringContaining('"a"') });
    }
    // Their valid neighbours load.
    for (const text of ['0', '-0', '10', '0.5', '-0.5e-07', '1E+5', '[1e05,-0.0]', '"NaN 0x10 01 +1 1. -.5 \\t"', '{"e":[true,false,null]}', ' 1 ']) {
      await client.hset(record, '.a', text);
      expect((await store.load(key))!.state.get('a')).toBe(text);
    }
  });

  it('a corrupt record says nothing to a key with the wrong validator', async () => {
    const { store, prefix } = track();
    const key = await store.save(new Map([['a', '1']]), 60);
    await client.hset(`${prefix}${key.split('.')[0]}`, '.a', '{not json');
    const wrong = `${key.slice(0, 17)}${'A'.repeat(43)}`;
    expect(await store.load(wrong)).toBeNull();
    expect(await store.update(wrong, { set: new Map(), removed: new Set(), graceMs: 0 }, 60)).toBeNull();
    expect(await store.updateTtl(wrong, 60)).toBeNull();
  });

  it('bad data over HTTP: 200 with a fresh session, a corrupt-session event says why, the record is dropped', async () => {
    const { store, prefix } = track();
    const events: SessionEvent[] = [];
    const app = express5Framework.app({ secret: SECRET, store, onEvent: (e) => events.push(e) });
    async function seeded(): Promise<{ cookie: string; record: string }> {
      const before = new Set(await keysOf(prefix));
      const c = sessionCookie(await request(app).get('/set?key=k&json=1'))!;
      const record = (await keysOf(prefix)).find((k) => !before.has(k))!;
      return { cookie: `sid=${c.value}`, record };
    }

    const corrupt = await seeded();
    await client.hset(corrupt.record, '.k', '{broken');
    const res = await request(app).get('/read?key=k').set('Cookie', corrupt.cookie);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'corrupt-session', error: { kind: 'deserialization' } });
    expect(await client.exists(corrupt.record)).toBe(0);

    const wrong = await seeded();
    await client.del(wrong.record);
    await client.set(wrong.record, 'wrong type');
    const res2 = await request(app).get('/read?key=k').set('Cookie', wrong.cookie);
    expect(res2.status).toBe(200);
    expect(res2.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
    expect(events.map((e) => e.type)).toEqual(['corrupt-session', 'corrupt-session']);
    expect(await client.exists(wrong.record)).toBe(0);

    // Not JSON to JSON.parse though a lenient parser would take it: the handler's get() would throw (a 500).
    const lenient = await seeded();
    await client.hset(lenient.record, '.k', 'NaN');
    const res4 = await request(app).get('/read?key=k').set('Cookie', lenient.cookie);
    expect(res4.status).toBe(200);
    expect(res4.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
    expect(events.map((e) => e.type)).toEqual(['corrupt-session', 'corrupt-session', 'corrupt-session']);

    // A fresh session can be written at once over the same response path.
    const res3 = await request(app).get('/set?key=k&json=2').set('Cookie', wrong.cookie);
    expect(res3.status).toBe(200);
    expect(sessionCookie(res3)?.value).not.toBe(wrong.cookie.slice(4));
  });
});
