/**
 * The embedded default store: one process, bounded, expiring. Values are kept as one
 * length-prefixed string per session rather than a Map, which keeps a one-value session
 * near 215 bytes of heap.
 */
import { createHash } from 'node:crypto';
import { VersionConflictError } from '../errors';
import { type KeyParts, newId, newValidator, sameHash, splitKey } from './keys';
import type { LoadedSession, SaveMeta, SessionCache, SessionChange, SessionState, SessionStore } from './types';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** At most this many sessions are kept; the least recently used is evicted first. Default 100 000. */
  maxSessions?: number;
  /** How often expired sessions are swept, in ms, on an unref'd timer. Default 60 000; 0 turns the sweep off. */
  sweepIntervalMs?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** A rotated-out validator hash and until when (epoch ms) it still opens the session. */
interface Grace {
  hash: string;
  until: number;
}

/**
 * One session. Kept lean, since a MemoryStore may hold 100 000 of them: createdAt in whole
 * seconds (a small integer, where epoch ms would need a boxed double), the rotation grace in an
 * object of its own that exists only while a previous key is in its grace, and the values as
 * one length-prefixed string. Measured by `npm run bench`: about 215 bytes per one-value session.
 */
class Entry {
  grace: Grace | undefined = undefined;
  readonly createdSec: number;
  constructor(
    public hash: string,
    public data: string,
    public version: number,
    public expiresAt: number,
    createdAt: number,
  ) {
    this.createdSec = Math.floor(createdAt / 1000);
  }

  get createdAt(): number {
    return this.createdSec * 1000;
  }
}

/**
 * An entry put there as a {@link SessionCache}: `expiresAt` is when the cache stops serving
 * it, `sessionExpiresAt` the session's own expiry, which `get` reports. A subclass, so the
 * entries of a MemoryStore used as a store do not pay for the extra field.
 */
class CachedEntry extends Entry {
  constructor(hash: string, data: string, version: number, expiresAt: number, createdAt: number, public readonly sessionExpiresAt: number) {
    super(hash, data, version, expiresAt, createdAt);
  }
}

/**
 * In-process session store. Never keeps the process alive; TTL is checked on every read,
 * and expired sessions are also swept on a timer so memory does not grow with abandoned sessions
 * (express-session's MemoryStore only drops them when read).
 *
 * It is also a {@link SessionCache} (`get`/`set`/`delete`), the front of a `CachingStore`;
 * give the cache its own MemoryStore, since both roles share one table keyed by session id.
 *
 * @example
 * ```ts
 * app.use(session({ secret, store: new MemoryStore({ maxSessions: 50_000 }) }));
 * // as a cache in front of Redis, bounded to 10 000 sessions, each served for at most 5 s:
 * const store = new CachingStore(new MemoryStore({ maxSessions: 10_000 }), redisStore, { cacheTtl: 5 });
 * ```
 */
export class MemoryStore implements SessionStore, SessionCache {
  readonly stateless = false;
  private readonly entries = new Map<string, Entry>();
  private readonly maxSessions: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.maxSessions = options.maxSessions ?? 100_000;
    this.now = options.now ?? Date.now;
    const every = options.sweepIntervalMs ?? 60_000;
    if (every > 0) {
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
  }

  /** How many sessions are held, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  async load(key: string): Promise<LoadedSession | null> {
    const parts = splitKey(key);
    if (!parts) return null;
    const entry = this.live(parts.id);
    if (!entry) return null;
    const stale = this.match(entry, parts.hash);
    if (stale === null) return null;
    return { state: decode(entry.data), version: entry.version, expiresAt: entry.expiresAt, createdAt: entry.createdAt, stale };
  }

  async save(state: ReadonlyMap<string, string>, ttl: number, meta?: SaveMeta): Promise<string> {
    const now = this.now();
    let id = newId();
    // 96 random bits do not collide in practice; the loop makes "never overwrites" a guarantee.
    while (this.entries.has(id)) id = newId();
    const { key, hash } = newValidator(id);
    this.entries.set(id, new Entry(hash, encode(state), 1, now + ttl * 1000, meta?.createdAt ?? now));
    this.evict();
    return key;
  }

  async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    const entry = parts && this.live(parts.id);
    if (!parts || !entry) return null;
    const stale = this.match(entry, parts.hash);
    if (stale === null) return null;
    if (change.expectedVersion !== undefined && change.expectedVersion !== entry.version) {
      throw new VersionConflictError(change.expectedVersion, entry.version);
    }
    const now = this.now();
    entry.data = applyChange(entry.data, change);
    entry.version += 1;
    entry.expiresAt = now + ttl * 1000;
    if (!change.rotate || stale) return key;
    const next = newValidator(parts.id);
    entry.grace = change.graceMs > 0 ? { hash: entry.hash, until: now + change.graceMs } : undefined;
    entry.hash = next.hash;
    return next.key;
  }

  async updateTtl(key: string, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    const entry = parts && this.live(parts.id);
    if (!parts || !entry || this.match(entry, parts.hash) === null) return null;
    entry.expiresAt = this.now() + ttl * 1000;
    return key;
  }

  /**
   * Store contract: deletes the session and every key of it still in its grace.
   * SessionCache: forgets whatever is cached for the session `key` belongs to.
   */
  async delete(key: string): Promise<void> {
    const parts = splitKey(key) ?? foreignSlot(key);
    this.entries.delete(parts.id);
  }

