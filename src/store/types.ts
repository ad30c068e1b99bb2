/**
 * The store contract. A store keeps a string map per session (each value one JSON text,
 * decoded only when read), a version bumped by every update, and an expiry. The store
 * makes the keys: `save` returns the key the cookie will carry, and `update` may return a
 * new one (rotation), as actix-session's `SessionStore` does.
 */

/** A session's state: key → JSON text. A Map, so `__proto__` is an ordinary key. */
export type SessionState = Map<string, string>;

/** What `load` returns for a live session. */
export interface LoadedSession {
  state: SessionState;
  /** Bumped by every `update`; `update` may require it to be unchanged. */
  version: number;
  /** Epoch milliseconds at which the store forgets the session. */
  expiresAt: number;
  /** Epoch milliseconds at which the session was first saved (for `absoluteTtl`). */
  createdAt: number;
  /**
   * True when the key is a previous one still inside its rotation grace: the session is
   * served and its changes saved, but it must not rotate again.
   */
  stale?: boolean;
}

/** The per-key change one request makes to an existing session. */
export interface SessionChange {
  /** Keys set, with their new JSON text. */
  set: ReadonlyMap<string, string>;
  /** Keys removed. */
  removed: ReadonlySet<string>;
  /** When given, the update fails with `VersionConflictError` if the record's version differs. */
  expectedVersion?: number;
  /** Hand out a new key; the presented one keeps working for `graceMs`. */
  rotate: boolean;
  /** How long a rotated-out key still loads the session (stale), in milliseconds; 0 for none. */
  graceMs: number;
}

/** Optional facts saved with a new session. */
export interface SaveMeta {
  /** Epoch ms the session was created; defaults to now. `renew()` keeps the original one. */
  createdAt?: number;
}

/**
 * A session store. Every method is one round trip to the backing service.
 * Stores must pass `runStoreConformance` from `latchkey/testing`.
 *
 * TTLs are in seconds and may be fractional (the conformance kit uses short ones).
 */
export interface SessionStore {
  /** The live session under `key`, or null when it is unknown, expired, deleted or `key` is malformed. */
  load(key: string): Promise<LoadedSession | null>;
  /** Stores a new session and returns its key. Never overwrites an existing record. */
  save(state: ReadonlyMap<string, string>, ttl: number, meta?: SaveMeta): Promise<string>;
  /**
   * Applies `change` key by key, bumps the version, sets the TTL and returns the key the
   * cookie must carry (a new one when `change.rotate`). Returns null, writing nothing,
   * when the session is gone (deleted, renewed or expired since it was loaded).
   */
  update(key: string, change: SessionChange, ttl: number): Promise<string | null>;
  /** Extends the TTL; returns the key for the cookie (a new one for a stateless store), or null when gone. */
  updateTtl(key: string, ttl: number): Promise<string | null>;
  /** Deletes the session and every key of it still in its grace. Deleting nothing succeeds. */
  delete(key: string): Promise<void>;
  /** Removes expired records; returns how many. Stores whose backend expires by itself may omit it. */
  deleteExpired?(): Promise<number>;
  /**
   * True for stores whose state travels in the cookie (CookieStore): the engine then
   * defaults to `contentSecurity: 'private'`.
   */
  readonly stateless?: boolean;
}

/**
 * The front of a {@link CachingStore}: a place that keeps loaded sessions for a short while.
 * `MemoryStore` implements it (use a dedicated one as the cache, not the app's session store).
 *
 * A cache keeps what it is given under the session key and answers only for that exact key;
 * like a store, it should keep nothing that could be replayed as a cookie (MemoryStore keeps
 * a hash of the key's secret part).
 *
 * @example
 * ```ts
 * const store = new CachingStore(new MemoryStore({ maxSessions: 10_000 }), new RedisStore({ client }), { cacheTtl: 5 });
 * ```
 */
export interface SessionCache {
  /** The record kept for `key` while it is fresh, else null. Never reports `stale`. */
  get(key: string): Promise<LoadedSession | null>;
  /**
   * Keeps `record` for `key` for `ttl` seconds (fractional allowed), replacing whatever was
   * kept for that session. `record.expiresAt` is the session's expiry and is returned as is;
   * `ttl` is how long the cache may serve it.
   */
  set(key: string, record: LoadedSession, ttl: number): Promise<void>;
  /** Forgets what is kept for `key` (a cache may also forget the session's other keys). Forgetting nothing succeeds. */
  delete(key: string): Promise<void>;
}
