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


/** The per-request state under a view: values decoded so far, and whether the view is still live. */
export class Properties {
  /** Values decoded (or assigned) this request: each key is parsed at most once. Made on first use. */
  private decoded: Map<string, unknown> | null = null;
  /** Keys whose value is an object handed out: its JSON is compared at commit. */
  private mutable: Set<string> | null = null;
  /** After express-session's regenerate: the old object keeps showing the old values, detached. */
  private detached: Map<string, unknown> | null = null;

  constructor(
    private readonly open: OpenSession,
    /** Told when a value that may change in place is handed out (the adapter arms its commit). */
    private readonly onUse: () => void,
  ) {}

  get(key: string): unknown {
    if (this.detached !== null) return this.detached.get(key);
    if (this.decoded?.has(key)) return this.decoded.get(key);
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
    this.decoded?.delete(key);
    this.mutable?.delete(key);
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
    if (this.detached !== null || this.mutable === null) return;
    for (const key of this.mutable) this.open.setRaw(key, encode(key, this.decoded!.get(key)));
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
    this.decoded = null;
    this.mutable = null;
  }

  private remember(key: string, value: unknown): void {
    (this.decoded ??= new Map()).set(key, value);
    if (typeof value === 'object' && value !== null) {
      (this.mutable ??= new Set()).add(key);
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

/** Members of a view that are not session values: read (and maybe set) from the view's own state. */
export type Members<S> = Record<string, { get(state: S): unknown; set?(state: S, value: unknown): void }>;

/** What a view's Proxy stands on: one plain object per request (the traps are shared by every view). */
interface Target<S> {
  props: Properties;
  state: S;
  members: Members<S>;
  library: string;
}

const own = Object.prototype.hasOwnProperty;
const reserved = (t: Target<unknown>, key: string | symbol): key is string => typeof key === 'string' && own.call(t.members, key);

/** The traps, one object for every view: per request only the target and the Proxy are made. */
const traps: ProxyHandler<Target<unknown>> = {
  get: (t, key) => (reserved(t, key) ? t.members[key]!.get(t.state) : typeof key === 'string' ? t.props.get(key) : undefined),
  set(t, key, value) {
    if (typeof key !== 'string') return false;
    if (!reserved(t, key)) {
      t.props.set(key, value);
      return true;
    }
    const setter = t.members[key]!.set;
    if (!setter) throw new TypeError(`req.session.${key} is part of the ${t.library} API and cannot be assigned`);
    setter(t.state, value);
    return true;
  },
  deleteProperty(t, key) {
    if (reserved(t, key)) throw new TypeError(`req.session.${key} is part of the ${t.library} API and cannot be deleted`);
    if (typeof key === 'string') t.props.delete(key);
    return true;
  },
  has: (t, key) => reserved(t, key) || (typeof key === 'string' && t.props.has(key)),
  ownKeys: (t) => t.props.keys(),
  getOwnPropertyDescriptor(t, key) {
    if (typeof key !== 'string' || reserved(t, key) || !t.props.has(key)) return undefined;
    return { value: t.props.get(key), writable: true, enumerable: true, configurable: true };
  },
  defineProperty(t, key, descriptor) {
    if (typeof key !== 'string' || reserved(t, key) || !('value' in descriptor)) return false;
    t.props.set(key, descriptor.value);
    return true;
  },
};

/**
 * A Proxy that shows `props` as plain properties and `members` (a table shared by every view of a
 * kind) as the view's own API. Assigning a member without a setter throws a TypeError naming it:
 * `id`, `cookie` and the methods are not data.
 */
export function view<S>(props: Properties, members: Members<S>, state: S, library: string): Record<string, unknown> {
  return new Proxy({ props, state, members, library } as Target<unknown>, traps) as unknown as Record<string, unknown>;
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
