/**
 * The SQL of {@link PostgresStore} and the encoding of what it sends and reads, kept apart from
 * the class so each statement can be read (and reviewed) as one piece of text.
 *
 * Time: every instant the database compares (expiry, the end of a grace) is taken from the
 * database's clock (`now()`, one instant per statement), and Node sends only durations (TTL,
 * grace, budget in milliseconds). Several app instances whose clocks drift apart share one
 * table, and `deleteExpired` judges expiry with the clock `load` uses. The one instant Node
 * supplies is `created_at`, the engine's own fact, which only the engine compares.
 */
import { createHash } from 'node:crypto';
import { ConfigError, LoadError } from '../errors';
import type { SessionState } from './types';

/** A plain SQL identifier; PostgreSQL keeps at most 63 bytes of one (longer ones are cut, silently). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const INDEX_SUFFIX = '_expires_at_idx';

/** The table a store works on: its quoted name and the names derived from it. */
export interface TableNames {
  /** `"name"` or `"schema"."name"`, safe to put into SQL text. */
  qualified: string;
  /** The expiry index, quoted (an index lives in its table's schema, so it takes no schema). */
  index: string;
}

/**
 * Validates `table` (`name` or `schema.name`, each a plain identifier) and quotes it. Quoting
 * keeps the name exactly as written: `Sessions` is `"Sessions"`, not `sessions`.
 * @throws ConfigError for anything else, so no text from options ever reaches SQL unquoted.
 */
export function tableNames(table: unknown): TableNames {
  const parts = typeof table === 'string' ? table.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new ConfigError(`PostgresStore table must be a plain SQL identifier or schema.identifier (letters, digits, _; at most 63 each), got ${JSON.stringify(table)}`);
  }
  const name = parts[parts.length - 1]!;
  return {
    qualified: parts.map((p) => `"${p}"`).join('.'),
    index: `"${name.slice(0, 63 - INDEX_SUFFIX.length)}${INDEX_SUFFIX}"`,
  };
}

/** The store's operations, each one statement (`statements` has one text for each, and `createTable`). */
export const OPERATIONS = ['load', 'save', 'update', 'updateTtl', 'delete', 'deleteExpired'] as const;
export type Operation = (typeof OPERATIONS)[number];

/**
 * The names the store prepares its statements under, one per operation and table. A named
 * statement is parsed and planned once per connection; unnamed, the UPDATE's planning costs more
 * than its execution (measured: about 0.3 ms against 0.1 ms, every write). The table's hash keeps
 * two stores on different tables of one pool apart (node-postgres refuses one name for two texts).
 */
export function statementNames({ qualified }: TableNames): Record<Operation, string> {
  const tag = `latchkey_${createHash('sha256').update(qualified).digest('hex').slice(0, 12)}`;
  return Object.fromEntries(OPERATIONS.map((op) => [op, `${tag}_${op}`])) as Record<Operation, string>;
}

/** Rows of a deleteExpired batch: small enough to stay far below any sensible statement_timeout. */
export const DELETE_BATCH = 5000;

// The validator check shared by load, update and updateTtl: the current hash, or the previous one
// while its grace lasts; never a row past its expiry.
const LIVE = `id = $1 AND expires_at > now() AND (hash = $2 OR (prev_hash = $2 AND prev_until > now()))`;
const MS = `* interval '1 millisecond'`;

