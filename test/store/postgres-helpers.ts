/**
 * Helpers of the PostgresStore tests (kept next to them, not in test/support): a throwaway schema
 * per test file on the real server, a counter of the statements a Pool runs, a TCP proxy in front
 * of the server that can refuse, hang and cut connections and counts round trips, and bounded waits.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Pool, type PoolConfig } from 'pg';

/** The server every PostgresStore test runs against (trust auth, database `test`). */
export const PG_URL = process.env.LATCHKEY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const target = new URL(PG_URL);

let schemas = 0;

/** A schema of its own for one test file, `latchkey_test_<pid>_<n>`, holding one table per store. */
export class TestSchema {
  readonly name = `latchkey_test_${process.pid}_${++schemas}`;
  readonly admin = new Pool({ connectionString: PG_URL, max: 4 });
  private tables = 0;

  constructor() {
    this.admin.on('error', () => {}); // an admin connection a test terminated on purpose
  }

  async create(): Promise<void> {
    await this.admin.query(`CREATE SCHEMA "${this.name}"`);
  }

  /** A fresh table name in this schema (not created). */
  table(): string {
    return `${this.name}.s${++this.tables}`;
  }

  /** Drops the schema with everything in it and closes the admin pool. */
  async drop(): Promise<void> {
    try {
      await this.admin.query(`DROP SCHEMA IF EXISTS "${this.name}" CASCADE`);
    } finally {
      await this.admin.end();
    }
  }
}

/** `schema.name` as SQL, quoted as the store quotes it. */
export const quoted = (table: string): string => table.split('.').map((p) => `"${p}"`).join('.');

/** A Pool on the test server (or through `port`), with an 'error' listener that keeps what it hears. */
export function testPool(config: PoolConfig = {}, port?: number): Pool & { errors: Error[] } {
  const url = new URL(PG_URL);
  if (port !== undefined) (url.hostname = '127.0.0.1'), (url.port = String(port));
  // (A connectionString wins over host and port options, so the port goes into the URL.)
  const pool = new Pool({ connectionString: url.href, max: 5, ...config }) as Pool & { errors: Error[] };
  pool.errors = [];
  // Idle connections that die (the proxy cut them, a backend was terminated) are reported here;
  // without a listener node-postgres's 'error' event would crash the test process.
  pool.on('error', (err) => pool.errors.push(err));
  return pool;
}

/**
 * Counts what a Pool is asked to run: a wrapper around `pool.query` that records the first SQL
 * word of each statement (SELECT, INSERT, WITH, UPDATE, DELETE) while `fn` runs.
 */
export async function statementsRun(pool: Pool, fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const query = pool.query;
  (pool as { query: unknown }).query = function (this: Pool, ...args: unknown[]) {
    const config = args[0] as string | { text: string };
    seen.push((typeof config === 'string' ? config : config.text).trimStart().split(/\s/, 1)[0]!.toUpperCase());
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  };
  try {
    await fn();
  } finally {
    pool.query = query;
  }
  return seen;
}

import { freePort } from '../support/redis-server';

export { freePort };

/**
 * A TCP proxy on a loopback port in front of the test server. `close()` stops listening (new
 * connections are refused, as with a server that is down) and cuts every connection; `open()`
 * listens again on the same port (the server is back); `pause()` stops moving bytes either way
 * while connections stay open and new ones are accepted (a hung server); `cut()` drops every
 * connection but keeps listening (a server that restarted).
 *
 * It also reads the client side of the protocol and counts the messages that end a round trip,
 * Sync (extended protocol) and Query (simple protocol): the server answers each with ReadyForQuery.
 */
export class PgProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private paused = false;
  /** Sync + Query messages sent by clients so far. */
  roundTrips = 0;

  private constructor(readonly port: number) {}

  static async start(): Promise<PgProxy> {
    const proxy = new PgProxy(await freePort());
    await proxy.open();
    return proxy;
  }

  /** Listens on the proxy's port again; a no-op while it listens. */
  open(): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.cut();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  cut(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  pause(): void {
    this.paused = true;
    for (const [a, b] of this.pairs) (a.pause(), b.pause());
  }

  resume(): void {
    this.paused = false;
    for (const [a, b] of this.pairs) (a.resume(), b.resume());
  }

  /** How many client connections are open through the proxy. */
  get connections(): number {
    return this.pairs.size;
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    for (const s of pair) s.on('error', end).on('close', end);
    if (this.paused) (client.pause(), upstream.pause());
    const count = this.counter();
    client.on('data', (chunk: Buffer) => {
      count(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
  }

  /** A parser of one connection's frontend stream: untyped startup packets first, then typed messages. */
  private counter(): (chunk: Buffer) => void {
    let buf = Buffer.alloc(0);
    let startup = true;
    return (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (startup) {
          if (buf.length < 8) return;
          const length = buf.readInt32BE(0);
          if (buf.length < length) return;
          const code = buf.readInt32BE(4);
          buf = buf.subarray(length);
          // SSLRequest / GSSENCRequest are followed by another untyped packet.
          if (code !== 80877103 && code !== 80877104) startup = false;
          continue;
        }
        if (buf.length < 5) return;
        const length = buf.readInt32BE(1);
        if (buf.length < 1 + length) return;
        const type = String.fromCharCode(buf[0]!);
        if (type === 'S' || type === 'Q') this.roundTrips++;
        buf = buf.subarray(1 + length);
      }
    };
  }
}

/** Waits (polling, at most `ms`) until `probe` answers truthy; returns its last answer. */
export async function waitUntil<T>(probe: () => Promise<T>, ms = 5000, every = 20): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Backends of the test server running a statement on `table` and waiting for a lock. */
export async function lockWaiters(admin: Pool, table: string): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND position($1 in query) > 0`,
    [quoted(table)],
  );
  return rows.map((r) => r.pid);
}

/** Backends still running a statement that names `table` (besides the asking one). */
export async function activeOn(admin: Pool, table: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND position($1 in query) > 0`,
    [quoted(table)],
  );
  return rows[0]!.n;
}

/** An admin transaction holding a lock until `release()`: a row lock (`FOR UPDATE`) or the whole table. */
export async function holdLock(admin: Pool, sql: string, values: unknown[] = []): Promise<{ release(): Promise<void> }> {
  const client = await admin.connect();
  await client.query('BEGIN');
  await client.query(sql, values);
  return {
    async release() {
      try {
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    },
  };
}
