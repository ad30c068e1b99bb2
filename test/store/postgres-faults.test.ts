/**
 * A PostgreSQL that refuses, hangs, kills a backend mid-request and holds locks, under a running
 * app on Express and on Koa: requests fail with 503 within storeTimeoutMs + 1 s and send no
 * Set-Cookie, the process stays up, no connection stays stuck, and the same pool serves the same
 * cookie again once the fault is gone, without a restart. The app reaches the real server through
 * a TCP proxy the test controls (PgProxy); an admin pool on the server itself takes the locks
 * and terminates backends. This file works in its own schema, dropped in afterAll.
 */
import request from 'supertest';
import type { RequestListener } from 'node:http';
import { LoadError } from 'latchkey';
import { PostgresStore } from 'latchkey/postgres';
import { sessionCookie } from '../support/cookies';
import { express5Framework, type Framework, koa3Framework, SECRET } from '../support/harness';
import { activeOn, holdLock, lockWaiters, PgProxy, quoted, TestSchema, testPool, waitUntil } from './postgres-helpers';

const STORE_TIMEOUT = 800;
const BOUND = STORE_TIMEOUT + 1000;
/** The README's Pool options, scaled to the short test deadline (statement_timeout < queryTimeoutMs < storeTimeoutMs). */
const README_POOL = { max: 3, connectionTimeoutMillis: 400, statement_timeout: 500, idleTimeoutMillis: 30_000 };
const QUERY_TIMEOUT = 600;

const schema = new TestSchema();
beforeAll(() => schema.create());
afterAll(() => schema.drop());

/**
 * Sends `path` with `cookie` and checks the failure: 503 with one of `codes`, within the bound, and
 * no Set-Cookie but the one a given-up rotating write carries (its next key and the presented one,
 * `next~presented`, which opens the session whatever the store did with the write).
 */
async function fails(app: RequestListener, path: string, cookie: string, codes: RegExp): Promise<void> {
  const started = Date.now();
  const res = await request(app).get(path).set('Cookie', cookie);
  expect({ path, took: Date.now() - started < BOUND }).toEqual({ path, took: true });
  expect({ path, status: res.status, error: res.body.error }).toEqual({ path, status: 503, error: expect.stringMatching(codes) });
  const carried = sessionCookie(res);
  if (carried !== undefined) expect({ path, compound: carried.value.includes('~'), existing: cookie !== '' && path.startsWith('/set') }).toEqual({ path, compound: true, existing: true });
}

/** Polls (at most 10 s) until a read with `cookie` answers 200. */
async function recovered(app: RequestListener, cookie: string): Promise<request.Response> {
  return waitUntil(async () => {
    const res = await request(app).get('/read?key=k').set('Cookie', cookie);
    return res.status === 200 ? res : undefined;
  }, 10_000, 100) as Promise<request.Response>;
}

const SERVED = { value: 42, isNew: false, status: 'unchanged' };

