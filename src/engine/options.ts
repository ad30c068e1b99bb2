/**
 * The options both adapters take, their defaults, and the checks that turn a misuse into a
 * `ConfigError` when the middleware is created rather than a surprise in production.
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { type CookieCodec, PrivateCodec, SignedCodec } from '../cookie/codec';
import { type CookieOptions, MAX_AGE_CAP_SECONDS, SetCookieWriter } from '../cookie/serialize';
import { ConfigError } from '../errors';
import { MemoryStore } from '../store/memory';
import type { SessionStore } from '../store/types';

/** Something the engine reports that is not an error of the request. */
export type SessionEvent =
  | { type: 'invalid-cookie' }
  | { type: 'corrupt-session'; error: Error }
  | { type: 'store-unavailable'; error: Error }
  | { type: 'late-commit-failed'; error: Error };

/** Options of `session()` in `latchkey/express` and `latchkey/koa`. */
export interface SessionOptions {
  /**
   * One secret or a list, each at least 32 characters. The first signs (or seals); all are
   * accepted; a cookie accepted under an older one is re-issued under the first.
   * Koa: defaults to `app.keys`.
   */
  secret?: string | readonly string[];
  /** Default: a new {@link MemoryStore}. */
  store?: SessionStore;
  /** Cookie name. Default `sid`. */
  name?: string;
  /** Session lifetime in seconds. Default 86 400 (one day). */
  ttl?: number;
  /** `'persistent'` (default): the cookie has Max-Age. `'browser-session'`: no Max-Age, the state still expires. */
  lifecycle?: 'persistent' | 'browser-session';
  /**
   * When the TTL is pushed forward. `'sliding'` (default): on change, and on read-only
   * traffic once half the TTL is spent (at most one write per half-TTL). `'on-change'`:
   * only when the session changes. `'on-every-request'`: on every request that loads it.
   */
  ttlExtension?: 'on-change' | 'on-every-request' | 'sliding';
  /** Seconds after creation at which a session ends however active it is (OWASP absolute timeout). Off by default. */
  absoluteTtl?: number;
  /** `'on-update'` (default): every committed change hands out a new cookie value. `'on-renew'`: only `renew()` does. */
  rotation?: 'on-update' | 'on-renew';
  /** How long a rotated-out cookie value keeps working, in ms. Default 10 000; 0 for none. */
  rotationGraceMs?: number;
  cookie?: CookieOptions;
  /** `'signed'` (HMAC, readable) or `'private'` (AES-256-GCM). Default `'signed'`, `'private'` with a stateless store. */
  contentSecurity?: 'signed' | 'private';
  /** Deadline for every store call, in ms. Default 2 000. */
  storeTimeoutMs?: number;
  /** On a failed load: `'fail'` (default, 503) or `'anonymous'` (serve an empty session that is not saved). */
  onStoreError?: 'fail' | 'anonymous';
  /** Receives events such as a corrupt record or a failed late commit. Default: `console.warn` for all but invalid cookies. */
  onEvent?: (event: SessionEvent) => void;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * `'session'` (default): a response to a request carrying a live session gets
   * `Cache-Control: no-store` unless the handler sets its own, so neither a shared cache nor the
   * back button shows a signed-in page later. `'cookie'`: only responses that set the cookie.
   */
  cacheControl?: 'session' | 'cookie';
}

/** Options after defaults and checks. */
export interface ResolvedOptions {
  store: SessionStore;
  codec: CookieCodec;
  writer: SetCookieWriter;
  ttl: number;
  persistent: boolean;
  ttlExtension: 'on-change' | 'on-every-request' | 'sliding';
  absoluteTtl: number | undefined;
  rotateOnUpdate: boolean;
  rotationGraceMs: number;
  storeTimeoutMs: number;
  anonymousOnStoreError: boolean;
  onEvent: (event: SessionEvent) => void;
  now: () => number;
  recordId: (key: string) => string | undefined;
  noStoreWithSession: boolean;
  /** The seed a rotation of `key` uses: HMAC-SHA256 under a key derived from the first secret. */
  seedFor: (key: string) => string;
}

const MIN_SECRET_LENGTH = 32;

const KNOWN_OPTIONS: readonly (keyof SessionOptions)[] = [
  'secret', 'store', 'name', 'ttl', 'lifecycle', 'ttlExtension', 'absoluteTtl', 'rotation', 'rotationGraceMs',
  'cookie', 'contentSecurity', 'storeTimeoutMs', 'onStoreError', 'onEvent', 'now', 'cacheControl',
];
const KNOWN_COOKIE_OPTIONS: readonly (keyof CookieOptions)[] = ['path', 'domain', 'secure', 'httpOnly', 'sameSite', 'partitioned', 'priority'];

/** What to do instead, for options people bring from express-session and koa-session. */
const HINTS: Record<string, string> = {
  resave: 'latchkey writes a session only when it changed; remove it (or use latchkey/express-session, which accepts it)',
  saveUninitialized: 'latchkey never saves an empty new session; remove it (or use latchkey/express-session)',
  rolling: "use ttlExtension: 'on-every-request' (or the default 'sliding')",
  proxy: "set Express's trust proxy (or Koa's app.proxy); cookie.secure 'auto' follows it",
  genid: 'session keys are made by the store; remove it',
  unset: 'call session.purge() to log out; remove it',
  key: "the cookie name is 'name' (or use latchkey/koa-session, which accepts 'key')",
  maxAge: 'the lifetime is ttl, in seconds',
  'cookie.maxAge': 'the lifetime is the ttl option, in seconds (cookie.maxAge was in ms)',
  'cookie.expires': 'the lifetime is the ttl option, in seconds',
  'cookie.signed': 'the cookie is always signed (or sealed, contentSecurity)',
};

