/**
 * The express-session-shaped `req.session`: values as properties, `id`, `cookie`, and
 * regenerate/destroy/reload/save/touch/resetMaxAge, each with a callback or a promise; and
 * express-session's options translated to latchkey's. Framework-free: the adapter
 * (`middleware/express-session.ts`) wires it to a request.
 */
import type { OpenSession, SessionEngine, SessionOptions } from '../adapter';
import { ConfigError } from '../errors';
import { callbackOrPromise, type Members, Properties, view } from './properties';

/** The express-session options latchkey understands, beside its own. */
export interface ExpressSessionOptions extends Omit<SessionOptions, 'cookie' | 'name' | 'ttl' | 'lifecycle'> {
  /** Cookie name. Default `connect.sid`, as express-session's. */
  name?: string;
  cookie?: {
    /** Lifetime in ms; unset (the default, as express-session's) gives a browser-session cookie whose state lives `ttl` seconds. */
    maxAge?: number | null;
    path?: string;
    domain?: string;
    secure?: boolean | 'auto';
    httpOnly?: boolean;
    sameSite?: boolean | 'lax' | 'strict' | 'none';
    partitioned?: boolean;
    priority?: 'low' | 'medium' | 'high';
  };
  /** Seconds a session without cookie.maxAge lives in the store. Default 86 400. */
  ttl?: number;
  /** true: the TTL is pushed forward on every request (latchkey's ttlExtension 'on-every-request'). */
  rolling?: boolean;
  /** Accepted for compatibility: latchkey writes a session only when it changed (a resave is a TTL extension). */
  resave?: boolean;
  /** Accepted for compatibility: a session is stored once it holds a value, never empty. */
  saveUninitialized?: boolean;
  /** true: trust X-Forwarded-Proto for cookie.secure 'auto'; false: only the socket; unset: Express's trust proxy. */
  proxy?: boolean;
}

const OWN = ['secret', 'store', 'ttlExtension', 'absoluteTtl', 'rotation', 'rotationGraceMs', 'contentSecurity', 'storeTimeoutMs', 'onStoreError', 'onEvent', 'now', 'cacheControl'] as const;
const REFUSED: Record<string, string> = {
  genid: 'session keys are made by the store (strict mode: a key the store did not issue is never adopted); remove genid',
  unset: "to end a session call req.session.destroy(); remove unset ('keep' is what latchkey does)",
  'cookie.expires': 'give cookie.maxAge (ms) instead of a fixed expiry date',
  'cookie.signed': 'the cookie is always signed (or sealed: contentSecurity)',
};
const COOKIE = ['maxAge', 'path', 'domain', 'secure', 'httpOnly', 'sameSite', 'partitioned', 'priority'];

/** express-session's options as latchkey's; anything unknown or without meaning here is a ConfigError saying what to do. */
export function translateOptions(options: ExpressSessionOptions): { latchkey: SessionOptions; proxy: boolean | undefined } {
  const o = options as Record<string, unknown>;
  const known = new Set<string>([...OWN, 'name', 'cookie', 'ttl', 'rolling', 'resave', 'saveUninitialized', 'proxy']);
  for (const name of Object.keys(o)) refuse(name, known.has(name));
  const cookie = (o.cookie ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(cookie)) refuse(`cookie.${name}`, COOKIE.includes(name));
  for (const flag of ['rolling', 'resave', 'saveUninitialized', 'proxy']) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw new ConfigError(`${flag} must be a boolean`, { option: flag });
  }
  const store = o.store as Record<string, unknown> | undefined;
  if (store && typeof store.load !== 'function' && typeof store.get === 'function') {
    throw new ConfigError('store is an express-session store; latchkey needs a latchkey store: RedisStore from latchkey/redis, PostgresStore from latchkey/postgres, or MemoryStore', { option: 'store' });
  }
  const latchkey: SessionOptions = {};
  for (const name of OWN) if (o[name] !== undefined) (latchkey as Record<string, unknown>)[name] = o[name];
  latchkey.name = options.name ?? 'connect.sid';
  const maxAge = cookie.maxAge;
  if (maxAge !== undefined && maxAge !== null && !(typeof maxAge === 'number' && maxAge > 0)) {
    throw new ConfigError('cookie.maxAge must be a positive number of milliseconds (or null for a browser-session cookie)', { option: 'cookie.maxAge' });
  }
  if (typeof maxAge === 'number') {
    if (options.ttl !== undefined) throw new ConfigError('give cookie.maxAge or ttl, not both', { option: 'ttl' });
    latchkey.ttl = maxAge / 1000;
  } else {
    latchkey.ttl = options.ttl ?? 86_400;
    latchkey.lifecycle = 'browser-session';
  }
  if (options.rolling) latchkey.ttlExtension = 'on-every-request';
  // express-session's sameSite: true means Strict.
  const sameSite = cookie.sameSite === true ? 'strict' : cookie.sameSite;
  latchkey.cookie = Object.fromEntries(
    Object.entries({ ...cookie, sameSite }).filter(([k, v]) => k !== 'maxAge' && v !== undefined),
  ) as SessionOptions['cookie'];
  return { latchkey, proxy: options.proxy };
}

