/**
 * The session handle a handler sees as `req.session` / `ctx.session`. It records which keys
 * a request set or removed (so stores can apply changes key by key) and decodes a value
 * only when it is read. Everything here is synchronous; the engine does the I/O.
 */
import { LoadError } from '../errors';
import type { SessionState } from '../store/types';

/**
 * The shape of session values, for typing `get` and `set`. Augment it:
 *
 * @example
 * ```ts
 * declare module 'latchkey' {
 *   interface SessionData { userId: string; cart: string[] }
 * }
 * req.session.get('userId'); // string | undefined
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface, @typescript-eslint/no-empty-object-type
export interface SessionData {}

/** The value type of `key`: from {@link SessionData} when declared there, else `unknown`. */
export type SessionValue<K extends string> = K extends keyof SessionData ? SessionData[K] : unknown;

/** What the commit will do. */
export type SessionStatus = 'unchanged' | 'changed' | 'renewed' | 'purged';

/** Where a session is in its request. @internal */
export type SessionPhase = 'open' | 'committing' | 'done';

const EMPTY: SessionState = new Map();

/** Receives the first change of a session, and any change made after its commit began. @internal */
export interface SessionListener {
  changed(session: Session): void;
}

/**
 * A request's session.
 *
 * @example
 * ```ts
 * app.post('/cart', (req, res) => {
 *   const cart = req.session.get('cart') ?? [];
 *   req.session.set('cart', [...cart, req.body.item]);
 *   res.redirect('/cart');
 * });
 * ```
 */
export class Session {
  /** @internal The store key this session was loaded under; null for a new session. */
  key: string | null = null;
  /** @internal A key to delete at commit (purged, renewed, expired or corrupt). */
  deleteKey: string | null = null;
  /** @internal */ loaded: SessionState = EMPTY;
  /** @internal Per-key changes: JSON text, or undefined for a removal. */
  changes: Map<string, string | undefined> | null = null;
  /** @internal */ version = 0;
  /** @internal */ expiresAt = 0;
  /** @internal */ createdAt = 0;
  /** @internal Loaded through a rotated-out key inside its grace: never rotate again. */
  stale = false;
  /** @internal The cookie was protected by an older secret: re-issue it. */
  olderSecret = false;
  /** @internal Loading failed and onStoreError is 'anonymous': never save. */
  readOnly = false;
  /** @internal */ phase: SessionPhase = 'open';
  /** @internal Whether the request arrived over HTTPS, as the adapter judged it. */
  readonly https: boolean;
  /** @internal Adapter data (the response object), opaque to the engine. */
  carrier: unknown = undefined;
  private listener: SessionListener | null;
  private _status: SessionStatus = 'unchanged';
  private _isNew = true;

  /** @internal Sessions are made by the engine. */
  constructor(https: boolean, listener: SessionListener | null) {
    this.https = https;
    this.listener = listener;
  }

  /** What the commit will do: `'unchanged'`, `'changed'`, `'renewed'` or `'purged'`. */
  get status(): SessionStatus {
    return this._status;
  }

  /** True until the session has been saved in a store (a request without a live session cookie). */
  get isNew(): boolean {
    return this._isNew;
  }

  /** @internal Fills a session from the store. */
  adopt(key: string, state: SessionState, version: number, expiresAt: number, createdAt: number, stale: boolean): void {
    this.key = key;
    this.loaded = state;
    this.version = version;
    this.expiresAt = expiresAt;
    this.createdAt = createdAt;
    this.stale = stale;
    this._isNew = false;
  }

  /**
   * The value under `key`, JSON-decoded on each call (mutating it changes nothing until `set`).
   * @throws LoadError (kind `deserialization`) when the stored text is not JSON.
   */
  get<K extends string>(key: K): SessionValue<K> | undefined {
    const json = this.raw(key);
    if (json === undefined) return undefined;
    try {
      return JSON.parse(json) as SessionValue<K>;
    } catch (err) {
      throw new LoadError('deserialization', `session value ${JSON.stringify(key)} is not valid JSON`, { cause: err });
    }
  }

  /**
   * Stores `value` under `key`, JSON-encoded now.
   * @throws TypeError naming the key for what JSON cannot round-trip: a function, symbol,
   * undefined, BigInt, a cycle or a non-finite number, at any depth.
   */
  set<K extends string>(key: K, value: SessionValue<K>): void {
    checkKey(key);
    const json = encode(key, value);
    const loaded = this.loaded.get(key);
    const changes = (this.changes ??= new Map());
    // Setting the value that was loaded is not a change (same JSON text).
    if (loaded === json) changes.delete(key);
    else changes.set(key, json);
    this.touched();
  }

