import { clusterStores, redisClusterSuite, runSuites } from './stores';

runSuites(redisClusterSuite);

test('sessions spread over all three masters, each one hash on one node', async () => {
  const store = clusterStores.make();
  const client = clusterStores.client as import('ioredis').Cluster;
  const keys: string[] = [];
  for (let i = 0; i < 30; i++) keys.push(await store.save(new Map([['i', String(i)]]), 60));
  const counts = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
  expect(counts.filter((c) => c > 0)).toHaveLength(3);
  for (const [i, key] of keys.entries()) expect((await store.load(key))?.state.get('i')).toBe(String(i));
  await clusterStores.cleanup(store);
  expect(await Promise.all(client.nodes('master').map((node) => node.dbsize()))).toEqual([0, 0, 0]);
});
