/**
 * PostgresStore against the real PostgreSQL at 127.0.0.1:5432 (the conformance kit and the shared
 * HTTP scenario table run in test/suites/postgres.test.ts): what a row keeps, exact values, identifiers, one statement
 * (and one round trip) per operation and the statements per HTTP request, the UPDATE under
 * concurrency, expiry, bad data, and both examples on DATABASE_URL.
 * This file works in its own schema (one table per store), dropped in afterAll.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { ConfigError, LoadError, SaveError, type SessionEvent, type SessionStore, startExpiredDeletion, UpdateError, VersionConflictError } from 'latchkey';
import { PostgresStore } from 'latchkey/postgres';
import { Jar, sessionCookie } from '../support/cookies';
import { express5Framework, frameworks, SECRET } from '../support/harness';
import { change, rotation } from '../support/state';
import { freePort, holdLock, lockWaiters, PG_URL, PgProxy, quoted, statementsRun, TestSchema, testPool, waitUntil } from './postgres-helpers';

const schema = new TestSchema();
// Opened in beforeAll, not at import: Jest skips the hooks of a file whose tests are all filtered out.
let pool: ReturnType<typeof testPool>;
beforeAll(async () => {
  await schema.create();
  pool = testPool({ max: 6, connectionTimeoutMillis: 2000, statement_timeout: 5000 });
});
afterAll(async () => {
  await pool?.end();
  await schema.drop();
});

const tables = new WeakMap<SessionStore, string>();

/** A store on a fresh table of this file's schema, created through the store itself. */
async function makeStore(): Promise<PostgresStore> {
  const table = schema.table();
  const store = new PostgresStore({ pool, table });
  await store.createTable();
  tables.set(store, table);
  return store;
}

async function cleanup(store: SessionStore): Promise<void> {
  await schema.admin.query(`DROP TABLE IF EXISTS ${quoted(tables.get(store)!)}`);
}

let opened: PostgresStore[] = [];
afterEach(async () => {
  for (const store of opened) await cleanup(store);
  opened = [];
});
/** A store and its quoted table, dropped after the test. */
async function fresh(): Promise<{ store: PostgresStore; table: string; sql: string }> {
  const store = await makeStore();
  opened.push(store);
  const table = tables.get(store)!;
  return { store, table, sql: quoted(table) };
}
const idOf = (key: string) => key.slice(0, 16);

