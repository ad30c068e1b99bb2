/**
 * The in-process `SessionCache`, the usual front of a `CachingStore`: the same bounded,
 * expiring table as MemoryStore, keeping (like a store) only a hash of each key's secret part.
 */
import { createHash } from 'node:crypto';
import { type KeyParts, splitKey } from './keys';
import { Entry, MemoryTable, type MemoryTableOptions, decodeState, encodeState } from './memory-table';
import type { LoadedSession, SessionCache } from './types';

/** Options of {@link MemoryCache}. */
export type MemoryCacheOptions = MemoryTableOptions;

/**
 * Keeps loaded sessions for a short while, each under the exact key it was loaded with.
 *
 * @example
 * ```ts
 * // in front of Redis, bounded to 10 000 sessions, each served for at most 5 s:
 * const store = new CachingStore(new MemoryCache({ maxSessions: 10_000 }), redisStore, { cacheTtl: 5 });
 * ```
 */
export class MemoryCache implements SessionCache {
  private readonly table: MemoryTable;

  constructor(options: MemoryCacheOptions = {}) {
    this.table = new MemoryTable(options);
  }

  /** How many sessions are held, expired ones not yet swept included. */
  get size(): number {
    return this.table.size;
  }

  /** The record kept for exactly `key` while its cache TTL lasts, else null. */
  async get(key: string): Promise<LoadedSession | null> {
    const parts = slot(key);
    const entry = this.table.live(parts.id);
    // A cache answers for the exact key it was given: a rotated-out key is the backend's to judge.
    if (!entry || entry.match(parts.hash, this.table.now()) !== 'current') return null;
    return {
      state: decodeState(entry.data),
      version: entry.version,
      expiresAt: entry.extra?.sessionExpiresAt ?? entry.expiresAt,
      createdAt: entry.createdAt,
      settings: entry.settings,
    };
  }

  /** Keeps `record` for `key` for `ttl` seconds, replacing what was kept for the session. */
  async set(key: string, record: LoadedSession, ttl: number): Promise<void> {
    const parts = slot(key);
    const entry = new Entry(parts.hash, encodeState(record.state), record.version, this.table.now() + ttl * 1000, record.createdAt);
    entry.extra = { sessionExpiresAt: record.expiresAt };
    if (record.settings) entry.settings = record.settings;
    this.table.put(parts.id, entry);
  }

  /** Forgets whatever is kept for the session `key` belongs to (any of its keys will do). */
  async delete(key: string): Promise<void> {
    this.table.delete(slot(key).id);
  }

  /** Stops the sweep timer (it is unref'd, so this is only needed to tidy up tests). */
  close(): void {
    this.table.close();
  }
}

/**
 * Where a key is kept: a key of our `id.validator` format by its id and validator hash; any other
 * (a backend with keys of its own) under 128 bits of SHA-256 of the whole key, with a fixed hash,
 * so the table never holds a replayable cookie secret either way.
 */
function slot(key: string): KeyParts {
  return splitKey(key) ?? { id: createHash('sha256').update(key).digest('base64url').slice(0, 16), hash: FOREIGN_HASH };
}

/** The hash kept for a foreign key: the slot itself is the key's hash, so any fixed 16 characters do. */
const FOREIGN_HASH = '\0'.repeat(16);
