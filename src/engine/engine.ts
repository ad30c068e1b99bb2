/**
 * The request lifecycle, framework-free: `open` turns a Cookie header into a session record
 * (loading it from the store when the cookie verifies); `finish` decides, from what the request
 * did, whether anything must be committed, commits it, and says which headers to send. Changes
 * made after the response head went out are saved here too. Adapters only translate; their
 * whole contract is `latchkey/adapter`.
 */
import { cookieValues } from '../cookie/parse';
import { LoadError } from '../errors';
import { Committer } from './commit';
import { withDeadline } from './deadline';
import { type ResolvedOptions, type SessionOptions, resolveOptions } from './options';
import { type RecordListener, SessionRecord } from './record';
import type { Session } from './session';

/** Between the two keys of a cookie that rotated (never in a store key: see SessionStore). */
const KEY_SEPARATOR = '~';
const CACHE_CONTROL_OK = /(?:^|[\s,])(?:private|no-store)(?:$|[\s,=])/i;

/** One request's session, as an adapter holds it between `open` and `finish`. */
export interface OpenSession {
  /** The handle to give the handler: `req.session`, `ctx.session`, `request.session`. */
  readonly session: Session;
  /** For views that show the session another way (the drop-ins): the JSON text under `key`. */
  raw(key: string): string | undefined;
  /** Sets the JSON text under `key` (undefined removes it); the text that was loaded is no change. */
  setRaw(key: string, json: string | undefined): void;
  /** Every key holding a value. */
  keys(): string[];
  /** The store's id for the record (stable across rotations, cannot open it); undefined while new. */
  readonly id: string | undefined;
  /** Epoch ms at which the store forgets the session as loaded; 0 while new. */
  readonly expiresAt: number;
  /**
   * A Cache-Control to set on the response before the handler runs (the handler may replace it):
   * `no-store` when the request carries a live session (option `cacheControl: 'session'`), so
   * neither a shared cache nor the browser's back button shows a signed-in page after logout.
   */
  readonly cacheControl: string | undefined;
}

/** The cookie's attributes, as a view shows them (express-session's `req.session.cookie`). */
export interface CookieAttributes {
  path: string;
  domain: string | undefined;
  httpOnly: boolean;
  sameSite: 'lax' | 'strict' | 'none' | false;
  secure: boolean;
}

/** What the response looks like when the adapter calls `finish`. */
export interface ResponseInfo {
  /** The status the response head carries (or will carry). A 5xx commits nothing. */
  status: number;
  /** The response's Cache-Control header as set so far (string, list or absent). */
  cacheControl?: unknown;
  /** True when the head has already gone out (the handler wrote it itself): nothing can be sent, later changes are saved as late ones. */
  headSent?: boolean;
}

/** The headers to add to the response. */
export interface FinishHeaders {
  /** Our Set-Cookie: append it (the response's other cookies stay). */
  setCookie: string;
  /**
   * Headers to set, replacing any of that name: `Cache-Control: no-store` unless the response
   * already said `private` or `no-store`; `Clear-Site-Data: "cache"` on the response that ends a session.
   */
  set: Record<string, string>;
}

/** Called when an open session first needs a commit, so an adapter can arm it lazily. */
export type OnChange = (open: OpenSession) => void;

/**
 * One engine per middleware instance.
 *
 * @example
 * ```ts
 * const engine = new SessionEngine({ secret });
 * const open = await engine.open(req.headers.cookie, false);
 * // … handler uses open.session …
 * const headers = await engine.finish(open, { status: 200 });
 * ```
 */
export class SessionEngine {
  /** @internal */
  readonly options: ResolvedOptions;
  private readonly committer: Committer;

  /** @throws ConfigError for invalid options. */
  constructor(options: SessionOptions) {
    this.options = resolveOptions(options);
    this.committer = new Committer(this.options);
  }

  /** The cookie name. */
  get cookieName(): string {
    return this.options.writer.name;
  }

  /**
   * Reads our cookie from `cookieHeader` and loads its session. Synchronous when there is
   * nothing to load (no cookie, or none that verifies): then no store call is made.
   * `onChange` is told when the session first needs a commit (at once, when loading already
   * made one due: a TTL extension, a re-issue, a record to delete).
   * @throws SessionError (503) when the store fails and `onStoreError` is `'fail'`.
   */
  open(cookieHeader: string | undefined, https: boolean, onChange?: OnChange): OpenSession | Promise<OpenSession> {
    const values = cookieValues(cookieHeader, this.options.writer.name);
    if (values !== undefined) {
      for (const value of values) {
        const opened = this.options.codec.open(value);
        if (opened !== null) return this.load(this.record(https, onChange), opened.key, opened.olderSecret);
      }
      this.options.onEvent({ type: 'invalid-cookie' });
    }
    return this.record(https, onChange);
  }

  /**
   * Ends the request's part in the session. Returns null, synchronously, when there is nothing
   * to commit; else commits and resolves to the headers to send (null when none). A 5xx
   * commits nothing (the request failed, as tower-sessions has it).
   * @throws SessionError when the store fails: the response must report it.
   */
  finish(open: OpenSession, response: ResponseInfo): Promise<FinishHeaders | null> | null {
    const r = open as SessionRecord;
    if (r.phase !== 'open') return null;
    if (response.headSent) {
      this.headSent(r);
      return null;
    }
    if (response.status >= 500 || r.readOnly) {
      r.setPhase('closed');
      return null;
    }
    if (!this.committer.needed(r)) {
      r.setPhase('done');
      return null;
    }
    return this.commit(r, response.cacheControl);
  }

