/**
 * RedisStore on a real 3-master Redis Cluster started from redis-server on free loopback
 * ports: every operation touches one key, so the store works unchanged through an ioredis Cluster.
 */
import { Cluster } from 'ioredis';
import { RedisStore } from 'latchkey/redis';
import { runStoreConformance } from 'latchkey/testing';
import { RedisCluster } from '../support/redis-server';
import { describeScenarios } from '../support/scenarios';
import { express5Framework, koa3Framework } from '../support/harness';

let cluster: RedisCluster;
let client: Cluster;
let n = 0;

beforeAll(async () => {
  cluster = await RedisCluster.start();
  client = new Cluster(cluster.startupNodes, { redisOptions: { commandTimeout: 2000, maxRetriesPerRequest: 1 } });
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

const makeStore = () => new RedisStore({ client, prefix: `cluster-${++n}:` });

test('passes the conformance kit on a Redis Cluster', async () => {
  await runStoreConformance(makeStore);
}, 30_000);

test('sessions spread over all three masters', async () => {
  const store = makeStore();
  for (let i = 0; i < 30; i++) await store.save(new Map([['i', String(i)]]), 60);
  const counts = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
  expect(counts.filter((c) => c > 0)).toHaveLength(3);
});

describeScenarios('RedisStore on a Cluster', makeStore, { frameworks: [express5Framework, koa3Framework] });