describe.each([express5Framework, koa3Framework])('a failing PostgreSQL under $name, with the README pool options', (fw: Framework) => {
  let proxy: PgProxy;
  let pool: ReturnType<typeof testPool>;
  let store: PostgresStore;
  let table: string;
  let app: RequestListener;
  let cookie: string;
  let locks: { release(): Promise<void> }[] = [];

  async function seed(value = 42): Promise<string> {
    const res = await request(app).get(`/set?key=k&json=${value}`);
    expect(res.status).toBe(200);
    return `sid=${sessionCookie(res)!.value}`;
  }
  const idOf = (c: string) => c.slice(4, 20);
  async function lock(sql: string, values: unknown[] = []) {
    const l = await holdLock(schema.admin, sql, values);
    locks.push(l);
    return l;
  }

  beforeAll(async () => {
    proxy = await PgProxy.start();
    pool = testPool(README_POOL, proxy.port);
    table = schema.table();
    store = new PostgresStore({ pool, table, queryTimeoutMs: QUERY_TIMEOUT });
    await store.createTable();
    app = fw.app({ secret: SECRET, store, storeTimeoutMs: STORE_TIMEOUT });
  });

  beforeEach(async () => {
    cookie = await seed();
  });

  afterEach(async () => {
    // A failed case must not leave the next one a locked table or a dead proxy.
    for (const l of locks) await l.release().catch(() => {});
    locks = [];
    proxy.resume();
    await proxy.open();
  });

  afterAll(async () => {
    await pool?.end();
    await proxy?.close();
  });

  it('refused (nothing listens on the port): 503 at once, no Set-Cookie; the server back on that port: the same cookie, no restart', async () => {
    const errorsBefore = pool.errors.length;
    await proxy.close();
    for (let i = 0; i < 3; i++) await fails(app, '/read?key=k', cookie, /^LATCHKEY_LOAD$/);
    await fails(app, '/set?key=k&json=1', '', /^LATCHKEY_SAVE$/);
    await expect(store.load(`${idOf(cookie)}.${'A'.repeat(43)}`)).rejects.toMatchObject({ constructor: LoadError, kind: 'other', cause: expect.objectContaining({ code: 'ECONNREFUSED' }) });
    // The idle connection the proxy cut was reported on the pool's 'error' listener, not thrown.
    expect(pool.errors.length).toBeGreaterThan(errorsBefore);
    await proxy.open();
    const back = await request(app).get('/read?key=k').set('Cookie', cookie);
    expect(back.body).toEqual(SERVED);
    const written = await request(app).get('/set?key=k&json=43').set('Cookie', cookie);
    expect(written.status).toBe(200);
    expect(sessionCookie(written)).toBeDefined();
  });

  it('hung (the proxy stops moving bytes): 503 within storeTimeoutMs + 1 s, nothing queued or stuck; resumed: the same session', async () => {
    proxy.pause();
    // Twice the pool's size at once: the queued ones give up after connectionTimeoutMillis and are dropped, not run later.
    await Promise.all(Array.from({ length: 6 }, () => fails(app, '/read?key=k', cookie, /^LATCHKEY_(LOAD|STORE_TIMEOUT)$/)));
    expect(pool.waitingCount).toBe(0);
    expect(pool.totalCount).toBeLessThanOrEqual(README_POOL.max);
    proxy.resume();
    expect((await recovered(app, cookie)).body).toEqual(SERVED);
  });

  it('a backend killed mid-request (pg_terminate_backend): 503 at once, no Set-Cookie, nothing written; the pool replaces the connection', async () => {
    const failures: unknown[] = [];
    const update = store.update.bind(store);
    store.update = (...args) => update(...args).catch((err: unknown) => Promise.reject((failures.push(err), err)));
    try {
      // The request's UPDATE waits behind an admin's row lock: a statement in flight to kill.
      const held = await lock(`SELECT 1 FROM ${quoted(table)} WHERE id = $1 FOR UPDATE`, [idOf(cookie)]);
      const pending = fails(app, '/set?key=k&json=43', cookie, /^LATCHKEY_UPDATE$/);
      const waiting = await waitUntil(() => lockWaiters(schema.admin, table).then((p) => (p.length ? p : undefined)));
      expect(waiting).toHaveLength(1);
      await schema.admin.query('SELECT pg_terminate_backend($1)', [waiting![0]]);
      await pending;
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({ status: 503, cause: expect.objectContaining({ code: '57P01' }) }); // admin_shutdown
      await held.release();
    } finally {
      store.update = update;
    }
    expect((await request(app).get('/read?key=k').set('Cookie', cookie)).body).toEqual(SERVED);
    const written = await request(app).get('/set?key=k&json=43').set('Cookie', cookie);
    expect(written.status).toBe(200);
    expect((await request(app).get('/read?key=k').set('Cookie', `sid=${sessionCookie(written)!.value}`)).body.value).toBe(43);
  });

  it('a row locked by another transaction: writes get 503 in time, the server drops the waits, other sessions are served meanwhile; unlocked: the same cookie works', async () => {
    const other = await seed(7);
    const held = await lock(`SELECT 1 FROM ${quoted(table)} WHERE id = $1 FOR UPDATE`, [idOf(cookie)]);
    await Promise.all(Array.from({ length: 4 }, (_, i) => fails(app, `/set?key=w${i}&json=1`, cookie, /^LATCHKEY_(UPDATE|STORE_TIMEOUT)$/)));
    // statement_timeout ends the server's waits too: no backend is left queued on the lock.
    expect(await waitUntil(async () => (await lockWaiters(schema.admin, table)).length === 0, 3000)).toBe(true);
    // The pool is not exhausted by the failed writes: another session reads and writes while the lock is held.
    expect((await request(app).get('/read?key=k').set('Cookie', other)).body).toEqual({ ...SERVED, value: 7 });
    expect((await request(app).get('/set?key=x&json=1').set('Cookie', other)).status).toBe(200);
    await held.release();
    expect((await request(app).get('/read?key=k').set('Cookie', cookie)).body).toEqual(SERVED);
    const dump = await request(app).get('/dump').set('Cookie', cookie);
    expect(dump.body).toEqual({ k: 42 }); // none of the failed writes landed
    const written = await request(app).get('/set?key=k&json=44').set('Cookie', cookie);
    expect(written.status).toBe(200);
    expect(sessionCookie(written)).toBeDefined();
  });

  it('the table locked (LOCK TABLE … ACCESS EXCLUSIVE): reads and new sessions get 503 in time; unlocked: served', async () => {
    const held = await lock(`LOCK TABLE ${quoted(table)} IN ACCESS EXCLUSIVE MODE`);
    await fails(app, '/read?key=k', cookie, /^LATCHKEY_(LOAD|STORE_TIMEOUT)$/);
    await fails(app, '/set?key=k&json=1', '', /^LATCHKEY_(SAVE|STORE_TIMEOUT)$/);
    expect(await waitUntil(async () => (await activeOn(schema.admin, table)) === 0, 3000)).toBe(true);
    await held.release();
    expect((await request(app).get('/read?key=k').set('Cookie', cookie)).body).toEqual(SERVED);
  });
});