/** Every statement of the store, for one table. */
export function statements({ qualified: t, index }: TableNames) {
  return {
    // One implicit transaction (a multi-statement simple query): the advisory lock serialises app
    // instances creating the table at the same startup, where CREATE … IF NOT EXISTS alone can
    // fail on a duplicate catalog row.
    createTable: `SELECT pg_advisory_xact_lock(hashtext('latchkey ' || '${t}'));
CREATE TABLE IF NOT EXISTS ${t} (
  id         text COLLATE "C" PRIMARY KEY,  -- the record id: the cookie key's public half
  hash       bytea NOT NULL,                 -- 16 bytes (112 bits) of SHA-256(validator): never the validator itself
  prev_hash  bytea,                          -- the rotated-out validator's hash, while its grace lasts
  prev_until timestamptz,                    -- … until then
  version    integer NOT NULL DEFAULT 1,     -- bumped by every update
  data       jsonb NOT NULL,                 -- {"key": "<the value's JSON text>", …}
  ttl        double precision,               -- the session's own TTL in seconds; NULL: the middleware's
  persistent boolean,                        -- its own cookie lifecycle; NULL: the middleware's
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${index} ON ${t} (expires_at);`,

    // $1 id, $2 hash. The validator is checked before the data is read, so a wrong key costs no
    // JSON work and learns nothing about the record. The remaining lifetime, not the instant, goes
    // back to Node, so the expiry the engine sees does not depend on the two clocks agreeing.
    load: `SELECT hash <> $2 AS stale, version, data::text AS data, ttl, persistent,
  (extract(epoch FROM created_at) * 1000)::float8 AS created_ms,
  (extract(epoch FROM expires_at - now()) * 1000)::float8 AS left_ms
FROM ${t} WHERE ${LIVE}`,

    // $1 id, $2 hash, $3 data, $4 ttl setting, $5 persistent setting, $6 createdAt (epoch ms), $7 TTL ms.
    // Create-only: a taken id inserts nothing (rowCount 0) and the store draws another.
    save: `INSERT INTO ${t} (id, hash, data, ttl, persistent, created_at, expires_at)
VALUES ($1, $2, $3::jsonb, $4::float8, $5::boolean, to_timestamp($6::float8 / 1000), now() + $7::float8 ${MS})
ON CONFLICT (id) DO NOTHING`,

    // $1 id, $2 hash, $3 set (object), $4 removed (array), $5 expected version, $6 settings given,
    // $7 ttl setting, $8 persistent setting, $9 new hash (rotation), $10 grace ms, $11 TTL ms, $12 budget ms.
    //
    // cur locks the row. In READ COMMITTED a SELECT … FOR UPDATE that waited for a concurrent
    // writer re-reads the row's newest version and re-checks LIVE on it, so cur's version and
    // "current or stale" are the committed truth, not the statement's snapshot: the conflict
    // carries the actual version, and a key rotated out meanwhile is seen as stale (no second
    // rotation). upd then writes under that lock: removed keys, then set keys (jsonb - and ||,
    // per key, never the whole map), the version, the settings only when given, the rotation
    // only from the current hash, the grace, the expiry. The last line answers which case it was:
    // no row: gone or wrong validator; a row not updated: a version conflict (or the budget ran out).
    //
    // The budget: a row locked elsewhere makes cur wait. When the lock comes later than the
    // store's own query timeout after the statement arrived, the client has already given up
    // and reported a failure, so the write must not happen after that: clock_timestamp() is read
    // after the lock (it references cur) and the update is skipped.
    update: `WITH cur AS MATERIALIZED (
  SELECT id, version, hash = $2 AND $9::bytea IS NOT NULL AS rotate,
    statement_timestamp() + $12::float8 ${MS} AS deadline
  FROM ${t} WHERE ${LIVE}
  FOR UPDATE
), upd AS (
  UPDATE ${t} AS s SET
    data = (s.data - ARRAY(SELECT jsonb_array_elements_text($4::jsonb))) || $3::jsonb,
    version = s.version + 1,
    ttl = CASE WHEN $6::boolean THEN $7::float8 ELSE s.ttl END,
    persistent = CASE WHEN $6::boolean THEN $8::boolean ELSE s.persistent END,
    hash = CASE WHEN cur.rotate THEN $9::bytea ELSE s.hash END,
    prev_hash = CASE WHEN NOT cur.rotate THEN s.prev_hash WHEN $10::float8 > 0 THEN s.hash END,
    prev_until = CASE WHEN NOT cur.rotate THEN s.prev_until WHEN $10::float8 > 0 THEN now() + $10::float8 ${MS} END,
    expires_at = now() + $11::float8 ${MS}
  FROM cur
  WHERE s.id = cur.id AND ($5::integer IS NULL OR cur.version = $5::integer) AND clock_timestamp() < cur.deadline
  RETURNING s.version
)
SELECT cur.version, cur.rotate, EXISTS (SELECT FROM upd) AS updated FROM cur`,

    // $1 id, $2 hash, $3 TTL ms.
    updateTtl: `UPDATE ${t} SET expires_at = now() + $3::float8 ${MS} WHERE ${LIVE}`,

    // By id: the row holds the current and the previous hash, so every key of the session dies at once.
    delete: `DELETE FROM ${t} WHERE id = $1`,

    // A batch through the expiry index (ORDER BY + LIMIT walk it from the oldest); SKIP LOCKED
    // leaves rows a request holds, and lets two instances sweep at once without waiting on each other.
    deleteExpired: `DELETE FROM ${t} WHERE id = ANY (ARRAY(
  SELECT id FROM ${t} WHERE expires_at <= now() ORDER BY expires_at LIMIT ${DELETE_BATCH} FOR UPDATE SKIP LOCKED))`,
  };
}

/**
 * `{"key": "<JSON text>", …}` as JSON text, for `::jsonb`. Each value goes in as a jsonb
 * *string* holding its JSON text: jsonb would normalise a value stored as JSON (key order,
 * whitespace, `1.50`, `1e2`, `-0`) and refuses some valid texts (`"\u0000"`, `"\ud800"`), while the
 * engine compares texts and `get()` parses them, so they must come back byte for byte.
 * JSON.stringify escapes every unpaired surrogate, so nothing is lost to UTF-8 on the way.
 */
export function jsonObject(entries: Iterable<readonly [string, string]>): string {
  const parts: string[] = [];
  for (const [k, v] of entries) parts.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
  return `{${parts.join(',')}}`;
}

// What a PostgreSQL text (a jsonb key) cannot hold: NUL, and UTF-16 that has no UTF-8 form.
const UNSTORABLE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The first session key PostgreSQL cannot keep as a jsonb key, if any (checked before sending: keys are short). */
export function unstorableKey(keys: Iterable<string>): string | undefined {
  for (const k of keys) if (UNSTORABLE.test(k)) return k;
  return undefined;
}

/**
 * The state from `data::text`, every value checked with JSON.parse (the parser `get()` uses), so
 * what loads is what the handler can read.
 * @throws LoadError (kind `deserialization`) for anything else: the engine then serves a fresh session.
 */
export function decodeData(text: string, id: string): SessionState {
  const corrupt = (what: string, cause?: unknown) =>
    new LoadError('deserialization', `session record ${id}: ${what}`, cause === undefined ? undefined : { cause });
  const data: unknown = JSON.parse(text);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw corrupt('data is not a JSON object');
  const state: SessionState = new Map();
  // JSON.parse makes "__proto__" an own property, so Object.entries sees it like any other key.
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (typeof v !== 'string') throw corrupt(`value ${JSON.stringify(k)} is not a JSON text in a jsonb string`);
    try {
      JSON.parse(v);
    } catch (err) {
      throw corrupt(`value ${JSON.stringify(k)} is not valid JSON`, err);
    }
    state.set(k, v);
  }
  return state;
}