  /** The cookie's attributes for this request (Secure resolved for 'auto'). */
  cookie(open: OpenSession): CookieAttributes {
    const w = this.options.writer;
    return { ...w.attributes, secure: w.isSecure((open as SessionRecord).https) };
  }

  /**
   * Loads the session again, dropping what the request changed (express-session's `reload`).
   * @throws SessionError when the store fails.
   */
  async reload(open: OpenSession): Promise<void> {
    const r = open as SessionRecord;
    const key = r.key;
    if (key === null) return;
    const loaded = await withDeadline('load', this.options.storeTimeoutMs, () => this.options.store.load(key), this.options.store.inProcess === true);
    r.forget(null);
    if (loaded !== null) r.adopt(key, loaded, r.olderSecret);
  }

  /** Extends the session's TTL at this request's commit whatever the policy (express-session's `touch`). */
  touch(open: OpenSession): void {
    (open as SessionRecord).forceExtension();
  }

  /** Commits nothing for this request, now or later (koa-session's autoCommit: false without manuallyCommit). */
  discard(open: OpenSession): void {
    (open as SessionRecord).setPhase('closed');
  }

  /** Told of a change after the commit began: once the head is out it is saved as a late one (while the commit runs, its end picks it up). */
  private readonly listener: RecordListener = {
    changed: (r) => {
      if (r.phase === 'done') queueMicrotask(() => void this.late(r));
    },
  };

  /** What goes with our Set-Cookie: no-store (OWASP: a shared cache must never replay a session cookie), and on logout the browser's cached pages cleared. */
  private headersWith(ended: boolean, cacheControl: unknown): Record<string, string> {
    const set: Record<string, string> = {};
    const c = noStore(cacheControl);
    if (c !== undefined) set['Cache-Control'] = c;
    // The back button must not show a signed-in page after logout (Clear-Site-Data, W3C; honoured on HTTPS and localhost).
    if (ended) set['Clear-Site-Data'] = '"cache"';
    return set;
  }

  private record(https: boolean, onChange: OnChange | undefined): SessionRecord {
    return new SessionRecord(https, this.options, this.listener, onChange);
  }

  /**
   * Loads the session the cookie names. A cookie that rotated carries two keys, `next~previous`:
   * the one its response handed out, then the one the request came with. The first that loads wins;
   * when only the previous one does, the rotation never took effect in the store (a write we gave
   * up on that was not applied, or one lost in a failover), and the commit makes it now.
   */
  private async load(r: SessionRecord, cookieKey: string, olderSecret: boolean): Promise<SessionRecord> {
    const tilde = cookieKey.indexOf(KEY_SEPARATOR);
    const first = tilde === -1 ? cookieKey : cookieKey.slice(0, tilde);
    if ((await this.loadKey(r, first, olderSecret, false)) && tilde !== -1) await this.loadKey(r, cookieKey.slice(tilde + 1), olderSecret, true);
    // Served read-only (the store failed, onStoreError 'anonymous'): nothing will be committed.
    if (!r.readOnly && this.committer.needed(r)) r.onChange?.(r);
    return r;
  }

  /** Loads one key into the record; true when the store does not know it (the next key may be tried). */
  private async loadKey(r: SessionRecord, key: string, olderSecret: boolean, previous: boolean): Promise<boolean> {
    const o = this.options;
    let loaded;
    try {
      loaded = await withDeadline('load', o.storeTimeoutMs, () => o.store.load(key), o.store.inProcess === true);
    } catch (err) {
      if (err instanceof LoadError && err.kind === 'deserialization') {
        // Corrupt data is not the client's fault and not an outage: serve a fresh session, drop the record.
        o.onEvent({ type: 'corrupt-session', error: err });
        r.forget(key);
        return false;
      }
      if (!o.anonymousOnStoreError) throw err;
      o.onEvent({ type: 'store-unavailable', error: err as Error });
      r.serveReadOnly();
      return false;
    }
    if (loaded === null) return true; // strict mode: the client's key is never adopted (OWASP)
    if (o.absoluteTtl !== undefined && o.now() >= loaded.createdAt + o.absoluteTtl * 1000) r.forget(key);
    else r.adopt(key, loaded, olderSecret, previous);
    return false;
  }

  private async commit(r: SessionRecord, cacheControl: unknown): Promise<FinishHeaders | null> {
    r.setPhase('committing');
    try {
      const setCookie = await this.committer.write(r);
      // A Set-Cookie that leaves the record without a key is one that expires the cookie: the session ended.
      return setCookie === undefined ? null : { setCookie, set: this.headersWith(r.key === null, cacheControl) };
    } finally {
      r.setPhase('done');
      if (this.committer.hasLateWork(r)) void this.late(r);
    }
  }

  /** The head left without a commit: what the request changed is saved as a late change. */
  private headSent(r: SessionRecord): void {
    r.setPhase('done');
    if (!r.readOnly && this.committer.hasLateWork(r)) void this.late(r);
  }

  private async late(r: SessionRecord): Promise<void> {
    if (r.readOnly) return;
    try {
      await this.committer.late(r);
    } catch (err) {
      this.options.onEvent({ type: 'late-commit-failed', error: err as Error });
    }
  }
}

/**
 * The Cache-Control a response carrying our Set-Cookie must get, or undefined when it already
 * forbids shared caching (OWASP: a shared cache must never replay a session cookie).
 */
function noStore(existing: unknown): string | undefined {
  if (typeof existing === 'string' && CACHE_CONTROL_OK.test(existing)) return undefined;
  if (Array.isArray(existing) && existing.some((v) => typeof v === 'string' && CACHE_CONTROL_OK.test(v))) return undefined;
  return 'no-store';
}
