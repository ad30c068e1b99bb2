/**
 * `latchkey/postgres`: a session store on PostgreSQL through a node-postgres `Pool` the
 * application creates. One row per session; every operation is one statement, sent as one
 * round trip (`pool.query`, the extended protocol's Parse/Bind/Execute/Sync in one write).
 * The statements and the value encoding are in `postgres-sql.ts`.
 */
import { ConfigError, LoadError, SaveError, SessionError, UpdateError, VersionConflictError } from '../errors';
import { newId, newValidator, rotatedKey, splitKey } from './keys';
import { decodeData, jsonObject, type Operation, statementNames, statements, tableNames, unstorableKey, DELETE_BATCH } from './postgres-sql';
import type { LoadedSession, SessionChange, SessionMeta, SessionSettings, SessionStore } from './types';

/**
 * What the store needs of a pool: `query` with a config object, as node-postgres's `Pool` (and
 * `Client`) has it. Typed structurally so `latchkey/postgres` needs no `@types/pg`, and a wrapper
 * (instrumentation, a counting test double) fits as well.
 *
 * @example
 * ```ts
 * import { Pool } from 'pg';
 * const pool: PostgresPool = new Pool({ connectionString: process.env.DATABASE_URL });
 * ```
 */
export interface PostgresPool {
  query(config: { name?: string; text: string; values?: unknown[]; query_timeout?: number }): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /** A node-postgres `Pool`, created and owned by the application (see the README for its options). */
  pool: PostgresPool;
  /**
   * The table: `name` or `schema.name`, each a plain identifier, always double-quoted in SQL (so
   * its case is kept). Default `latchkey_sessions`.
   */
  table?: string;
  /**
   * How long one statement may take, in ms, from the moment it is sent (node-postgres's
   * `query_timeout`, per query): a statement that takes longer fails (503) and its connection is
   * closed rather than returned to the pool, so a hung server never holds the pool's connections.
   * An update that waited that long for a row lock writes nothing. Keep it below the middleware's
   * `storeTimeoutMs`. Default 1500.
   */
  queryTimeoutMs?: number;
  /**
   * Prepare each statement once per connection, under a name (default true): planning the UPDATE
   * costs more than running it. Set false behind a pooler that cannot keep prepared statements:
   * PgBouncer before 1.21 in transaction mode, or 1.21+ with `max_prepared_statements = 0`.
   */
  namedStatements?: boolean;
}

interface LoadRow {
  stale: boolean;
  version: number;
  data: string;
  ttl: number | null;
  persistent: boolean | null;
  created_ms: number;
  left_ms: number;
}
interface UpdateRow {
  version: number;
  rotate: boolean;
  updated: boolean;
}

/** The validator hash as the table keeps it: 16 raw bytes (bytea), not text. */
const raw = (hash: string): Buffer => Buffer.from(hash, 'latin1');
/** TTL seconds (fractional allowed) as milliseconds, at least 1. */
const ms = (ttl: number): number => Math.max(1, Math.ceil(ttl * 1000));
const settingsOf = (row: LoadRow): SessionSettings | undefined =>
  row.ttl === null && row.persistent === null
    ? undefined
    : { ...(row.ttl !== null && { ttl: Number(row.ttl) }), ...(row.persistent !== null && { persistent: row.persistent }) };

/**
 * Session store on PostgreSQL (node-postgres). `pg` is an optional peer dependency: only apps that
 * use this entry point need it installed. The table is created by {@link PostgresStore.createTable}
 * or by a migration with the same SQL (README, "PostgresStore"); expired rows are never returned
 * and are removed by {@link PostgresStore.deleteExpired} (run it with `startExpiredDeletion`).
 *
 * Bounded waits: every statement carries `queryTimeoutMs`; give the Pool a
 * `connectionTimeoutMillis` (a query that cannot get a connection in time is dropped, not run
 * late), a `statement_timeout` (the server itself gives up, freeing its backend and locks), and an
 * `'error'` listener (an idle connection that dies emits one; without a listener Node exits).
 *
 * @example
 * ```ts
 * import { Pool } from 'pg';
 * import { startExpiredDeletion } from 'latchkey';
 * import { session } from 'latchkey/express';
 * import { PostgresStore } from 'latchkey/postgres';
 *
 * const pool = new Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 1000, statement_timeout: 1000 });
 * pool.on('error', (err) => log.warn(err));
 * const store = new PostgresStore({ pool });
 * await store.createTable();
 * startExpiredDeletion(store, 15 * 60_000);
 * app.use(session({ secret, store }));
 * ```
 */
