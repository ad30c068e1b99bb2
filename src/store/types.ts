/**
 * The store contract. A store keeps a string map per session (each value one JSON text,
 * decoded only when read), a version bumped by every update, an expiry, and the session's own
 * settings. The store makes the keys: `save` returns the key the cookie will carry, and `update`
 * may hand out a new one (rotation), as actix-session's `SessionStore` does.
 */

/** A session's state: key → JSON text. A Map, so `__proto__` is an ordinary key. */
export type SessionState = Map<string, string>;

/**
 * Settings one session carries with its record, set through the handle (`session.ttl`,
 * `session.persistent`, e.g. "remember me"). An absent field means "the middleware's option".
 */
export interface SessionSettings {
  /** This session's TTL in seconds (the `ttl` option when absent). */
  ttl?: number;
  /** Whether its cookie has a Max-Age (the `lifecycle` option when absent). */
  persistent?: boolean;
}

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
  /** The session's own settings; absent or `{}` when it has none. */
  settings?: SessionSettings;
}

/** The per-key change one request makes to an existing session. */
export interface SessionChange {
  /** Keys set, with their new JSON text. */
  set: ReadonlyMap<string, string>;
  /** Keys removed. */
  removed: ReadonlySet<string>;
  /** When given, the update fails with `VersionConflictError` if the record's version differs. */
  expectedVersion?: number;
  /**
   * Rotate: the record's key becomes this one (made by the store's `rotatedKey`), and the
   * presented key keeps working for `graceMs` (stale). Absent: the key stays. A store must
   * apply a rotation only from the current key, never from a stale one.
   */
  rotateTo?: string;
  /** How long a rotated-out key still loads the session (stale), in milliseconds; 0 for none. */
  graceMs: number;
  /** When present, the session's settings become exactly these (`{}`: back to the defaults). */
  settings?: SessionSettings;
}

/** Facts saved with a new session. */
export interface SessionMeta {
  /** Epoch ms the session was created; defaults to now. `renew()` keeps the original one. */
  createdAt?: number;
  /** The session's own settings, if it has any. */
  settings?: SessionSettings;
}

/**
 * A session store. Every method is one round trip to the backing service.
 * Stores must pass `runStoreConformance` from `latchkey/testing`.
 *
 * TTLs are in seconds and may be fractional (the conformance kit uses short ones). Keys are
 * cookie-safe text (RFC 6265bis cookie-octets) and never contain `~`, which the engine uses to
 * put two keys in one cookie.
 */
export interface SessionStore {
  /** The live session under `key`, or null when it is unknown, expired, deleted or `key` is malformed. */
  load(key: string): Promise<LoadedSession | null>;
  /** Stores a new session and returns its key. Never overwrites an existing record. */
  save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta): Promise<string>;
  /**
   * Applies `change` key by key, bumps the version, sets the TTL and returns the key the
   * cookie must carry (`change.rotateTo` when it rotated, else `key`). Returns null, writing
   * nothing, when the session is gone (deleted, renewed or expired since it was loaded).
   * Applying the same change twice (a client library's resend) must leave the same record:
   * a rotation from a key that is no longer current does not rotate again.
   */
  update(key: string, change: SessionChange, ttl: number): Promise<string | null>;
  /** Extends the TTL; returns the key for the cookie (a new one for a stateless store), or null when gone. */
  updateTtl(key: string, ttl: number): Promise<string | null>;
  /** Deletes the session and every key of it still in its grace. Deleting nothing succeeds. */
  delete(key: string): Promise<void>;
  /** Removes expired records; returns how many. Stores whose backend expires by itself may omit it. */
  deleteExpired?(): Promise<number>;
  /**
   * For stores that rotate a record's key in place (every server-side store): the key a rotation
   * of `key` will hand out, made from the engine's `seed` (43 base64url characters, 256 bits)
   * without any I/O; null when `key` is not one of this store's. The engine names the new key
   * before the store call, so a response whose store write never answered can still carry a
   * cookie that opens the session, whatever the store did with that write. Stateless stores,
   * whose key is the state itself, leave it out.
   */
  rotatedKey?(key: string, seed: string): string | null;
  /**
   * The part of `key` that names the record: the same across rotations and TTL extensions, and
   * safe to show or log (it cannot open the session); null when `key` is not one of this store's.
   * The drop-ins give it as `req.session.id` / `req.sessionID`. Stores whose key is the state leave it out.
   */
  recordId?(key: string): string | null;
  /**
   * True for stores whose state travels in the cookie (CookieStore): the engine then
   * defaults to `contentSecurity: 'private'`.
   */
  readonly stateless?: boolean;
  /**
   * True for stores that answer from this process without I/O (MemoryStore, CookieStore): a call
   * cannot stall, so the engine sets no deadline timer for it.
   */
  readonly inProcess?: boolean;
}

/**
 * The front of a {@link CachingStore}: a place that keeps loaded sessions for a short while.
 * `MemoryCache` implements it.
 *
 * A cache keeps what it is given under the session key and answers only for that exact key;
 * like a store, it should keep nothing that could be replayed as a cookie (MemoryCache keeps
 * a hash of the key's secret part).
 *
 * @example
 * ```ts
 * const store = new CachingStore(new MemoryCache({ maxSessions: 10_000 }), new RedisStore({ client }), { cacheTtl: 5 });
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
  /** Forgets what is kept for the session `key` belongs to. Forgetting nothing succeeds. */
  delete(key: string): Promise<void>;
}