  /** Removes `key`. */
  remove(key: string): void {
    checkKey(key);
    const changes = (this.changes ??= new Map());
    if (this.loaded.has(key)) changes.set(key, undefined);
    else changes.delete(key);
    this.touched();
  }

  /** Whether `key` holds a value. */
  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  /** Every key holding a value. */
  keys(): string[] {
    return [...this.view().keys()];
  }

  /** Every key with its decoded value. */
  entries(): [string, unknown][] {
    return this.keys().map((k) => [k, this.get(k)]);
  }

  /** Drops every value. An existing session left empty is deleted at commit and its cookie expired. */
  clear(): void {
    const changes = new Map<string, string | undefined>();
    for (const k of this.loaded.keys()) changes.set(k, undefined);
    this.changes = changes;
    this.touched();
  }

  /**
   * Logs out: the session is deleted from the store and its cookie expired at commit,
   * including every previous cookie value still in its rotation grace. Values set after
   * `purge()` start a new session.
   */
  purge(): void {
    this.deleteKey = this.key ?? this.deleteKey;
    this.key = null;
    this.loaded = EMPTY;
    this.changes = null;
    this._isNew = true;
    this._status = 'purged';
    this.notify();
  }

  /**
   * Gives the session a new key and keeps its values; the old key is dead at once (no grace).
   * Call it after login or any privilege change (OWASP: renew the session ID).
   */
  renew(): void {
    if (this._status === 'purged') return;
    if (this.key !== null) {
      this.deleteKey = this.key;
      this.key = null;
    }
    this._status = 'renewed';
    this.notify();
  }

  /** @internal The JSON text under `key` as this request sees it. */
  raw(key: string): string | undefined {
    const changes = this.changes;
    if (changes !== null && changes.has(key)) return changes.get(key);
    return this.loaded.get(key);
  }

  /** @internal The state as this request sees it. */
  view(): SessionState {
    const changes = this.changes;
    if (changes === null || changes.size === 0) return this.loaded;
    const out = new Map(this.loaded);
    for (const [k, v] of changes) {
      if (v === undefined) out.delete(k);
      else out.set(k, v);
    }
    return out;
  }

  /** @internal Takes the pending per-key changes, leaving none (used by the commit); `view` is `this.view()` if known. */
  takeChanges(view: SessionState = this.view()): { set: Map<string, string>; removed: Set<string> } {
    const set = new Map<string, string>();
    const removed = new Set<string>();
    if (this.changes !== null) {
      for (const [k, v] of this.changes) {
        if (v === undefined) removed.add(k);
        else set.set(k, v);
      }
    }
    this.loaded = view;
    this.changes = null;
    if (this._status === 'changed') this._status = 'unchanged';
    return { set, removed };
  }

  private touched(): void {
    if (this._status === 'unchanged' || this._status === 'changed') {
      this._status = this.changes !== null && this.changes.size > 0 ? 'changed' : 'unchanged';
    } else if (this._status === 'purged' && this.changes !== null && this.changes.size > 0) {
      // Values set after purge() start a fresh session; the old one is still deleted.
      this._status = 'changed';
    }
    this.notify();
  }

  private notify(): void {
    if (this.listener !== null && (this.phase !== 'open' || this._status !== 'unchanged')) this.listener.changed(this);
  }
}

function checkKey(key: unknown): void {
  if (typeof key !== 'string') throw new TypeError(`session keys are strings, got ${typeof key}`);
}

/** JSON.stringify, refusing what would not come back the same (instead of dropping it silently). */
function encode(key: string, value: unknown): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (Number.isFinite(value)) return JSON.stringify(value);
      break;
    case 'object':
      if (value === null) return 'null';
      try {
        return JSON.stringify(value, strictReplacer);
      } catch (err) {
        throw new TypeError(`session value for key ${JSON.stringify(key)} cannot be stored as JSON: ${(err as Error).message}`, {
          cause: err,
        });
      }
  }
  throw new TypeError(`session value for key ${JSON.stringify(key)} cannot be stored as JSON (${describe(value)})`);
}

function strictReplacer(this: unknown, name: string, value: unknown): unknown {
  const t = typeof value;
  // An undefined object property is dropped, as an optional field should be; in an array it would come back as null.
  if (t === 'undefined' && !Array.isArray(this) && name !== '') return value;
  if (t === 'function' || t === 'symbol' || t === 'undefined' || (t === 'number' && !Number.isFinite(value as number))) {
    throw new TypeError(`${describe(value)} at ${name === '' ? 'the top' : JSON.stringify(name)}`);
  }
  return value;
}

function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value;
}
