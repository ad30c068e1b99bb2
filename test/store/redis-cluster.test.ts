/**
 * RedisStore on a real 3-master Redis Cluster started from redis-server on free loopback
 * ports: every operation touches one key, so the store works unchanged through an ioredis Cluster.
 * The cluster is thrown away (nodes killed by pid, temp dir removed) after the file.
 */
import { Cluster } from 'ioredis';
import type { SessionStore } from 'latchkey';
import { RedisStore } from 'latchkey/redis';
import { runStoreConformance } from 'latchkey/testing';
import { RedisCluster } from '../support/redis-server';
import { describeScenarios } from '../support/scenarios';
import { express5Framework, koa3Framework } from '../support/harness';

let cluster: RedisCluster;
let client: Cluster;
let n = 0;
const prefixes = new WeakMap<SessionStore, string>();

beforeAll(async () => {
  cluster = await RedisCluster.start();
  client = new Cluster(cluster.startupNodes, { redisOptions: { commandTimeout: 2000, maxRetriesPerRequest: 1 } });
  client.on('error', () => {
    /* a failing command rejects its own promise; this only keeps ioredis from printing */
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('cluster client not ready in 10 s')), 10_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

function makeStore(): RedisStore {
  const prefix = `cluster-${++n}:`;
  const store = new RedisStore({ client, prefix });
  prefixes.set(store, prefix);
  return store;
}

/** Removes a store's keys from every master (SCAN is per node on a Cluster). */
async function cleanup(store: SessionStore): Promise<void> {
  const prefix = prefixes.get(store)!;
  for (const node of client.nodes('master')) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) await client.del(key);
    } while (cursor !== '0');
  }
}

test('passes the conformance kit on a Redis Cluster', async () => {
  await runStoreConformance(makeStore, { cleanup });
}, 30_000);

test('sessions spread over all three masters, each one hash on one node', async () => {
  const store = makeStore();
  const keys: string[] = [];
  for (let i = 0; i < 30; i++) keys.push(await store.save(new Map([['i', String(i)]]), 60));
  const counts = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
  expect(counts.filter((c) => c > 0)).toHaveLength(3);
  for (const [i, key] of keys.entries()) expect((await store.load(key))?.state.get('i')).toBe(String(i));
  await cleanup(store);
  expect(await Promise.all(client.nodes('master').map((node) => node.dbsize()))).toEqual([0, 0, 0]);
});

describeScenarios('RedisStore on a Cluster', makeStore, { frameworks: [express5Framework, koa3Framework], cleanup });