export class PostgresStore implements SessionStore {
  readonly stateless = false;
  private readonly pool: PostgresPool;
  private readonly timeoutMs: number;
  private readonly sql: ReturnType<typeof statements>;
  private readonly names: ReturnType<typeof statementNames> | undefined;

  /** @throws ConfigError when `pool` has no `query`, `table` is not a plain identifier, or `queryTimeoutMs` is not a positive number. */
  constructor(options: PostgresStoreOptions) {
    if (!options || typeof options.pool?.query !== 'function') throw new ConfigError('PostgresStore needs a node-postgres Pool: { pool }');
    const timeout = options.queryTimeoutMs ?? 1500;
    if (!(typeof timeout === 'number' && timeout > 0 && Number.isFinite(timeout))) throw new ConfigError('PostgresStore queryTimeoutMs must be a positive number of milliseconds');
    this.pool = options.pool;
    this.timeoutMs = timeout;
    const names = tableNames(options.table === undefined ? 'latchkey_sessions' : options.table);
    this.sql = statements(names);
    if (options.namedStatements !== undefined && typeof options.namedStatements !== 'boolean') throw new ConfigError('PostgresStore namedStatements must be a boolean');
    this.names = options.namedStatements === false ? undefined : statementNames(names);
  }

  /**
   * Creates the table and its expiry index if they are missing; safe to call at every startup, from
   * several instances at once. The schema of a `schema.name` table must exist.
   * pg's own error is thrown as is when it fails.
   */
  async createTable(): Promise<void> {
    await this.pool.query({ text: this.sql.createTable });
  }

