/**
 * Every store the shared suites run against, in one table: the conformance kit
 * (`runStoreConformance`) and the HTTP scenario table (`describeScenarios`). Each entry says how
 * to make a fresh store, what its data is isolated under and how it is removed. One test file
 * per entry (test/suites/*.test.ts) so jest runs them in parallel.
 */
import { Cluster, Redis } from 'ioredis';
import { CachingStore, CookieStore, MemoryCache, MemoryStore, type SessionStore } from 'latchkey';
import { RedisStore } from 'latchkey/redis';
import { runStoreConformance } from 'latchkey/testing';
import { express5Framework, fastify5Framework, type Framework, koa3Framework, nodeHttpFramework } from '../support/harness';
import { RedisCluster, REDIS_URL } from '../support/redis-server';
import { describeScenarios } from '../support/scenarios';
import { PostgresStore } from 'latchkey/postgres';
import { quoted, TestSchema, testPool } from '../store/postgres-helpers';

export interface StoreSuite {
  label: string;
  make(): SessionStore | Promise<SessionStore>;
  /** Before the file's tests (start servers, open clients) and after them. */
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** After each test or conformance case: remove what the store wrote. */
  cleanup?(store: SessionStore): Promise<void>;
  /** False for a store that cannot revoke a copied session. */
  invalidation?: boolean;
  /** Frameworks for the scenario table; default all. */
  frameworks?: Framework[];
}

/** Runs both shared suites for `suite` in the calling test file. */
export function runSuites(suite: StoreSuite): void {
  if (suite.start) beforeAll(() => suite.start!(), 60_000);
  if (suite.stop) afterAll(() => suite.stop!());
  test(`${suite.label} passes the store conformance kit`, async () => {
    await runStoreConformance(() => suite.make(), { invalidation: suite.invalidation ?? true, cleanup: suite.cleanup });
  }, 30_000);
  describeScenarios(suite.label, () => suite.make(), { invalidation: suite.invalidation, cleanup: suite.cleanup, frameworks: suite.frameworks });
}

/**
 * RedisStores on one client, each under a key prefix of its own; `cleanup` removes a store's keys
 * (on every master of a Cluster: SCAN is per node). Works for a CachingStore over a RedisStore too.
 */
export class RedisStores {
  client!: Redis | Cluster;
  private n = 0;
  private readonly prefixes = new WeakMap<SessionStore, string>();
  constructor(private readonly label: string) {}

  make(): RedisStore {
    const prefix = `latchkey-test:${this.label}:${process.pid}:${++this.n}:`;
    const store = new RedisStore({ client: this.client, prefix });
    this.prefixes.set(store, prefix);
    return store;
  }

  async cleanup(store: SessionStore): Promise<void> {
    const prefix = this.prefixes.get(store instanceof CachingStore ? store.backend : store);
    if (prefix === undefined) return;
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) await this.client.del(key);
      } while (cursor !== '0');
    }
  }
}

/**
 * RedisStores for one test file, each under its own prefix: opened before the file's tests, every
 * store made during a test removed after it, the client closed at the end.
 */
export function redisStoresPerTest(label: string): () => RedisStore {
  const stores = new RedisStores(label);
  const made: SessionStore[] = [];
  beforeAll(() => {
    stores.client = new Redis(REDIS_URL, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
  });
  afterEach(async () => {
    for (const store of made.splice(0)) await stores.cleanup(store);
  });
  afterAll(() => stores.client.disconnect());
  return () => {
    const store = stores.make();
    made.push(store);
    return store;
  };
}

const memory = () => new MemoryStore({ sweepIntervalMs: 0 });
const memoryCache = () => new MemoryCache({ sweepIntervalMs: 0 });

export const memorySuite: StoreSuite = { label: 'MemoryStore', make: memory };

export const cookieSuite: StoreSuite = { label: 'CookieStore', make: () => new CookieStore(), invalidation: false };

export const cachingMemorySuite: StoreSuite = {
  label: 'CachingStore (MemoryCache in front of MemoryStore)',
  make: () => new CachingStore(memoryCache(), memory(), { cacheTtl: 5 }),
};

function redisSuite(label: string, prefix: string, wrap: (store: RedisStore) => SessionStore): StoreSuite {
  const stores = new RedisStores(prefix);
  return {
    label,
    make: () => wrap(stores.make()),
    cleanup: (store) => stores.cleanup(store),
    async start() {
      stores.client = new Redis(REDIS_URL, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
    },
    async stop() {
      stores.client?.disconnect();
    },
  };
}

export const redisSuiteSingle = redisSuite('RedisStore', 'suite', (s) => s);
export const cachingRedisSuite = redisSuite('CachingStore (MemoryCache in front of RedisStore)', 'suite-caching', (s) => new CachingStore(memoryCache(), s, { cacheTtl: 5 }));

/** A real 3-master Redis Cluster started from redis-server on free loopback ports, for its file. */
export const clusterStores = new RedisStores('cluster');
let cluster: RedisCluster | undefined;
export const redisClusterSuite: StoreSuite = {
  label: 'RedisStore on a Cluster',
  make: () => clusterStores.make(),
  cleanup: (store) => clusterStores.cleanup(store),
  frameworks: [express5Framework, koa3Framework, nodeHttpFramework, fastify5Framework],
  async start() {
    cluster = await RedisCluster.start();
    const client = new Cluster(cluster.startupNodes, { redisOptions: { commandTimeout: 2000, maxRetriesPerRequest: 1 } });
    // A failing command rejects its own promise; the listener only keeps ioredis from printing.
    client.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('cluster client not ready in 10 s')), 10_000);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    clusterStores.client = client;
  },
  async stop() {
    clusterStores.client?.disconnect();
    await cluster?.stop();
  },
};

/** PostgresStores on the real PostgreSQL, each on a fresh table in this file's own schema, dropped afterwards. */
let pgSchema: TestSchema | undefined;
let pgPool: ReturnType<typeof testPool> | undefined;
const pgTables = new WeakMap<SessionStore, string>();
export const postgresSuite: StoreSuite = {
  label: 'PostgresStore',
  async make() {
    const table = pgSchema!.table();
    const store = new PostgresStore({ pool: pgPool!, table });
    await store.createTable();
    pgTables.set(store, table);
    return store;
  },
  async cleanup(store) {
    await pgSchema!.admin.query(`DROP TABLE IF EXISTS ${quoted(pgTables.get(store)!)}`);
  },
  async start() {
    pgSchema = new TestSchema();
    await pgSchema.create();
    pgPool = testPool({ max: 6, connectionTimeoutMillis: 2000, statement_timeout: 5000 });
  },
  async stop() {
    await pgPool?.end();
    await pgSchema?.drop();
  },
};