function refuse(name: string, known: boolean): void {
  if (REFUSED[name]) throw new ConfigError(`latchkey/express-session: ${name} has no meaning here: ${REFUSED[name]}`, { option: name });
  if (!known) throw new ConfigError(`latchkey/express-session: unknown option ${name}`, { option: name });
}

/** What the adapter hands the view: the request's session, the engine, and how to put a new view on the request. */
export interface ViewHost {
  engine: SessionEngine;
  open: OpenSession;
  /** Told when the commit may have something to do (an object handed out, a method called). */
  use(): void;
  /** Puts `view` (or nothing, after destroy) where the handler finds `req.session`. */
  replace(view: ExpressSessionObject | undefined, props: Properties | undefined): void;
}

/** The express-session-shaped session object. */
export type ExpressSessionObject = Record<string, unknown>;

/** One view's state: the host, its values, and `cookie`, made when first read. */
interface ViewState {
  host: ViewHost;
  props: Properties;
  cookie?: Record<string, unknown>;
}

/** A member that is a method: a function bound to the view's state, made when it is read (rarely). */
const method = (fn: (st: ViewState, cb: unknown) => void | Promise<void> | undefined) => ({ get: (st: ViewState) => (cb?: unknown) => fn(st, cb) });

/** express-session's API on every view: one table, so a request makes no closures for it. */
const MEMBERS: Members<ViewState> = {
  id: { get: (st) => st.host.open.id },
  cookie: { get: (st) => (st.cookie ??= cookieView(st.host)) },
  regenerate: method((st, cb) => {
    // express-session: the old object keeps its data (passport's keepSessionInfo copies it back),
    // and req.session becomes a new, empty session under a new key.
    const s = st.host.open.session;
    st.props.detach();
    s.clear();
    s.renew();
    st.host.use();
    const next = expressSessionView(st.host);
    st.host.replace(next.session, next.props);
    return callbackOrPromise(() => {}, cb);
  }),
  destroy: method((st, cb) => {
    st.props.detach();
    st.host.open.session.purge();
    st.host.use();
    st.host.replace(undefined, undefined);
    return callbackOrPromise(() => {}, cb);
  }),
  reload: method((st, cb) =>
    callbackOrPromise(async () => {
      await st.host.engine.reload(st.host.open);
      st.props.reset();
    }, cb),
  ),
  // The commit runs before the response head leaves, whatever the handler does next: saving
  // now only needs the in-place changes recorded.
  save: method((st, cb) => callbackOrPromise(() => st.props.flush(), cb)),
  touch: method((st) => st.host.engine.touch(st.host.open)),
  resetMaxAge: method((st) => st.host.engine.touch(st.host.open)),
};

/** A new express-session-shaped view of the host's session. */
export function expressSessionView(host: ViewHost): { session: ExpressSessionObject; props: Properties } {
  const props = new Properties(host.open, host.use);
  return { session: view(props, MEMBERS, { host, props }, 'express-session'), props };
}

/** `req.session.cookie`: the attributes, and maxAge/expires reading and setting this session's TTL. */
function cookieView(host: ViewHost): Record<string, unknown> {
  const { engine, open } = host;
  const s = open.session;
  const left = () => (open.expiresAt > 0 ? open.expiresAt - Date.now() : s.ttl * 1000);
  const setMaxAge = (ms: unknown) => {
    if (ms === null || ms === false) s.persistent = false;
    else if (typeof ms === 'number' && ms > 0) {
      s.ttl = ms / 1000;
      s.persistent = true;
    } else throw new TypeError('req.session.cookie.maxAge must be a positive number of ms, or null for a browser-session cookie');
    host.use();
  };
  const cookie = {
    get maxAge() {
      return s.persistent ? left() : null;
    },
    set maxAge(ms: unknown) {
      setMaxAge(ms);
    },
    get originalMaxAge() {
      return s.persistent ? s.ttl * 1000 : null;
    },
    get expires() {
      return s.persistent ? new Date(Date.now() + left()) : null;
    },
    set expires(date: unknown) {
      setMaxAge(date instanceof Date ? date.getTime() - Date.now() : date);
    },
    get secure() {
      return engine.cookie(open).secure;
    },
    get httpOnly() {
      return engine.cookie(open).httpOnly;
    },
    get sameSite() {
      return engine.cookie(open).sameSite;
    },
    get path() {
      return engine.cookie(open).path;
    },
    get domain() {
      return engine.cookie(open).domain;
    },
    toJSON() {
      const c = engine.cookie(open);
      return { originalMaxAge: this.originalMaxAge, expires: this.expires, secure: c.secure, httpOnly: c.httpOnly, domain: c.domain, path: c.path, sameSite: c.sameSite };
    },
  };
  return cookie;
}