  /**
   * @throws LoadError (kind `deserialization`) when the row's data is not an object of JSON texts
   * (the engine then serves a fresh session, reports it and deletes the row); kind `other` (503,
   * the pg error as `cause`) when the database fails.
   */
  async load(key: string): Promise<LoadedSession | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const { rows } = await this.run<LoadRow>('load', [parts.id, raw(parts.hash)]);
    const row = rows[0];
    if (!row) return null;
    const version = Number(row.version);
    if (!Number.isInteger(version) || typeof row.data !== 'string') throw new LoadError('deserialization', `session record ${parts.id} has no usable version or data`);
    return {
      state: decodeData(row.data, parts.id),
      version,
      createdAt: Math.round(Number(row.created_ms)),
      expiresAt: Date.now() + Math.max(0, Number(row.left_ms)),
      stale: row.stale,
      settings: settingsOf(row),
    };
  }

  /** @throws SaveError (kind `serialization`) for a key PostgreSQL cannot store (NUL, an unpaired surrogate). */
  async save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta): Promise<string> {
    this.storable('save', state.keys());
    const s = meta?.settings;
    const data = jsonObject(state);
    const createdAt = meta?.createdAt ?? Date.now();
    // 96 random bits do not collide in practice; the create-only INSERT makes "never overwrites" a
    // guarantee, and the loop gives a taken id another draw.
    for (;;) {
      const id = newId();
      const { key, hash } = newValidator(id);
      const values = [id, raw(hash), data, s?.ttl ?? null, s?.persistent ?? null, createdAt, ms(ttl)];
      const { rowCount } = await this.run('save', values);
      if (rowCount === 1) return key;
    }
  }

  /**
   * @throws VersionConflictError (carrying the version the row has) when `change.expectedVersion` is given and differs.
   * @throws UpdateError (kind `other`, 503) when the database fails, or the row stayed locked past `queryTimeoutMs`.
   */
  async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const next = change.rotateTo === undefined ? null : splitKey(change.rotateTo);
    if (next !== null && next.id !== parts.id) throw new TypeError('rotateTo must name the same record');
    this.storable('update', change.set.keys(), change.removed);
    const s = change.settings;
    const values = [
      parts.id,
      raw(parts.hash),
      jsonObject(change.set),
      JSON.stringify([...change.removed]),
      change.expectedVersion ?? null,
      s !== undefined,
      s?.ttl ?? null,
      s?.persistent ?? null,
      next ? raw(next.hash) : null,
      change.graceMs,
      ms(ttl),
      this.timeoutMs,
    ];
    const { rows } = await this.run<UpdateRow>('update', values);
    const row = rows[0];
    if (!row) return null;
    if (!row.updated) {
      const actual = Number(row.version);
      if (change.expectedVersion !== undefined && change.expectedVersion !== actual) throw new VersionConflictError(change.expectedVersion, actual);
      throw new UpdateError('other', `session record ${parts.id} stayed locked longer than ${this.timeoutMs} ms; nothing was written`);
    }
    // A stale key never rotates (the statement keeps the hash): the client keeps the key it has.
    return row.rotate ? change.rotateTo! : key;
  }

  async updateTtl(key: string, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const { rowCount } = await this.run('updateTtl', [parts.id, raw(parts.hash), ms(ttl)]);
    return rowCount === 1 ? key : null;
  }

  /** Deletes the row, and with it every key of the session still inside its grace. */
  async delete(key: string): Promise<void> {
    const parts = splitKey(key);
    if (parts) await this.run('delete', [parts.id]);
  }

  /**
   * Removes expired rows and returns how many, in batches of a few thousand (one statement each,
   * through the expiry index) until one comes back short, so a large backlog never needs one long
   * statement that a `statement_timeout` would cut off every time.
   */
  async deleteExpired(): Promise<number> {
    let total = 0;
    for (;;) {
      const { rowCount } = await this.run('deleteExpired', []);
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < DELETE_BATCH) return total;
    }
  }

  rotatedKey(key: string, seed: string): string | null {
    return rotatedKey(key, seed);
  }

  recordId(key: string): string | null {
    return splitKey(key)?.id ?? null;
  }

  /** The operation's one statement; a pg failure becomes its latchkey error (status 503) with pg's error as `cause`. */
  private async run<R>(op: Operation, values: unknown[]): Promise<{ rows: R[]; rowCount: number | null }> {
    try {
      return (await this.pool.query({ name: this.names?.[op], text: this.sql[op], values, query_timeout: this.timeoutMs })) as { rows: R[]; rowCount: number | null };
    } catch (err) {
      throw failure(op, err);
    }
  }

  /** Keys PostgreSQL text cannot hold fail here, named, instead of as an unnamed error from the server. */
  private storable(op: 'save' | 'update', ...keys: Iterable<string>[]): void {
    for (const list of keys) {
      const bad = unstorableKey(list);
      if (bad === undefined) continue;
      const message = `session key ${JSON.stringify(bad)} holds a NUL or an unpaired surrogate, which PostgreSQL text cannot store`;
      throw op === 'save' ? new SaveError('serialization', message) : new UpdateError('serialization', message);
    }
  }
}

// Data PostgreSQL refused as text or JSON (22P05 untranslatable, 22P02 bad JSON, 22021 bad byte sequence).
const SERIALIZATION_CODES = new Set(['22P05', '22P02', '22021']);

function failure(op: Operation, err: unknown): SessionError {
  if (err instanceof SessionError) return err;
  const message = `PostgresStore ${op} failed: ${err instanceof Error ? err.message : String(err)}`;
  const code = (err as { code?: unknown } | null)?.code;
  const kind = typeof code === 'string' && SERIALIZATION_CODES.has(code) ? 'serialization' : 'other';
  if (op === 'load') return new LoadError('other', message, { cause: err });
  if (op === 'save') return new SaveError(kind, message, { cause: err });
  return new UpdateError(kind, message, { cause: err });
}
