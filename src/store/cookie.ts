/**
 * The stateless store: the session travels in the cookie. The key this store hands out is
 * the state itself (with its version, creation time and expiry), and the middleware's
 * `contentSecurity` protects it: sealed with AES-256-GCM by default for a stateless store
 * (`'private'`), or signed (`'signed'`, readable by the client, still tamper-proof). This is
 * actix-session's `CookieSessionStore`.
 */
import { SaveError, UpdateError, VersionConflictError } from '../errors';
import type { LoadedSession, SessionChange, SessionMeta, SessionSettings, SessionState, SessionStore } from './types';

/** Options of {@link CookieStore}. */
export interface CookieStoreOptions {
  /** The clock the expiry inside each cookie is checked against, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * The first element of every encoded state. Format 1 has no settings; format 2 carries the
 * session's settings (ttl, persistent) after the times. Both are read; a session without
 * settings is still written as format 1, the shorter.
 */
const FORMAT = 1;
const FORMAT_WITH_SETTINGS = 2;
// A key longer than a whole cookie can never have come from us (RFC 6265bis 5.6: 4096 bytes
// of name + value): refuse it before decoding anything.
const MAX_KEY_CHARS = 4096;
const KEY_CHARS = /^[A-Za-z0-9_-]+$/;
// Invalid UTF-8 is garbage, not something to repair with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A decoded key. */
interface Decoded {
  state: SessionState;
  version: number;
  createdAt: number;
  expiresAt: number;
  settings?: SessionSettings;
}

/**
 * A stateless session store: nothing is kept on the server; each cookie carries its own
 * state and expiry. With it the middleware seals the cookie by default (`contentSecurity:
 * 'private'`, AES-256-GCM under keys derived from `secret`, with a key id so secrets can
 * be rotated). It needs no secret of its own.
 *
 * What it cannot do, by its nature:
 * - revoke a copied cookie: `purge()` and `renew()` clear the browser's cookie, but a copy
 *   taken earlier keeps working until the expiry sealed inside it (which the server
 *   enforces, whatever the browser kept);
 * - merge concurrent changes: two parallel requests that change the session each send a
 *   cookie, and the browser keeps the last one;
 * - keep changes made after the response head went out (there is no cookie left to carry them);
 * - hold much: the cookie, name and value, must stay within 4096 bytes, i.e. roughly 2 kB of
 *   JSON state once sealed. A bigger state fails the request with a `SaveError` of kind
 *   `serialization` naming the size; no truncated cookie is ever sent.
 *
 * @example
 * ```ts
 * import { CookieStore } from 'latchkey';
 * import { session } from 'latchkey/express';
 *
 * app.use(session({ secret: [process.env.SESSION_SECRET, process.env.OLD_SESSION_SECRET], store: new CookieStore(), ttl: 3600 }));
 * ```
 */
export class CookieStore implements SessionStore {
  /** The state travels in the cookie: the middleware then defaults to `contentSecurity: 'private'`. */
  readonly stateless = true;
  readonly inProcess = true;
  private readonly now: () => number;

  constructor(options: CookieStoreOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Decodes `key`; null when it is malformed, structurally wrong or past its expiry. Never throws. */
  async load(key: string): Promise<LoadedSession | null> {
    const d = this.open(key);
    return d && { state: d.state, version: d.version, expiresAt: d.expiresAt, createdAt: d.createdAt, settings: d.settings };
  }

  /** The key is the encoded state, version 1, expiring `ttl` seconds from now. */
  async save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta): Promise<string> {
    const now = this.now();
    const d = { state, version: 1, createdAt: meta?.createdAt ?? now, expiresAt: expiry(now, ttl), settings: meta?.settings };
    return encode(d, (m, cause) => new SaveError('serialization', m, { cause }));
  }

  /**
   * Applies `change` to the state inside `key` and returns the key of the result: always a
   * new one (the version inside grows), so rotation is inherent. `change.rotateTo` and
   * `graceMs` change nothing: the previous key stays valid until its own expiry.
   * @throws VersionConflictError when `change.expectedVersion` is not the version inside `key`.
   */
  async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    const d = this.open(key);
    if (d === null) return null;
    if (change.expectedVersion !== undefined && change.expectedVersion !== d.version) {
      throw new VersionConflictError(change.expectedVersion, d.version);
    }
    for (const k of change.removed) d.state.delete(k);
    for (const [k, v] of change.set) d.state.set(k, v);
    const next = { ...d, version: d.version + 1, expiresAt: expiry(this.now(), ttl), settings: change.settings ?? d.settings };
    return encode(next, (m, cause) => new UpdateError('serialization', m, { cause }));
  }