describe('a failing PostgreSQL under express 5, with a bare pool (no pool timeouts: the store\'s queryTimeoutMs and the engine\'s deadline alone)', () => {
  let proxy: PgProxy;
  let pool: ReturnType<typeof testPool>;
  let table: string;
  let app: RequestListener;
  let cookie: string;

  beforeAll(async () => {
    proxy = await PgProxy.start();
    pool = testPool({ max: 3 }, proxy.port);
    table = schema.table();
    const store = new PostgresStore({ pool, table }); // queryTimeoutMs 1500 by default, above storeTimeoutMs here
    await store.createTable();
    app = express5Framework.app({ secret: SECRET, store, storeTimeoutMs: STORE_TIMEOUT });
    const res = await request(app).get('/set?key=k&json=42');
    cookie = `sid=${sessionCookie(res)!.value}`;
  });

  afterAll(async () => {
    proxy?.resume();
    await pool?.end();
    await proxy?.close();
  });

  it('hung: 503 LATCHKEY_STORE_TIMEOUT within storeTimeoutMs + 1 s; resumed: the pool recovers by itself', async () => {
    proxy.pause();
    try {
      await Promise.all(Array.from({ length: 4 }, () => fails(app, '/read?key=k', cookie, /^LATCHKEY_STORE_TIMEOUT$/)));
    } finally {
      proxy.resume();
    }
    expect((await recovered(app, cookie)).body).toEqual(SERVED);
  });

  it('a row lock outlasting the deadline: 503, and the write does not land when the lock goes (the UPDATE\'s budget)', async () => {
    const held = await holdLock(schema.admin, `SELECT 1 FROM ${quoted(table)} WHERE id = $1 FOR UPDATE`, [cookie.slice(4, 20)]);
    try {
      await fails(app, '/set?key=late&json=1', cookie, /^LATCHKEY_STORE_TIMEOUT$/);
      // No statement_timeout: the backend still waits. Keep the lock past the store's 1.5 s budget.
      expect((await lockWaiters(schema.admin, table)).length).toBe(1);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      await held.release();
    }
    expect(await waitUntil(async () => (await activeOn(schema.admin, table)) === 0)).toBe(true);
    expect((await request(app).get('/dump').set('Cookie', cookie)).body).toEqual({ k: 42 });
  });
});

describe.each([express5Framework, koa3Framework])('40 parallel requests on one session under $name', (fw: Framework) => {
  let pool: ReturnType<typeof testPool>;
  let table: string;
  beforeAll(() => {
    pool = testPool({ max: 10, connectionTimeoutMillis: 2000, statement_timeout: 1000 });
    table = schema.table();
  });
  afterAll(async () => {
    await schema.admin.query(`DROP TABLE IF EXISTS ${quoted(table)}`);
    await pool?.end();
  });

  it('each setting a different key: all 40 kept, every cookie sent opens the session', async () => {
    const store = new PostgresStore({ pool, table });
    await store.createTable();
    const app = fw.app({ secret: SECRET, store });
    const seeded = await request(app).get('/set?key=base&json=0');
    const cookie = `sid=${sessionCookie(seeded)!.value}`;
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => request(app).get(`/set?key=p${i}&json=${i}`).set('Cookie', cookie)));
    expect(responses.map((r) => r.status)).toEqual(Array(40).fill(200));
    const sent = responses.map((r) => sessionCookie(r)).filter((c) => c !== undefined);
    expect(sent.length).toBeGreaterThanOrEqual(1);
    for (const c of [...sent.map((s) => `sid=${s!.value}`), cookie]) {
      const dump = await request(app).get('/dump').set('Cookie', c);
      expect(dump.body).toEqual(Object.fromEntries([['base', 0], ...Array.from({ length: 40 }, (_, i) => [`p${i}`, i])]));
    }
    const { rows } = await schema.admin.query(`SELECT version FROM ${quoted(table)} WHERE id = $1`, [cookie.slice(4, 20)]);
    expect(rows[0].version).toBe(41); // one version per committed request, none lost
  });
});