  /**
   * SessionCache: the record cached under `key` while its cache TTL lasts, else null. Also
   * answers for sessions saved here, as `load` does for a current key.
   */
  async get(key: string): Promise<LoadedSession | null> {
    const parts = splitKey(key) ?? foreignSlot(key);
    const entry = this.live(parts.id);
    // A cache answers for the exact key it was given: a rotated-out key is the backend's to judge.
    if (!entry || this.match(entry, parts.hash) !== false) return null;
    const expiresAt = entry instanceof CachedEntry ? entry.sessionExpiresAt : entry.expiresAt;
    return { state: decode(entry.data), version: entry.version, expiresAt, createdAt: entry.createdAt };
  }

  /**
   * SessionCache: keeps `record` for `key` for `ttl` seconds, replacing what was kept for
   * the session. Keys in another format than MemoryStore's own are kept under a hash of the
   * whole key, so the table never holds a replayable cookie secret either way.
   */
  async set(key: string, record: LoadedSession, ttl: number): Promise<void> {
    const parts = splitKey(key) ?? foreignSlot(key);
    const entry = new CachedEntry(parts.hash, encode(record.state), record.version, this.now() + ttl * 1000, record.createdAt, record.expiresAt);
    // Delete first so the entry moves to the most-recently-used end.
    this.entries.delete(parts.id);
    this.entries.set(parts.id, entry);
    this.evict();
  }

  async deleteExpired(): Promise<number> {
    return this.sweep();
  }

  /** Stops the sweep timer (it is unref'd, so this is only needed to tidy up tests). */
  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  private sweep(): number {
    const now = this.now();
    let removed = 0;
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.entries.delete(id);
        removed++;
      }
    }
    return removed;
  }

  /** The entry if present and unexpired, moved to the most-recently-used end. */
  private live(id: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    if (entry.expiresAt <= this.now()) return undefined;
    this.entries.set(id, entry);
    return entry;
  }

  /** false: the current key; true: a previous key inside its grace; null: neither. */
  private match(entry: Entry, hash: string): boolean | null {
    if (sameHash(entry.hash, hash)) return false;
    const grace = entry.grace;
    if (grace !== undefined && this.now() < grace.until && sameHash(grace.hash, hash)) return true;
    return null;
  }

  private evict(): void {
    while (this.entries.size > this.maxSessions) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

/**
 * A session's values as one flat string, `<key length>:<value length>:<key><value>` per value:
 * one string costs ~24 bytes of heap where an array of two strings costs ~100.
 */
function encode(state: ReadonlyMap<string, string>): string {
  const parts: string[] = [];
  for (const [k, v] of state) parts.push(`${k.length}:${v.length}:`, k, v);
  return parts.join('');
}

function decode(data: string): SessionState {
  const state: SessionState = new Map();
  let i = 0;
  while (i < data.length) {
    const a = data.indexOf(':', i);
    const b = data.indexOf(':', a + 1);
    const kEnd = b + 1 + Number(data.slice(i, a));
    const vEnd = kEnd + Number(data.slice(a + 1, b));
    state.set(data.slice(b + 1, kEnd), data.slice(kEnd, vEnd));
    i = vEnd;
  }
  return state;
}

/**
 * Where a cache keeps a key that is not in MemoryStore's `id.validator` format (a backend
 * with keys of its own): under 128 bits of SHA-256 of the whole key, with an empty hash.
 */
function foreignSlot(key: string): KeyParts {
  return { id: createHash('sha256').update(key).digest('base64url').slice(0, 16), hash: '' };
}

function applyChange(data: string, change: SessionChange): string {
  const state = decode(data);
  for (const k of change.removed) state.delete(k);
  for (const [k, v] of change.set) state.set(k, v);
  return encode(state);
}
