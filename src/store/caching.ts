/**
 * A read-through cache in front of another store (tower-sessions' `CachingSessionStore`):
 * loads are served from a fast front (`SessionCache`, e.g. a MemoryCache) while fresh and
 * filled from the backend on a miss; every write goes to the backend, then drops what the
 * front kept for that session.
 */
import { ConfigError, VersionConflictError } from '../errors';
import type { LoadedSession, SessionCache, SessionChange, SessionMeta, SessionStore } from './types';

/** Options of {@link CachingStore}. */
export interface CachingStoreOptions {
  /**
   * How long, in seconds, a session loaded from the backend may be served from the cache.
   * It bounds how stale a read can be when several app instances share one backend (a
   * change, renew or logout made through another instance is seen here at most this late).
   * Fractions allowed.
   */
  cacheTtl: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** Loads and writes in progress on one key, so a load that raced a write never fills the cache. */
interface Flight {
  loads: number;
  writes: number;
  /** Bumped when a write on the key begins and when it ends. */
  generation: number;
}

/**
 * A store that serves loads from `cache` while they are fresh (at most `cacheTtl` seconds
 * old) and asks `backend` otherwise. Writes (`save`, `update`, `updateTtl`, `delete`) go
 * to the backend first; only when the backend accepted them is the cached copy dropped, so
 * the next load reads the backend's result (a write never puts into the cache a state the
 * backend did not confirm, and a failed backend write leaves the cache as it was). A new
 * session is cached on its first load.
 *
 * Within one process the cache is never stale: every write through this instance drops the
 * cached copy. Across processes sharing one backend, an instance may serve a session up to
 * `cacheTtl` seconds after another instance changed, renewed or purged it: keep `cacheTtl`
 * short (seconds) or route a user's requests to one instance.
 *
 * @example
 * ```ts
 * import { CachingStore, MemoryCache } from 'latchkey';
 * import { RedisStore } from 'latchkey/redis';
 *
 * const store = new CachingStore(new MemoryCache({ maxSessions: 10_000 }), new RedisStore({ client }), { cacheTtl: 5 });
 * app.use(session({ secret, store }));
 * ```
 * @throws ConfigError when `cacheTtl` is not a positive number or `backend` is stateless.
 */
export class CachingStore implements SessionStore {
  readonly stateless = false;
  /** Present when the backend has it: removes the backend's expired sessions (the cache expires its own). */
  readonly deleteExpired?: () => Promise<number>;
  /** The backend's: the cache keeps no keys of its own. */
  readonly rotatedKey?: (key: string, seed: string) => string | null;
  /** The backend's. */
  readonly recordId?: (key: string) => string | null;
  private readonly cacheTtl: number;
  private readonly now: () => number;
  private readonly flights = new Map<string, Flight>();

  constructor(
    readonly cache: SessionCache,
    readonly backend: SessionStore,
    options: CachingStoreOptions,
  ) {
    const cacheTtl = options?.cacheTtl;
    if (typeof cacheTtl !== 'number' || !(cacheTtl > 0) || !Number.isFinite(cacheTtl)) {
      throw new ConfigError('CachingStore needs { cacheTtl }: a positive number of seconds');
    }
    if (!cache || typeof cache.get !== 'function' || typeof cache.set !== 'function' || typeof cache.delete !== 'function') {
      throw new ConfigError('CachingStore needs a SessionCache in front (get/set/delete), e.g. new MemoryCache()');
    }
    if (backend.stateless) throw new ConfigError('CachingStore cannot front a stateless store: its state is already in the cookie');
    this.cacheTtl = cacheTtl;
    this.now = options.now ?? Date.now;
    if (backend.deleteExpired) this.deleteExpired = () => backend.deleteExpired!();
    if (backend.rotatedKey) this.rotatedKey = (key, seed) => backend.rotatedKey!(key, seed);
    if (backend.recordId) this.recordId = (key) => backend.recordId!(key);
  }

  /** From the cache while fresh; otherwise from the backend, and then cached. */
  async load(key: string): Promise<LoadedSession | null> {
    const hit = await this.cache.get(key);
    // The cache's TTL is cut to the session's life when filled; the check guards a cache that rounds it up.
    if (hit !== null && hit.expiresAt > this.now()) return hit;
    const flight = this.enter(key);
    flight.loads++;
    const generation = flight.generation;
    try {
      const record = await this.backend.load(key);
      // A key inside its rotation grace is not cached: its answer (stale) is the backend's to
      // give, and a cache keeps one key per session, the current one.
      if (record !== null && !record.stale && flight.generation === generation) {
        const ttl = Math.min(this.cacheTtl, (record.expiresAt - this.now()) / 1000);
        if (ttl > 0) await this.cache.set(key, record, ttl);
      }
      return record;
    } finally {
      flight.loads--;
      this.leave(key, flight);
    }
  }

  /**
   * Saved in the backend only: the version the backend gives a new record is its own, so
   * the session is cached on its first load rather than guessed here.
   */
  save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta): Promise<string> {
    return this.backend.save(state, ttl, meta);
  }

  /**
   * Updated in the backend, then the cached copy is dropped (also when the backend says the
   * session is gone). A version conflict means the cached copy was behind the backend: it is
   * dropped too, so the engine's reload reads the backend.
   */
  async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    return this.write(key, () => this.backend.update(key, change, ttl));
  }

  /**
   * Extended in the backend, then the cached copy is dropped: re-caching it here would let
   * it be served for longer than `cacheTtl` after it was read.
   */
  async updateTtl(key: string, ttl: number): Promise<string | null> {
    return this.write(key, () => this.backend.updateTtl(key, ttl));
  }

  /** Deleted in the backend, then in the cache. */
  async delete(key: string): Promise<void> {
    return this.write(key, () => this.backend.delete(key));
  }

  private async write<T>(key: string, op: () => Promise<T>): Promise<T> {
    const flight = this.enter(key);
    flight.writes++;
    flight.generation++;
    try {
      let result: T;
      try {
        result = await op();
      } catch (err) {
        if (err instanceof VersionConflictError) await this.cache.delete(key);
        throw err;
      }
      await this.cache.delete(key);
      return result;
    } finally {
      // Loads that began before this point may have read the backend before the write landed.
      flight.generation++;
      flight.writes--;
      this.leave(key, flight);
    }
  }

  private enter(key: string): Flight {
    let flight = this.flights.get(key);
    if (flight === undefined) {
      flight = { loads: 0, writes: 0, generation: 0 };
      this.flights.set(key, flight);
    }
    return flight;
  }

  private leave(key: string, flight: Flight): void {
    if (flight.loads === 0 && flight.writes === 0) this.flights.delete(key);
  }
}
