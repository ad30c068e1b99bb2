/**
 * Session values as plain properties, the shape express-session and koa-session give: each
 * top-level property is one key of the session's string map, so per-key merges still hold. A
 * value is decoded once per request, on first access; an object read or assigned may be mutated
 * in place (`req.session.passport.user = 7`), so its JSON is compared with the loaded text at
 * commit (`flush`). Values follow JSON as the replaced libraries store them: `undefined` inside an
 * object is dropped, inside an array it becomes `null`, and a top-level `undefined` (or a function)
 * removes the key.
 */
import type { OpenSession } from '../adapter';

/** Members of a view that are not session values. */
export type Members = Record<string, { get(): unknown; set?(value: unknown): void }>;

/** The per-request state under a view: values decoded so far, and whether the view is still live. */
export class Properties {
  /** Values decoded (or assigned) this request: each key is parsed at most once. */
  private readonly decoded = new Map<string, unknown>();
  /** Keys whose value is an object handed out: its JSON is compared at commit. */
  private readonly mutable = new Set<string>();
  /** After express-session's regenerate: the old object keeps showing the old values, detached. */
  private detached: Map<string, unknown> | null = null;

  constructor(
    private readonly open: OpenSession,
    /** Told when a value that may change in place is handed out (the adapter arms its commit). */
    private readonly onUse: () => void,
  ) {}

  get(key: string): unknown {
    if (this.detached !== null) return this.detached.get(key);
    if (this.decoded.has(key)) return this.decoded.get(key);
    const json = this.open.raw(key);
    if (json === undefined) return undefined;
    const value: unknown = JSON.parse(json);
    this.remember(key, value);
    return value;
  }

  set(key: string, value: unknown): void {
    if (this.detached !== null) {
      this.detached.set(key, value);
      return;
    }
    const json = encode(key, value);
    this.open.setRaw(key, json);
    this.decoded.delete(key);
    this.mutable.delete(key);
    if (json !== undefined) this.remember(key, value);
  }

  delete(key: string): void {
    if (this.detached !== null) this.detached.delete(key);
    else this.set(key, undefined);
  }

  has(key: string): boolean {
    return this.detached !== null ? this.detached.has(key) : this.open.raw(key) !== undefined;
  }

  keys(): string[] {
    return this.detached !== null ? [...this.detached.keys()] : this.open.keys();
  }

  /** Writes what in-place mutations did to the objects handed out, as per-key changes. */
  flush(): void {
    if (this.detached !== null) return;
    for (const key of this.mutable) this.open.setRaw(key, encode(key, this.decoded.get(key)));
  }

  /** Freezes this view on the values it shows now; it no longer reads or writes the session. */
  detach(): void {
    this.flush();
    const snapshot = new Map<string, unknown>();
    for (const key of this.keys()) snapshot.set(key, this.get(key));
    this.reset();
    this.detached = snapshot;
  }

  /** Forgets what was decoded (after a reload, the session is what the store has). */
  reset(): void {
    this.decoded.clear();
    this.mutable.clear();
  }

  private remember(key: string, value: unknown): void {
    this.decoded.set(key, value);
    if (typeof value === 'object' && value !== null) {
      this.mutable.add(key);
      this.onUse();
    }
  }
}

/** JSON text as express-session and koa-session would store it, or undefined for "no value". */
function encode(key: string, value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`session value ${JSON.stringify(key)} cannot be stored as JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A Proxy that shows `props` as plain properties and `members` as the view's own API. Assigning a
 * member without a setter throws a TypeError naming it: `id`, `cookie` and the methods are not data.
 */
export function view(props: Properties, members: Members, library: string): Record<string, unknown> {
  const reserved = (key: string | symbol): key is string => typeof key === 'string' && Object.prototype.hasOwnProperty.call(members, key);
  return new Proxy(Object.create(null) as Record<string, unknown>, {
    get: (_t, key) => (reserved(key) ? members[key]!.get() : typeof key === 'string' ? props.get(key) : undefined),
    set(_t, key, value) {
      if (typeof key !== 'string') return false;
      if (reserved(key)) {
        const setter = members[key]!.set;
        if (!setter) throw new TypeError(`req.session.${key} is part of the ${library} API and cannot be assigned`);
        setter(value);
      } else {
        props.set(key, value);
      }
      return true;
    },
    deleteProperty(_t, key) {
      if (reserved(key)) throw new TypeError(`req.session.${key} is part of the ${library} API and cannot be deleted`);
      if (typeof key === 'string') props.delete(key);
      return true;
    },
    has: (_t, key) => reserved(key) || (typeof key === 'string' && props.has(key)),
    ownKeys: () => props.keys(),
    getOwnPropertyDescriptor(_t, key) {
      if (typeof key !== 'string' || reserved(key) || !props.has(key)) return undefined;
      return { value: props.get(key), writable: true, enumerable: true, configurable: true };
    },
    defineProperty(_t, key, descriptor) {
      if (typeof key !== 'string' || reserved(key) || !('value' in descriptor)) return false;
      props.set(key, descriptor.value);
      return true;
    },
  });
}

/** Node-style: `fn(cb)` calls back on a later tick; `fn()` returns a promise. */
export function callbackOrPromise(work: () => void | Promise<void>, cb: unknown): Promise<void> | undefined {
  const done = Promise.resolve().then(work);
  if (typeof cb !== 'function') return done;
  done.then(
    () => (cb as (err?: unknown) => void)(),
    (err: unknown) => (cb as (err?: unknown) => void)(err),
  );
  return undefined;
}