/**
 * `app.use(session)` (not called): the framework then calls session(req, res, next) or
 * session(ctx, next) on every request. Say so, rather than "a secret is required".
 */
export function checkOptionsObject(options: unknown): void {
  const o = options as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object') return;
  if ((typeof o.headers === 'object' && typeof o.method === 'string') || (typeof o.req === 'object' && typeof o.res === 'object' && 'app' in o)) {
    throw new ConfigError('session was handed a request instead of options: call it, app.use(session({ secret, … })), not app.use(session)');
  }
}

/** Every option must be one we know: a misspelt or foreign one is never silently ignored. */
export function checkKnown(options: object, known: readonly string[], prefix = ''): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const full = prefix + name;
    const hint = HINTS[full];
    throw new ConfigError(`unknown option ${full}${hint ? `: ${hint}` : ''}`, { option: full });
  }
}

function defaultOnEvent(event: SessionEvent): void {
  if (event.type !== 'invalid-cookie') console.warn(`latchkey: ${event.type}: ${event.error.message}`);
}

/** Applies defaults and validates; throws `ConfigError`. */
export function resolveOptions(options: SessionOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError('session options must be an object: session({ secret, … })');
  checkOptionsObject(options);
  checkKnown(options, KNOWN_OPTIONS);
  if (options.cookie !== undefined) checkKnown(options.cookie, KNOWN_COOKIE_OPTIONS, 'cookie.');
  const secrets = checkSecrets(options.secret);
  const store = options.store ?? new MemoryStore();
  const name = options.name ?? 'sid';
  const ttl = options.ttl ?? 86_400;
  positive('ttl', ttl);
  if (ttl > MAX_AGE_CAP_SECONDS && (options.lifecycle ?? 'persistent') === 'persistent') {
    // RFC 6265bis 5.5: a user agent caps Max-Age at 400 days; a longer TTL would outlive its cookie silently.
    throw new ConfigError('ttl must not exceed 400 days (34 560 000 s): browsers cap cookie Max-Age there (RFC 6265bis)');
  }
  if (options.absoluteTtl !== undefined) positive('absoluteTtl', options.absoluteTtl);
  const graceMs = options.rotationGraceMs ?? 10_000;
  if (!(graceMs >= 0) || !Number.isFinite(graceMs)) throw new ConfigError('rotationGraceMs must be 0 or a positive number of ms');
  const storeTimeoutMs = options.storeTimeoutMs ?? 2_000;
  positive('storeTimeoutMs', storeTimeoutMs);
  oneOf('lifecycle', options.lifecycle, ['persistent', 'browser-session']);
  oneOf('ttlExtension', options.ttlExtension, ['on-change', 'on-every-request', 'sliding']);
  oneOf('rotation', options.rotation, ['on-update', 'on-renew']);
  oneOf('contentSecurity', options.contentSecurity, ['signed', 'private']);
  oneOf('onStoreError', options.onStoreError, ['fail', 'anonymous']);
  oneOf('cacheControl', options.cacheControl, ['session', 'cookie']);
  const security = options.contentSecurity ?? (store.stateless ? 'private' : 'signed');
  return {
    store,
    codec: security === 'private' ? new PrivateCodec(secrets, name) : new SignedCodec(secrets),
    writer: new SetCookieWriter(name, options.cookie),
    ttl,
    persistent: (options.lifecycle ?? 'persistent') === 'persistent',
    ttlExtension: options.ttlExtension ?? 'sliding',
    absoluteTtl: options.absoluteTtl,
    rotateOnUpdate: (options.rotation ?? 'on-update') === 'on-update',
    rotationGraceMs: graceMs,
    storeTimeoutMs,
    anonymousOnStoreError: options.onStoreError === 'anonymous',
    onEvent: options.onEvent ?? defaultOnEvent,
    now: options.now ?? Date.now,
    recordId: (key) => store.recordId?.(key) ?? undefined,
    noStoreWithSession: (options.cacheControl ?? 'session') === 'session',
    seedFor: seeds(secrets[0]!),
  };
}

const MAKE_ONE = `make one with: node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`;

/**
 * Rotation seeds: the next validator of a key is HMAC-SHA256(k, key), k derived from the first
 * secret with HKDF. Only the server can name the next key of a value (256 bits, unpredictable
 * without k; the chain starts from CSPRNG bytes), and every request rotating from one value names
 * the same next key, so parallel requests whose writes were abandoned hand out one compound cookie.
 * A dump of the store holds only hashes of validators, so even with the secret it yields no key.
 */
function seeds(secret: string): (key: string) => string {
  const k = Buffer.from(hkdfSync('sha256', secret, 'latchkey', 'latchkey rotation v1', 32));
  return (key) => createHmac('sha256', k).update(key).digest('base64url');
}

function checkSecrets(secret: string | readonly string[] | undefined): string[] {
  const list = typeof secret === 'string' ? [secret] : secret ? [...secret] : [];
  if (list.length === 0) throw new ConfigError(`a secret is required: session({ secret }) (Koa also accepts app.keys); ${MAKE_ONE}`, { option: 'secret' });
  for (const s of list) {
    if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) {
      const got = typeof s === 'string' ? `one has ${s.length}` : `one is a ${typeof s}`;
      throw new ConfigError(`every secret must be a string of at least ${MIN_SECRET_LENGTH} characters (${got}); ${MAKE_ONE}`, { option: 'secret' });
    }
  }
  return list;
}

function positive(name: string, value: number): void {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new ConfigError(`${name} must be a positive number`);
  }
}

function oneOf(name: string, value: string | undefined, allowed: readonly string[]): void {
  if (value !== undefined && !allowed.includes(value)) {
    throw new ConfigError(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
}