describe('PostgresStore configuration and identifiers', () => {
  it('refuses a missing pool, a table that is not a plain identifier, a bad queryTimeoutMs or namedStatements', () => {
    expect(() => new PostgresStore({} as never)).toThrow(ConfigError);
    expect(() => new PostgresStore(undefined as never)).toThrow(ConfigError);
    expect(() => new PostgresStore({ pool: {} as never })).toThrow(ConfigError);
    const bad = ['', 'a-b', 'a b', '1a', 'a.b.c', '.a', 'a.', '"a"', 'a;drop table x', "a'", 'sessions--', 'é', 'a'.repeat(64), `s.${'a'.repeat(64)}`, 5, null];
    for (const table of bad) expect(() => new PostgresStore({ pool, table: table as string })).toThrow(ConfigError);
    for (const queryTimeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '100']) {
      expect(() => new PostgresStore({ pool, queryTimeoutMs: queryTimeoutMs as number })).toThrow(ConfigError);
    }
    for (const namedStatements of [0, 'no', null]) expect(() => new PostgresStore({ pool, namedStatements: namedStatements as unknown as boolean })).toThrow(ConfigError);
    for (const table of ['a', 'A_1', '_x', 's.t', 'a'.repeat(63), `${'b'.repeat(63)}.${'c'.repeat(63)}`]) expect(() => new PostgresStore({ pool, table })).not.toThrow();
  });

  it('quotes every identifier: case is kept, reserved words work, the index is named after the table', async () => {
    const odd = [`${schema.name}.Select`, `${schema.name}.MixedCase`, `${schema.name}.${'x'.repeat(63)}`];
    try {
      for (const table of odd) {
        const store = new PostgresStore({ pool, table });
        await store.createTable();
        const key = await store.save(new Map([['a', '1']]), 60);
        expect((await store.load(key))!.state.get('a')).toBe('1');
        const name = table.split('.')[1]!;
        const { rows } = await schema.admin.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname`, [schema.name, name]);
        // The expiry index's name is cut by the store to fit 63 bytes, never by the server.
        expect(rows.map((r) => r.indexname)).toHaveLength(2);
        expect(rows.map((r) => r.indexname)).toContain(`${name.slice(0, 63 - '_expires_at_idx'.length)}_expires_at_idx`);
      }
      // Unquoted SQL folds to lower case: the table is "MixedCase", not mixedcase.
      const { rows } = await schema.admin.query(`SELECT to_regclass($1) AS exact, to_regclass($2) AS folded`, [`"${schema.name}"."MixedCase"`, `${schema.name}.mixedcase`]);
      expect(rows[0]).toEqual({ exact: expect.anything(), folded: null });
    } finally {
      for (const table of odd) await schema.admin.query(`DROP TABLE IF EXISTS ${quoted(table)}`);
    }
  });

  it('createTable is idempotent, also run by several instances at once', async () => {
    const table = schema.table();
    try {
      const stores = Array.from({ length: 4 }, () => new PostgresStore({ pool, table }));
      await Promise.all(stores.map((s) => s.createTable()));
      await stores[0]!.createTable();
      const { rows } = await schema.admin.query(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
        [schema.name, table.split('.')[1]],
      );
      expect(rows.map((r) => `${r.column_name} ${r.data_type}${r.is_nullable === 'NO' ? ' not null' : ''}`)).toEqual([
        'id text not null',
        'hash bytea not null',
        'prev_hash bytea',
        'prev_until timestamp with time zone',
        'version integer not null',
        'data jsonb not null',
        'ttl double precision',
        'persistent boolean',
        'created_at timestamp with time zone not null',
        'expires_at timestamp with time zone not null',
      ]);
    } finally {
      await schema.admin.query(`DROP TABLE IF EXISTS ${quoted(table)}`);
    }
  });

  it('is exported by the built package, for require and import', () => {
    const root = join(__dirname, '..', '..');
    if (!existsSync(join(root, 'dist', 'store', 'postgres.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();
    expect(node(['-e', `console.log(typeof require('latchkey/postgres').PostgresStore)`])).toBe('function');
    expect(node(['--input-type=module', '-e', `import { PostgresStore } from 'latchkey/postgres'; console.log(typeof PostgresStore)`])).toBe('function');
  });
});

describe('PostgresStore rows and values', () => {
  it('keeps one row per session holding only a 16-byte hash of the validator; data maps keys to JSON texts', async () => {
    const { store, sql } = await fresh();
    const key = await store.save(new Map([['user', '"ada"'], ['n', '1']]), 60, { settings: { ttl: 30, persistent: false } });
    const [id, validator] = key.split('.') as [string, string];
    const { rows } = await schema.admin.query(`SELECT *, (extract(epoch FROM expires_at - now()))::float8 AS left_s, t::text AS dump FROM ${sql} t`);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toMatchObject({ id, version: 1, data: { user: '"ada"', n: '1' }, ttl: 30, persistent: false, prev_hash: null, prev_until: null });
    expect(row.hash).toHaveLength(16);
    expect(row.left_s).toBeGreaterThan(58);
    expect(row.left_s).toBeLessThanOrEqual(60);
    expect(row.dump.includes(validator)).toBe(false);

    // A rotation keeps the previous hash for the grace only; graceMs 0 keeps none.
    const k2 = await store.update(key, rotation(store, key, {}, { graceMs: 5000 }), 60);
    const graced = (await schema.admin.query(`SELECT prev_hash, (extract(epoch FROM prev_until - now()))::float8 AS grace_s FROM ${sql}`)).rows[0]!;
    expect(graced.prev_hash).toEqual(row.hash);
    expect(graced.grace_s).toBeGreaterThan(4);
    expect(graced.grace_s).toBeLessThanOrEqual(5);
    await store.update(k2!, rotation(store, k2!, {}, { graceMs: 0 }), 60);
    expect((await schema.admin.query(`SELECT prev_hash, prev_until, version FROM ${sql}`)).rows[0]).toEqual({ prev_hash: null, prev_until: null, version: 3 });
    expect(await store.load(key)).toBeNull();
    expect(await store.load(k2!)).toBeNull();
  });

  it('values come back exactly as given (no jsonb normalisation), through save, update and load', async () => {
    const { store } = await fresh();
    const values = [
      '{"b":1,"a":2}',
      '{ "a" : [ 1 , 2 ] , "a" : 3 }',
      ' 1 ',
      '1.50',
      '1e2',
      '1E+2',
      '-0',
      '-0.0',
      '0.1e-7',
      '12345678901234567890123',
      '"\\ud800"',
      '"\\udc00\\ud800 x"',
      '"\\u0000"',
      '"a\\u0000b"',
      '"\\u00e9 é 😀 \\ud83d\\ude00"',
      '"\\/ \\" \\\\ \\b\\f\\n\\r\\t"',
      'null',
      'true',
      '""',
      '{"__proto__":{"admin":true}}',
      '['.repeat(900) + ']'.repeat(900),
      JSON.stringify('x'.repeat(1 << 20)),
    ];
    const keys = ['__proto__', 'constructor', 'toString', '', 'a.b', 'a"b', "a'b", 'a\\b', '{}', 'NULL', 'é😀', ' spaced ', 'k'.repeat(1000), 'h', 'data', 'a,b', '{"x"}'];
    const state = new Map<string, string>();
    values.forEach((v, i) => state.set(`v${i}`, v));
    keys.forEach((k, i) => state.set(k, values[i % values.length]!));
    const key = await store.save(state, 60);
    const sorted = (m: Map<string, string>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    expect(sorted((await store.load(key))!.state)).toEqual(sorted(state));

    // The same texts as changes: set under other keys, overwrite some, remove some.
    const set = new Map<string, string>();
    values.forEach((v, i) => set.set(`u${i}`, v));
    keys.forEach((k, i) => set.set(k, values[(i + 3) % values.length]!));
    const removed = new Set(['v0', 'v1', '']);
    const next = await store.update(key, { set, removed, graceMs: 0, expectedVersion: 1 }, 60);
    const want = new Map(state);
    for (const k of removed) want.delete(k);
    for (const [k, v] of set) want.set(k, v);
    expect(sorted((await store.load(next!))!.state)).toEqual(sorted(want));
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('a key PostgreSQL text cannot hold (NUL, an unpaired surrogate) is a serialization error naming it; nothing is written', async () => {
    const { store, sql } = await fresh();
    for (const bad of ['a\u0000b', '\ud800', 'x\udc00']) {
      await expect(store.save(new Map([[bad, '1']]), 60)).rejects.toMatchObject({ constructor: SaveError, kind: 'serialization', status: 500, message: expect.stringContaining(JSON.stringify(bad)) });
    }
    const key = await store.save(new Map([['a', '1']]), 60);
    await expect(store.update(key, change({ '\ud800': 1 }), 60)).rejects.toMatchObject({ constructor: UpdateError, kind: 'serialization' });
    await expect(store.update(key, change({}, ['a\u0000']), 60)).rejects.toMatchObject({ constructor: UpdateError, kind: 'serialization' });
    // A value text holding a raw unpaired surrogate (JSON.parse takes it, UTF-8 has no form for it):
    // refused by the server as a serialization error, never silently turned into U+FFFD.
    await expect(store.save(new Map([['k', '"\ud800"']]), 60)).rejects.toMatchObject({ constructor: SaveError, kind: 'serialization' });
    await expect(store.update(key, { set: new Map([['k', '"\udfff"']]), removed: new Set(), graceMs: 0 }, 60)).rejects.toMatchObject({ constructor: UpdateError, kind: 'serialization' });
    expect((await schema.admin.query(`SELECT count(*)::int AS n, max(version) AS v FROM ${sql}`)).rows[0]).toEqual({ n: 1, v: 1 });
  });

  it('a session of 10 000 values saves, changes and loads', async () => {
    const { store } = await fresh();
    const key = await store.save(new Map(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, String(i)])), 60);
    const set = new Map(Array.from({ length: 10_000 }, (_, i) => [`n${i}`, String(-i)]));
    const removed = new Set(Array.from({ length: 9_000 }, (_, i) => `k${i}`));
    const next = await store.update(key, { set, removed, graceMs: 0, expectedVersion: 1 }, 60);
    const loaded = await store.load(next!);
    expect(loaded!.state.size).toBe(11_000);
    expect(loaded!.state.get('k9999')).toBe('9999');
    expect(loaded!.state.get('n9999')).toBe('-9999');
    expect(loaded!.state.has('k0')).toBe(false);
  });

  it('expiry and grace are judged on the database clock; expiresAt comes back in Node time', async () => {
    const { store, sql } = await fresh();
    const key = await store.save(new Map([['a', '1']]), 1.2345);
    const loaded = await store.load(key);
    expect(loaded!.expiresAt).toBeGreaterThan(Date.now() + 1000);
    expect(loaded!.expiresAt).toBeLessThanOrEqual(Date.now() + 1235);
    // An instant far in the past in created_at is the engine's business; the store hands it back as given.
    const createdAt = Date.UTC(2020, 0, 2, 3, 4, 5, 678);
    const old = await store.save(new Map([['a', '1']]), 60, { createdAt });
    expect((await store.load(old))!.createdAt).toBe(createdAt);
    // Expired by the database's clock: never returned, never updated, never extended.
    await schema.admin.query(`UPDATE ${sql} SET expires_at = now() - interval '1 ms' WHERE id = $1`, [idOf(key)]);
    expect(await store.load(key)).toBeNull();
    expect(await store.update(key, change({ a: 2 }), 60)).toBeNull();
    expect(await store.updateTtl(key, 60)).toBeNull();
  });
});

describe('PostgresStore statements', () => {
  it('every operation is one statement, sent as one round trip', async () => {
    const proxy = await PgProxy.start();
    const viaProxy = testPool({ max: 1 }, proxy.port);
    try {
      const table = schema.table();
      const store = new PostgresStore({ pool: viaProxy, table });
      await store.createTable();
      const ops: [string, () => Promise<unknown>][] = [];
      let key = '';
      let next: string | null = null;
      ops.push(['save', async () => (key = await store.save(new Map([['a', '1']]), 60))]);
      ops.push(['load', () => store.load(key)]);
      ops.push(['update (rotating, expected version, a removal)', async () => (next = await store.update(key, { ...rotation(store, key, { b: 2 }, { graceMs: 1000, expectedVersion: 1 }), removed: new Set(['a']) }, 60))]);
      ops.push(['update (version conflict)', () => store.update(next!, change({ c: 3 }, [], { expectedVersion: 1 }), 60).catch((e: unknown) => e)]);
      ops.push(['load (stale key)', () => store.load(key)]);
      ops.push(['updateTtl', () => store.updateTtl(next!, 120)]);
      ops.push(['delete', () => store.delete(next!)]);
      ops.push(['delete (nothing)', () => store.delete(next!)]);
      ops.push(['update (gone)', () => store.update(next!, change({ d: 4 }), 60)]);
      ops.push(['deleteExpired', () => store.deleteExpired()]);
      const seen: Record<string, { statements: string[]; roundTrips: number }> = {};
      for (const [name, op] of ops) {
        const before = proxy.roundTrips;
        const statements = await statementsRun(viaProxy, op);
        seen[name] = { statements, roundTrips: proxy.roundTrips - before };
      }
      const one = (statement: string) => ({ statements: [statement], roundTrips: 1 });
      expect(seen).toEqual({
        save: one('INSERT'),
        load: one('SELECT'),
        'update (rotating, expected version, a removal)': one('WITH'),
        'update (version conflict)': one('WITH'),
        'load (stale key)': one('SELECT'),
        updateTtl: one('UPDATE'),
        delete: one('DELETE'),
        'delete (nothing)': one('DELETE'),
        'update (gone)': one('WITH'),
        deleteExpired: one('DELETE'),
      });
      await schema.admin.query(`DROP TABLE ${quoted(table)}`);
    } finally {
      await viaProxy.end();
      await proxy.close();
    }
  });

  it('statements are prepared once per connection under per-table names; namedStatements: false prepares none', async () => {
    const one = testPool({ max: 1 });
    try {
      const prepared = async () => (await one.query(`SELECT name, statement FROM pg_prepared_statements ORDER BY name`)).rows as { name: string; statement: string }[];
      const [t1, t2] = [schema.table(), schema.table()];
      const stores = [new PostgresStore({ pool: one, table: t1 }), new PostgresStore({ pool: one, table: t2 })];
      for (const store of stores) {
        await store.createTable();
        // Twice each: the second time the connection runs what it prepared the first time.
        for (let i = 0; i < 2; i++) {
          const key = await store.save(new Map([['a', '1']]), 60);
          const next = await store.update(key, rotation(store, key, { a: 2 }, { graceMs: 1000, expectedVersion: 1 }), 60);
          expect((await store.load(next!))!.state.get('a')).toBe('2');
        }
      }
      const names = (await prepared()).map((r) => r.name);
      expect(names).toHaveLength(6);
      for (const name of names) expect(name).toMatch(/^latchkey_[0-9a-f]{12}_(load|save|update)$/);
      // Two tables on one pool: two sets of names, each set's statements naming one table.
      const tablesByTag = new Map<string, Set<string | undefined>>();
      for (const r of await prepared()) {
        const tag = r.name.slice(0, 'latchkey_'.length + 12);
        const table = [t1, t2].find((t) => r.statement.includes(quoted(t)));
        tablesByTag.set(tag, (tablesByTag.get(tag) ?? new Set()).add(table));
      }
      expect([...tablesByTag.values()].map((set) => [...set]).sort()).toEqual([[t1], [t2]].sort());

      await one.query('DEALLOCATE ALL');
      const unnamed = new PostgresStore({ pool: one, table: t1, namedStatements: false });
      const key = await unnamed.save(new Map([['b', '1']]), 60);
      expect(await unnamed.update(key, change({ b: 2 }, [], { expectedVersion: 1 }), 60)).toBe(key);
      expect((await unnamed.load(key))!.state.get('b')).toBe('2');
      expect(await prepared()).toEqual([]);
      for (const t of [t1, t2]) await schema.admin.query(`DROP TABLE ${quoted(t)}`);
    } finally {
      await one.end();
    }
  });

  it.each(frameworks.map((fw) => [fw.name, fw] as const))('statements per HTTP request on %s: anonymous 0, read 1, write 2, new 1', async (_name, fw) => {
    const proxy = await PgProxy.start();
    const viaProxy = testPool({ max: 2 }, proxy.port);
    const table = schema.table();
    try {
      const store = new PostgresStore({ pool: viaProxy, table });
      await store.createTable();
      const app = fw.app({ secret: SECRET, store });
      const jar = new Jar();
      jar.take(await request(app).get('/set?key=k&json=1'));
      const perRequest = async (path: string, cookie: string) => {
        const before = proxy.roundTrips;
        let res: request.Response | undefined;
        const statements = await statementsRun(viaProxy, async () => {
          res = await request(app).get(path).set('Cookie', cookie);
        });
        expect(res!.status).toBe(200);
        return { statements, roundTrips: proxy.roundTrips - before, res: res! };
      };
      const anonymous = await perRequest('/anon', '');
      const read = await perRequest('/read?key=k', jar.header());
      expect(read.res.body).toEqual({ value: 1, isNew: false, status: 'unchanged' });
      const write = await perRequest('/set?key=k&json=2', jar.header());
      expect(sessionCookie(write.res)).toBeDefined();
      const created = await perRequest('/set?key=k&json=3', '');
      const figures = Object.fromEntries(Object.entries({ anonymous, read, write, new: created }).map(([k, v]) => [k, { statements: v.statements, roundTrips: v.roundTrips }]));
      expect(figures).toEqual({
        anonymous: { statements: [], roundTrips: 0 },
        read: { statements: ['SELECT'], roundTrips: 1 },
        write: { statements: ['SELECT', 'WITH'], roundTrips: 2 },
        new: { statements: ['INSERT'], roundTrips: 1 },
      });
    } finally {
      await schema.admin.query(`DROP TABLE IF EXISTS ${quoted(table)}`);
      await viaProxy.end();
      await proxy.close();
    }
  });
});

describe('PostgresStore update under concurrency (row locks, READ COMMITTED)', () => {
  /** Runs `updates` while an admin transaction holds the session's row, releasing it once all of them wait. */
  async function behindLock<T>(table: string, id: string, updates: () => Promise<T>[]): Promise<PromiseSettledResult<T>[]> {
    const lock = await holdLock(schema.admin, `SELECT 1 FROM ${quoted(table)} WHERE id = $1 FOR UPDATE`, [id]);
    let pending: Promise<PromiseSettledResult<T>[]>;
    try {
      const started = updates();
      pending = Promise.allSettled(started);
      expect(await waitUntil(async () => (await lockWaiters(schema.admin, table)).length >= started.length)).toBe(true);
    } finally {
      await lock.release();
    }
    return pending;
  }

  it('two rotations from one key with one expected version: one wins, the other gets the actual version', async () => {
    const { store, table } = await fresh();
    const key = await store.save(new Map([['a', '1']]), 60);
    const a = rotation(store, key, { x: 1 }, { expectedVersion: 1 });
    const b = rotation(store, key, { y: 2 }, { expectedVersion: 1 });
    const [ra, rb] = await behindLock(table, idOf(key), () => [store.update(key, a, 60), store.update(key, b, 60)]);
    const results = [ra!, rb!];
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    // The loser's statement waited for the winner and re-read the row: version 2, not the snapshot's 1.
    expect(lost[0]!.reason).toBeInstanceOf(VersionConflictError);
    expect(lost[0]!.reason.actualVersion).toBe(2);
    const current = await store.load((won[0] as PromiseFulfilledResult<string>).value);
    expect(current).toMatchObject({ version: 2, stale: false });
    expect(current!.state.size).toBe(2);
  });

  it('a rotation that waited while another one rotated the key out applies as stale: saved, never rotated twice', async () => {
    const { store, table } = await fresh();
    const key = await store.save(new Map([['a', '1']]), 60);
    const a = rotation(store, key, { x: 1 });
    const b = rotation(store, key, { y: 2 });
    const settled = await behindLock(table, idOf(key), () => [store.update(key, a, 60), store.update(key, b, 60)]);
    const returned = settled.map((r) => (r as PromiseFulfilledResult<string | null>).value);
    // One rotated (returns its new key); the other found the presented key stale and kept it.
    expect(returned.filter((k) => k === key)).toHaveLength(1);
    const rotated = returned.find((k) => k !== key)!;
    expect([a.rotateTo, b.rotateTo]).toContain(rotated);
    const loaded = await store.load(rotated);
    expect(loaded).toMatchObject({ version: 3, stale: false });
    expect(Object.fromEntries(loaded!.state)).toEqual({ a: '1', x: '1', y: '2' });
    expect((await store.load(key))!.stale).toBe(true);
  });

  it('an update that waited out its budget behind a lock writes nothing, even when the lock goes later', async () => {
    // No statement_timeout: the server would run the statement whenever the lock went; the UPDATE's
    // own budget check is what keeps a write the store has reported as failed from landing later.
    const bare = testPool({ max: 2 });
    try {
      const { table, sql } = await fresh();
      const store = new PostgresStore({ pool: bare, table, queryTimeoutMs: 300 });
      const key = await store.save(new Map([['a', '1']]), 60);
      const lock = await holdLock(schema.admin, `SELECT 1 FROM ${sql} WHERE id = $1 FOR UPDATE`, [idOf(key)]);
      let failed: unknown;
      try {
        const started = Date.now();
        failed = await store.update(key, rotation(store, key, { b: 2 }, { expectedVersion: 1 }), 60).catch((e: unknown) => e);
        expect(Date.now() - started).toBeLessThan(1300);
        // The client gave up and closed its connection, but the server's backend still waits for the lock.
        expect((await lockWaiters(schema.admin, table)).length).toBe(1);
        await new Promise((r) => setTimeout(r, 150)); // let the budget run out on the server's clock too
      } finally {
        await lock.release();
      }
      expect(failed).toMatchObject({ constructor: UpdateError, kind: 'other', status: 503, cause: expect.objectContaining({ message: 'Query read timeout' }) });
      // The backend got the row after its budget: it wrote nothing and went away.
      expect(await waitUntil(async () => (await lockWaiters(schema.admin, table)).length === 0)).toBe(true);
      expect(await waitUntil(async () => (await schema.admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND position($1 in query) > 0 AND pid <> pg_backend_pid()`, [sql])).rows[0].n === 0)).toBe(true);
      expect((await schema.admin.query(`SELECT version, data FROM ${sql}`)).rows[0]).toEqual({ version: 1, data: { a: '1' } });
      expect(await store.load(key)).toMatchObject({ version: 1, stale: false });
    } finally {
      await bare.end();
    }
  });
});

