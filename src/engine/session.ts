/**
 * The session handle a handler sees as `req.session` / `ctx.session`: typed reads and writes,
 * and the three lifecycle verbs. It holds no state of its own: everything lives in the engine's
 * per-request record (`record.ts`), so the handle's type shows nothing but its API.
 */
import { LoadError } from '../errors';
import type { SessionRecord } from './record';

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

/** What the commit will do: the net change this request made. */
export type SessionStatus = 'unchanged' | 'changed' | 'renewed' | 'purged';

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
export interface Session {
  /**
   * The value under `key`, JSON-decoded on each call (mutating it changes nothing until `set`).
   * @throws LoadError (kind `deserialization`) when the stored text is not JSON.
   */
  get<K extends string>(key: K): SessionValue<K> | undefined;
  /**
   * Stores `value` under `key`, JSON-encoded now; `undefined` removes the key. Setting the value
   * already stored (the same JSON) is not a change.
   * @throws TypeError naming the key for what JSON cannot round-trip: a function, symbol,
   * BigInt, a cycle or a non-finite number, at any depth.
   */
  set<K extends string>(key: K, value: SessionValue<K> | undefined): void;
  /** Removes `key`. */
  remove(key: string): void;
  /** Whether `key` holds a value. */
  has(key: string): boolean;
  /** Every key holding a value. */
  keys(): string[];
  /** Every key with its decoded value. */
  entries(): [string, unknown][];
  /** Drops every value. An existing session left empty is deleted at commit and its cookie expired. */
  clear(): void;
  /**
   * Logs out: the session is deleted from the store and its cookie expired at commit,
   * including every previous cookie value still in its rotation grace. Values set after
   * `purge()` start a new session.
   */
  purge(): void;
  /**
   * Gives the session a new key and keeps its values; the old key is dead at once (no grace).
   * Call it after login or any privilege change (OWASP: renew the session ID).
   */
  renew(): void;
  /** What the commit will do: `'unchanged'`, `'changed'`, `'renewed'` or `'purged'`. */
  readonly status: SessionStatus;
  /** True until the session has been saved in a store (a request without a live session cookie). */
  readonly isNew: boolean;
  /**
   * This session's TTL in seconds; the `ttl` option unless set for this session ("remember me").
   * Kept with the record, so later extensions keep it; at most 400 days; `absoluteTtl` still caps it.
   * @throws TypeError when set to anything but a positive number.
   */
  ttl: number;
  /**
   * Whether the cookie has a Max-Age (true) or lives for the browser session (false); the
   * `lifecycle` option unless set for this session. Kept with the record like `ttl`.
   */
  persistent: boolean;
}

/** Refuses `handle.foo = 1`: that habit of express-session users would otherwise be dropped silently. */
const refuseAssignment: ProxyHandler<object> = {
  set(_target, property) {
    throw new TypeError(
      `req.session.${String(property)} = …: latchkey's session keeps values through set(): use session.set(${JSON.stringify(String(property))}, value), ` +
        "or the express-session-shaped object of 'latchkey/express-session' (koa: 'latchkey/koa-session')",
    );
  },
};

/**
 * The handle. Its only field is private; methods forward to the record. Assigning any other
 * property throws: the prototype chain ends in a Proxy whose `set` trap runs only for properties
 * the handle does not have, so the methods pay nothing for it.
 * @internal
 */
export class Handle implements Session {
  readonly #record: SessionRecord;

  constructor(record: SessionRecord) {
    this.#record = record;
  }

  get<K extends string>(key: K): SessionValue<K> | undefined {
    const json = this.#record.raw(key);
    if (json === undefined) return undefined;
    try {
      return JSON.parse(json) as SessionValue<K>;
    } catch (err) {
      throw new LoadError('deserialization', `session value ${JSON.stringify(key)} is not valid JSON`, { cause: err });
    }
  }

  set<K extends string>(key: K, value: SessionValue<K> | undefined): void {
    checkKey(key);
    this.#record.setRaw(key, value === undefined ? undefined : encode(key, value));
  }

  remove(key: string): void {
    checkKey(key);
    this.#record.setRaw(key, undefined);
  }

  has(key: string): boolean {
    return this.#record.raw(key) !== undefined;
  }

  keys(): string[] {
    return this.#record.keys();
  }

  entries(): [string, unknown][] {
    return this.keys().map((k) => [k, this.get(k)]);
  }

  clear(): void {
    this.#record.clear();
  }

  purge(): void {
    this.#record.purge();
  }

  renew(): void {
    this.#record.renew();
  }

  get status(): SessionStatus {
    return this.#record.status;
  }

  get isNew(): boolean {
    return this.#record.isNew;
  }

  get ttl(): number {
    return this.#record.ttl;
  }

  set ttl(seconds: number) {
    this.#record.setTtl(seconds);
  }

  get persistent(): boolean {
    return this.#record.persistent;
  }

  set persistent(value: boolean) {
    if (typeof value !== 'boolean') throw new TypeError('session.persistent is a boolean');
    this.#record.setPersistent(value);
  }
}
Object.setPrototypeOf(Handle.prototype, new Proxy(Object.prototype, refuseAssignment));

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
