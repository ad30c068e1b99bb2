/**
 * The koa-session-shaped `ctx.session`: values as properties, `isNew`, `maxAge` (ms or
 * 'session'), `length`, `populated`, `save()`, `regenerate()`, `manuallyCommit()`; and koa-session's
 * options translated to latchkey's. Framework-free: `middleware/koa-session.ts` wires it to a context.
 */
import { inspect } from 'node:util';
import type { OpenSession, SessionEngine, SessionOptions } from '../adapter';
import { ConfigError } from '../errors';
import { callbackOrPromise, type Members, Properties, view } from './properties';

/** The koa-session options latchkey understands, beside its own. */
export interface KoaSessionOptions extends Omit<SessionOptions, 'cookie' | 'name' | 'ttl' | 'lifecycle'> {
  /** Cookie name. Default `koa.sess`, as koa-session's. */
  key?: string;
  /** Lifetime in ms (default 86 400 000, one day), or `'session'` for a browser-session cookie (the state then lives one day). */
  maxAge?: number | 'session';
  /** false: nothing is committed unless the handler calls `ctx.session.manuallyCommit()`. Default true. */
  autoCommit?: boolean;
  /** true: the TTL is pushed forward on every request. */
  rolling?: boolean;
  /** true: extended when close to expiry (latchkey's default 'sliding' policy does this). */
  renew?: boolean;
  /** Accepted as koa-session has it: the cookie is always signed (or sealed), and always overwritten. */
  signed?: boolean;
  overwrite?: boolean;
  httpOnly?: boolean;
  secure?: boolean | 'auto';
  sameSite?: 'lax' | 'strict' | 'none' | false;
  path?: string;
  domain?: string;
}

const OWN = ['secret', 'store', 'ttlExtension', 'absoluteTtl', 'rotation', 'rotationGraceMs', 'contentSecurity', 'storeTimeoutMs', 'onStoreError', 'onEvent', 'now', 'cacheControl'] as const;
const COOKIE = ['httpOnly', 'secure', 'sameSite', 'path', 'domain'] as const;
const REFUSED: Record<string, string> = {
  externalKey: 'the key travels in the cookie; remove externalKey',
  ContextStore: 'give a latchkey store as store (RedisStore, PostgresStore, MemoryStore, CookieStore)',
  encode: 'values are JSON; remove encode',
  decode: 'values are JSON; remove decode',
  genid: 'session keys are made by the store; remove genid',
  prefix: "give the store its prefix (RedisStore's prefix option)",
  valid: 'check the session in your own middleware after this one',
  beforeSave: 'change the session in your own middleware before the response',
};

/** koa-session's options as latchkey's; anything unknown or without meaning here is a ConfigError. */
export function translateOptions(options: KoaSessionOptions): { latchkey: SessionOptions; autoCommit: boolean } {
  const o = options as Record<string, unknown>;
  const known = new Set<string>([...OWN, ...COOKIE, 'key', 'maxAge', 'maxage', 'autoCommit', 'rolling', 'renew', 'signed', 'overwrite']);
  for (const name of Object.keys(o)) {
    if (REFUSED[name]) throw new ConfigError(`latchkey/koa-session: ${name} has no meaning here: ${REFUSED[name]}`, { option: name });
    if (!known.has(name)) throw new ConfigError(`latchkey/koa-session: unknown option ${name}`, { option: name });
  }
  if (o.signed === false) throw new ConfigError('latchkey/koa-session: the cookie is always signed (signed: false is refused)', { option: 'signed' });
  const store = o.store as Record<string, unknown> | undefined;
  if (store && typeof store.load !== 'function' && typeof store.get === 'function') {
    throw new ConfigError('store is a koa-session store; latchkey needs a latchkey store: RedisStore from latchkey/redis, PostgresStore from latchkey/postgres, or MemoryStore', { option: 'store' });
  }
  const latchkey: SessionOptions = {};
  for (const name of OWN) if (o[name] !== undefined) (latchkey as Record<string, unknown>)[name] = o[name];
  latchkey.name = options.key ?? 'koa.sess';
  const maxAge = (o.maxAge ?? o.maxage ?? 86_400_000) as unknown;
  if (maxAge === 'session') {
    latchkey.lifecycle = 'browser-session';
    latchkey.ttl = 86_400;
  } else if (typeof maxAge === 'number' && maxAge > 0) {
    latchkey.ttl = maxAge / 1000;
  } else {
    throw new ConfigError("latchkey/koa-session: maxAge must be a positive number of ms or 'session'", { option: 'maxAge' });
  }
  if (options.rolling) latchkey.ttlExtension = 'on-every-request';
  latchkey.cookie = Object.fromEntries(COOKIE.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
  return { latchkey, autoCommit: options.autoCommit ?? true };
}

/** What the adapter hands the view. */
export interface KoaViewHost {
  engine: SessionEngine;
  open: OpenSession;
  /** Told when the commit may have something to do. */
  use(): void;
  /** Commits now (autoCommit: false). */
  commit(): Promise<void>;
}

/** The koa-session-shaped session object. */
export type KoaSessionObject = Record<string, unknown>;

/** One view's state. */
interface ViewState {
  host: KoaViewHost;
  props: Properties;
}

const method = (fn: (st: ViewState, cb: unknown) => unknown) => ({ get: (st: ViewState) => (cb?: unknown) => fn(st, cb) });
const data = (st: ViewState) => Object.fromEntries(st.props.keys().map((k) => [k, st.props.get(k)]));

/** koa-session's API on every view: one table, so a request makes no closures for it. */
const MEMBERS: Members<ViewState> = {
  isNew: { get: (st) => st.host.open.session.isNew },
  length: { get: (st) => st.props.keys().length },
  populated: { get: (st) => st.props.keys().length > 0 },
  externalKey: { get: () => undefined },
  maxAge: {
    get: (st) => (st.host.open.session.persistent ? st.host.open.session.ttl * 1000 : 'session'),
    set(st, value) {
      const s = st.host.open.session;
      if (value === 'session') s.persistent = false;
      else if (typeof value === 'number' && value > 0) {
        s.ttl = value / 1000;
        s.persistent = true;
      } else throw new TypeError("ctx.session.maxAge must be a positive number of ms or 'session'");
      st.host.use();
    },
  },
  // The commit runs once the middleware chain has settled, before the response: save() only
  // records in-place changes and asks for the TTL to be pushed forward, as koa-session's forced save does.
  save: method((st, cb) => callbackOrPromise(() => (st.props.flush(), st.host.engine.touch(st.host.open), st.host.use()), cb)),
  regenerate: method((st, cb) => callbackOrPromise(() => (st.host.open.session.renew(), st.host.use()), cb)),
  manuallyCommit: method((st) => st.host.commit()),
  toJSON: method((st) => data(st)),
  [inspect.custom as unknown as string]: method((st) => data(st)),
};

/** A koa-session-shaped view of the host's session. */
export function koaSessionView(host: KoaViewHost): { session: KoaSessionObject; props: Properties } {
  const props = new Properties(host.open, host.use);
  return { session: view(props, MEMBERS, { host, props }, 'koa-session'), props };
}