describe('PostgresStore expired rows', () => {
  it('deleteExpired removes expired rows only, in batches, and reports how many', async () => {
    const { store, sql } = await fresh();
    const live = await store.save(new Map([['a', '1']]), 60);
    await schema.admin.query(
      `INSERT INTO ${sql} (id, hash, data, created_at, expires_at)
       SELECT 'expired' || i, '\\x00'::bytea, '{}', now(), now() - interval '1 second' FROM generate_series(1, 12345) i`,
    );
    const statements = await statementsRun(pool, async () => expect(await store.deleteExpired()).toBe(12_345));
    expect(statements).toEqual(['DELETE', 'DELETE', 'DELETE']); // 5000 + 5000 + 2345
    expect((await schema.admin.query(`SELECT count(*)::int AS n FROM ${sql}`)).rows[0].n).toBe(1);
    expect(await store.load(live)).not.toBeNull();
    expect(await store.deleteExpired()).toBe(0);
  });

  it('deleteExpired walks the expiry index', async () => {
    const { sql, table } = await fresh();
    await schema.admin.query(
      `INSERT INTO ${sql} (id, hash, data, created_at, expires_at)
       SELECT 'r' || i, '\\x00'::bytea, '{}', now(), now() + (i || ' seconds')::interval - interval '100 seconds' FROM generate_series(1, 20000) i`,
    );
    await schema.admin.query(`ANALYZE ${sql}`);
    const text = (new PostgresStore({ pool, table }) as unknown as { sql: { deleteExpired: string } }).sql.deleteExpired;
    const plan = (await schema.admin.query(`EXPLAIN ${text}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toContain(`Index Scan using ${table.split('.')[1]}_expires_at_idx`);
  });

  it('startExpiredDeletion runs it on its timer', async () => {
    const { store, sql } = await fresh();
    await store.save(new Map([['a', '1']]), 0.05);
    const removed = new Promise<number>((resolve) => {
      const inner = store.deleteExpired.bind(store);
      store.deleteExpired = async () => {
        const n = await inner();
        if (n > 0) resolve(n);
        return n;
      };
    });
    const stop = startExpiredDeletion(store, 50);
    let timer: NodeJS.Timeout | undefined;
    try {
      expect(await Promise.race([removed, new Promise((r) => (timer = setTimeout(() => r('timed out'), 5000)))])).toBe(1);
    } finally {
      clearTimeout(timer);
      stop();
    }
    expect((await schema.admin.query(`SELECT count(*)::int AS n FROM ${sql}`)).rows[0].n).toBe(0);
  });
});

describe('PostgresStore bad data and failures', () => {
  it('a row whose data is not an object of JSON texts is a LoadError of kind deserialization; a wrong validator learns nothing', async () => {
    const { store, sql } = await fresh();
    const key = await store.save(new Map([['a', '1']]), 60);
    for (const data of ['[1]', '"text"', 'null', '{"a": 1}', '{"a": {"b": "1"}}', '{"a": "{broken"}', '{"a": "NaN"}', '{"a": "01"}', '{"a": ""}']) {
      await schema.admin.query(`UPDATE ${sql} SET data = $1::jsonb`, [data]);
      await expect(store.load(key)).rejects.toMatchObject({ constructor: LoadError, kind: 'deserialization', code: 'LATCHKEY_LOAD_DESERIALIZATION' });
      const wrong = `${key.slice(0, 17)}${'A'.repeat(43)}`;
      expect(await store.load(wrong)).toBeNull();
      expect(await store.update(wrong, change({}), 60)).toBeNull();
      expect(await store.updateTtl(wrong, 60)).toBeNull();
    }
  });

  it('bad data over HTTP: 200 with a fresh session, a corrupt-session event, the row dropped', async () => {
    const { store, sql } = await fresh();
    const events: SessionEvent[] = [];
    const app = express5Framework.app({ secret: SECRET, store, onEvent: (e) => events.push(e) });
    for (const data of ['{"k": "{broken"}', '[]', '{"k": 7}']) {
      const c = sessionCookie(await request(app).get('/set?key=k&json=1'))!;
      await schema.admin.query(`UPDATE ${sql} SET data = $1::jsonb WHERE id = $2`, [data, c.value.slice(0, 16)]);
      const res = await request(app).get('/read?key=k').set('Cookie', `sid=${c.value}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
      expect(events.pop()).toMatchObject({ type: 'corrupt-session', error: { kind: 'deserialization' } });
      expect((await schema.admin.query(`SELECT count(*)::int AS n FROM ${sql} WHERE id = $1`, [c.value.slice(0, 16)])).rows[0].n).toBe(0);
    }
  });

  it('database errors become the operation\'s latchkey error, status 503, with the pg error as cause', async () => {
    const missing = new PostgresStore({ pool, table: `${schema.name}.does_not_exist` });
    const key = 'AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const cause = expect.objectContaining({ code: '42P01' });
    await expect(missing.load(key)).rejects.toMatchObject({ constructor: LoadError, kind: 'other', status: 503, code: 'LATCHKEY_LOAD', cause });
    await expect(missing.save(new Map([['a', '1']]), 60)).rejects.toMatchObject({ constructor: SaveError, kind: 'other', status: 503, cause });
    await expect(missing.update(key, change({ a: 1 }), 60)).rejects.toMatchObject({ constructor: UpdateError, kind: 'other', status: 503, cause });
    await expect(missing.updateTtl(key, 60)).rejects.toMatchObject({ constructor: UpdateError, status: 503, cause });
    await expect(missing.delete(key)).rejects.toMatchObject({ constructor: UpdateError, status: 503, cause });
    await expect(missing.deleteExpired()).rejects.toMatchObject({ constructor: UpdateError, status: 503, cause });
  });
});

describe('the examples on DATABASE_URL', () => {
  const root = join(__dirname, '..', '..');

  /** Starts an example's server.js on a free port with DATABASE_URL, its table in this file's schema. */
  async function start(dir: string, port: number): Promise<ChildProcess> {
    if (!existsSync(join(root, 'dist', 'store', 'postgres.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: PG_URL, PGOPTIONS: `-c search_path=${schema.name}`, PORT: String(port) };
    delete env.REDIS_URL;
    const child = spawn(process.execPath, [join(root, 'examples', dir, 'server.js')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${dir} did not start in 10 s:\n${out}`)), 10_000);
      const seen = (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('table latchkey_sessions ready') && out.includes('(PostgresStore)')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', seen);
      child.stderr!.on('data', seen);
      child.once('exit', (code) => reject(new Error(`${dir} exited with ${code}:\n${out}`)));
    });
    return child;
  }

  // Express signs in through passport on latchkey/express-session (cookie connect.sid, the user under
  // `passport`); Koa on latchkey/koa (cookie sid, the user under `user`).
  it.each([
    ['express-app', 'connect.sid', { passport: '{"user":"ada"}' }],
    ['koa-app', 'sid', { user: '"ada"' }],
  ])('%s keeps its sessions in PostgreSQL: hashes only, gone after logout', async (dir, cookie, user) => {
    const port = await freePort();
    const child = await start(dir, port);
    try {
      const base = `http://127.0.0.1:${port}`;
      const table = `"${schema.name}".latchkey_sessions`;
      const jar = new Jar(cookie);
      const go = async (req: request.Test) => {
        const res = await req.set('Cookie', jar.header());
        jar.take(res);
        return res;
      };
      expect((await go(request(base).get('/'))).text).toContain('<b id="visits">1</b>');
      expect((await go(request(base).get('/'))).text).toContain('<b id="visits">2</b>');
      await go(request(base).post('/login').type('form').send({ user: 'ada', password: 'demo' }));
      await go(request(base).post('/cart').type('form').send({ item: 'tea' }));
      expect((await go(request(base).get('/cart'))).text).toContain('<li>tea</li>');
      const id = decodeURIComponent(jar.value!).slice(0, 16);
      const { rows } = await schema.admin.query(`SELECT data, t::text AS dump FROM ${table} t WHERE id = $1`, [id]);
      expect(rows).toHaveLength(1);
      expect(rows[0].data).toEqual({ visits: '2', ...user, cart: '["tea"]' });
      const validator = decodeURIComponent(jar.value!).slice(17, 60);
      expect(rows[0].dump.includes(validator)).toBe(false);
      await go(request(base).post('/logout'));
      expect(jar.value).toBeUndefined();
      expect((await schema.admin.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = $1`, [id])).rows[0].n).toBe(0);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }, 30_000);
});
