/**
 * RedisStore against the real Redis at REDIS_URL: the conformance kit, the shared HTTP
 * scenario table on every framework, what it keeps, bad data, and one round trip per operation.
 */
import Redis from 'ioredis';
import request from 'supertest';
import { LoadError, type SessionEvent } from 'latchkey';
import { RedisStore } from 'latchkey/redis';
import { runStoreConformance } from 'latchkey/testing';
import { sessionCookie } from '../support/cookies';
import { express5Framework, SECRET } from '../support/harness';
import { REDIS_URL } from '../support/redis-server';
import { describeScenarios } from '../support/scenarios';

const client = new Redis(REDIS_URL, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
let counter = 0;
const prefix = () => `latchkey-test:${process.pid}:${++counter}:`;

async function dropPrefix(p: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await client.del(...keys);
  } while (cursor !== '0');
}

const used = new Set<string>();
function makeStore(): RedisStore {
  const p = prefix();
  used.add(p);
  return new RedisStore({ client, prefix: p });
}

afterAll(async () => {
  for (const p of used) await dropPrefix(p);
  client.disconnect();
});

test('passes the conformance kit', async () => {
  await runStoreConformance(makeStore);
}, 30_000);

describeScenarios('RedisStore', makeStore);

describe('RedisStore', () => {
  it('keeps one hash per session holding only a hash of the validator', async () => {
    const p = prefix();
    used.add(p);
    const store = new RedisStore({ client, prefix: p });
    const key = await store.save(new Map([['user', '"ada"']]), 60);
    const [id, validator] = key.split('.');
    const keys = await client.keys(`${p}*`);
    expect(keys).toEqual([`${p}${id}`]);
    expect(await client.type(keys[0]!)).toBe('hash');
    const dump = JSON.stringify(await client.hgetall(keys[0]!));
    expect(dump).not.toContain(validator);
    expect(await client.hget(keys[0]!, '.user')).toBe('"ada"');
    const pttl = await client.pttl(keys[0]!);
    expect(pttl).toBeGreaterThan(59_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('every operation is one round trip', async () => {
    const store = makeStore();
    const sent: string[] = [];
    const send = client.sendCommand.bind(client);
    client.sendCommand = ((command: { name: string }, stream?: unknown) => {
      sent.push(command.name);
      return send(command as never, stream as never);
    }) as typeof client.sendCommand;
    try {
      const key = await store.save(new Map([['a', '1']]), 60);
      await store.load(key);
      const next = await store.update(key, { set: new Map([['b', '2']]), removed: new Set(['a']), rotate: true, graceMs: 1000, expectedVersion: 1 }, 60);
      await store.updateTtl(next!, 120);
      await store.delete(next!);
      expect(sent).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'del']);
    } finally {
      client.sendCommand = send;
    }
  });

  it('a value that is not JSON, or the wrong type at the key, is a LoadError of kind deserialization', async () => {
    const p = prefix();
    used.add(p);
    const store = new RedisStore({ client, prefix: p });
    const key = await store.save(new Map([['a', '1']]), 60);
    const id = key.split('.')[0]!;
    await client.hset(`${p}${id}`, '.a', '{not json');
    await expect(store.load(key)).rejects.toMatchObject({ kind: 'deserialization', code: 'LATCHKEY_LOAD_DESERIALIZATION' });
    await client.del(`${p}${id}`);
    await client.set(`${p}${id}`, 'a string');
    await expect(store.load(key)).rejects.toBeInstanceOf(LoadError);
    await client.del(`${p}${id}`);
    await client.hset(`${p}${id}`, 'x', 'y');
    await expect(store.load(key)).rejects.toMatchObject({ kind: 'deserialization' });
  });

  it('bad data over HTTP: 200 with a fresh session, an event says why, the record is dropped', async () => {
    const p = prefix();
    used.add(p);
    const store = new RedisStore({ client, prefix: p });
    const events: SessionEvent[] = [];
    const app = express5Framework.app({ secret: SECRET, store, onEvent: (e) => events.push(e) });
    const c = sessionCookie(await request(app).get('/set?key=k&json=1'))!;
    const [id] = (await client.keys(`${p}*`)).map((k) => k.slice(p.length));
    await client.hset(`${p}${id}`, '.k', '{broken');
    const res = await request(app).get('/read?key=k').set('Cookie', `sid=${c.value}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
    expect(events.map((e) => e.type)).toEqual(['corrupt-session']);
    expect(await client.exists(`${p}${id}`)).toBe(0);
    await client.set(`${p}${id}`, 'wrong type');
    const c2 = sessionCookie(await request(app).get('/set?key=k&json=1'))!;
    const [id2] = (await client.keys(`${p}*`)).map((k) => k.slice(p.length)).filter((k) => k !== id);
    await client.del(`${p}${id2}`);
    await client.set(`${p}${id2}`, 'wrong type');
    const wrong = await request(app).get('/read?key=k').set('Cookie', `sid=${c2.value}`);
    expect(wrong.status).toBe(200);
    expect(wrong.body.isNew).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['corrupt-session', 'corrupt-session']);
  });
});