  /** Returns a new key carrying the same state and the extended expiry; null when `key` is no longer valid. */
  async updateTtl(key: string, ttl: number): Promise<string | null> {
    const d = this.open(key);
    if (d === null) return null;
    return encode({ ...d, expiresAt: expiry(this.now(), ttl) }, (m, cause) => new UpdateError('serialization', m, { cause }));
  }

  /**
   * Does nothing: there is no server-side record to delete. The middleware still expires
   * the browser's cookie, but a copy of it stays valid until the expiry sealed inside.
   */
  async delete(_key: string): Promise<void> {}

  private open(key: string): Decoded | null {
    const d = decode(key);
    // The expiry inside is enforced here, on the server: a browser (or an attacker) that keeps
    // the cookie past its Max-Age gets nothing from it.
    return d !== null && d.expiresAt > this.now() ? d : null;
  }
}

function expiry(now: number, ttl: number): number {
  return Math.round(now + ttl * 1000);
}

/**
 * `[FORMAT, version, createdAt, expiresAt, key1, value1, key2, value2, …]` as compact JSON
 * (format 2: `[2, version, createdAt, expiresAt, ttl|null, persistent|null, key1, value1, …]`),
 * then base64url so the key is cookie-octets only (RFC 6265bis 4.1.1) even under `'signed'`.
 * Values are JSON texts already, so they are embedded as JSON rather than as strings of
 * JSON, which would escape every quote in them: the cookie has 4096 bytes to spend.
 * No compression: compressing attacker-influenced data next to secrets in one sealed value
 * leaks through the length (the CRIME/BREACH family).
 */
function encode(d: Omit<Decoded, 'state'> & { state: ReadonlyMap<string, string> }, error: (message: string, cause: unknown) => Error): string {
  const s = d.settings;
  const withSettings = s !== undefined && (s.ttl !== undefined || s.persistent !== undefined);
  let json = withSettings
    ? `[${FORMAT_WITH_SETTINGS},${d.version},${d.createdAt},${d.expiresAt},${s.ttl ?? null},${s.persistent ?? null}`
    : `[${FORMAT},${d.version},${d.createdAt},${d.expiresAt}`;
  for (const [k, v] of d.state) {
    try {
      // Embedded raw, so it must be one JSON text: anything else would corrupt the whole cookie.
      JSON.parse(v);
    } catch (err) {
      throw error(`session value of ${JSON.stringify(k)} is not JSON text`, err);
    }
    json += `,${JSON.stringify(k)},${v}`;
  }
  return Buffer.from(`${json}]`, 'utf8').toString('base64url');
}

/** The state inside `key`, or null for anything that is not exactly what `encode` makes. */
function decode(key: string): Decoded | null {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_CHARS || !KEY_CHARS.test(key)) return null;
  const bytes = Buffer.from(key, 'base64url');
  // Base64 decoding ignores a dangling character and the slack bits of the last one: accept
  // only the one text `encode` makes of these bytes.
  if (bytes.toString('base64url') !== key) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(bytes));
  } catch {
    // Not UTF-8 or not JSON: garbage from the client's side, which is "no session", not an error.
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length < 4 || parsed.length % 2 !== 0) return null;
  const [format, version, createdAt, expiresAt, ttl, persistent] = parsed as unknown[];
  if (format !== FORMAT && format !== FORMAT_WITH_SETTINGS) return null;
  if (!Number.isSafeInteger(version) || (version as number) < 0) return null;
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt) || typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) return null;
  let settings: SessionSettings | undefined;
  let first = 4;
  if (format === FORMAT_WITH_SETTINGS) {
    if (parsed.length < 6 || !(ttl === null || (typeof ttl === 'number' && ttl > 0)) || !(persistent === null || typeof persistent === 'boolean')) return null;
    settings = {};
    if (ttl !== null) settings.ttl = ttl as number;
    if (persistent !== null) settings.persistent = persistent as boolean;
    first = 6;
  }
  // Pairs go into a Map, never onto an object: "__proto__" or "constructor" are ordinary keys.
  const state: SessionState = new Map();
  for (let i = first; i < parsed.length; i += 2) {
    const k: unknown = parsed[i];
    if (typeof k !== 'string' || state.has(k)) return null;
    // JSON.stringify of what JSON.parse produced gives back the text `encode` embedded (values
    // come from JSON.stringify); an own "__proto__" property survives both as data.
    state.set(k, JSON.stringify(parsed[i + 1]));
  }
  return { state, version: version as number, createdAt, expiresAt, settings };
}
