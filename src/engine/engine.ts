/**
 * The request lifecycle, framework-free: `begin` turns a Cookie header into a loaded
 * `Session`; `commit` decides, from the session's status, which single store write (if
 * any) to make and which Set-Cookie (if any) to send. Adapters only translate.
 */
import { randomBytes } from 'node:crypto';
import { MAX_COOKIE_BYTES } from '../cookie/codec';
import { cookieValues } from '../cookie/parse';
import { LoadError, SaveError, UpdateError, VersionConflictError } from '../errors';
import type { SessionState, SessionStore } from '../store/types';
import { withDeadline } from './deadline';
import { type ResolvedOptions, type SessionOptions, resolveOptions } from './options';
import { Session, type SessionListener } from './session';

/** How often an update is retried after a version conflict before the request fails. */
const MAX_UPDATE_ATTEMPTS = 5;
const CACHE_CONTROL_OK = /(?:^|[\s,])(?:private|no-store)(?:$|[\s,=])/i;

type PendingChange = { set: Map<string, string>; removed: Set<string> };

/** Called when an open session first changes, so an adapter can arm its commit lazily. */
export type OpenChangeHook = (session: Session) => void;

/**
 * One engine per middleware instance.
 *
 * @example
 * ```ts
 * const engine = new SessionEngine({ secret });
 * const session = await engine.begin(req.headers.cookie, false);
 * // … handler …
 * const setCookie = await engine.commit(session, 200);
 * ```
 */
export class SessionEngine implements SessionListener {
  readonly options: ResolvedOptions;
  private readonly store: SessionStore;
  private readonly onOpenChange: OpenChangeHook | undefined;

  constructor(options: SessionOptions, onOpenChange?: OpenChangeHook) {
    this.options = resolveOptions(options);
    this.store = this.options.store;
    this.onOpenChange = onOpenChange;
  }

  /** The cookie name. */
  get cookieName(): string {
    return this.options.writer.name;
  }

  /**
   * Reads our cookie from `cookieHeader` and loads its session. Synchronous when there is
   * nothing to load (no cookie, or none that verifies): then no store call is made.
   * @throws SessionError (503) when the store fails and `onStoreError` is `'fail'`.
   */
  begin(cookieHeader: string | undefined, https: boolean): Session | Promise<Session> {
    const values = cookieValues(cookieHeader, this.options.writer.name);
    if (values === undefined) return new Session(https, this);
    for (const value of values) {
      const opened = this.options.codec.open(value);
      if (opened !== null) return this.load(opened.key, opened.olderSecret, https);
    }
    this.options.onEvent({ type: 'invalid-cookie' });
    return new Session(https, this);
  }

  /**
   * Whether committing may write or send something even if the handler changes nothing
   * (a TTL extension, a re-issue under the newest secret, a record to delete).
   */
  needsCommit(session: Session): boolean {
    if (session.deleteKey !== null || session.olderSecret) return true;
    if (session.key === null || session.stale) return false;
    const policy = this.options.ttlExtension;
    return policy === 'on-every-request' || (policy === 'sliding' && this.extensionDue(session));
  }

  /**
   * Makes the store write the session's status calls for and returns the Set-Cookie value
   * to send, if any. A 5xx response commits nothing (the request failed; tower-sessions does the same).
   * @throws SessionError when the store fails: the response must report it.
   */
  async commit(session: Session, statusCode: number): Promise<string | undefined> {
    if (statusCode >= 500 || session.readOnly || session.phase !== 'open') return undefined;
    session.phase = 'committing';
    try {
      return await this.write(session);
    } finally {
      session.phase = 'done';
      if (this.hasLateWork(session)) void this.lateCommit(session);
    }
  }

  /** For a session whose response head left without a commit: its changes are saved as late ones, no cookie is sent. */
  afterHead(session: Session): void {
    if (session.phase !== 'open') return;
    session.phase = 'done';
    if (!session.readOnly && this.hasLateWork(session)) void this.lateCommit(session);
  }

  /**
   * The Cache-Control value a response carrying our Set-Cookie must get, or undefined
   * when `existing` already forbids shared caching (OWASP: a shared cache must never
   * replay a session cookie).
   */
  cacheControl(existing: unknown): string | undefined {
    if (typeof existing === 'string' && CACHE_CONTROL_OK.test(existing)) return undefined;
    if (Array.isArray(existing) && existing.some((v) => typeof v === 'string' && CACHE_CONTROL_OK.test(v))) return undefined;
    return 'no-store';
  }

  /** @internal SessionListener: a change on an open session, or a late one after the commit began. */
  changed(session: Session): void {
    if (session.phase === 'open') {
      this.onOpenChange?.(session);
    } else if (session.phase === 'done' && !session.readOnly) {
      // Changes made after the head went out are still saved under the key the client holds, without rotation.
      // (While the commit runs, its end picks them up.)
      queueMicrotask(() => void this.lateCommit(session));
    }
  }

  private async load(key: string, olderSecret: boolean, https: boolean): Promise<Session> {
    const session = new Session(https, this);
    const o = this.options;
    let record;
    try {
      record = await withDeadline('load', o.storeTimeoutMs, () => this.store.load(key));
    } catch (err) {
      if (err instanceof LoadError && err.kind === 'deserialization') {
        // Corrupt data is not the client's fault and not an outage: serve a fresh session, drop the record.
        o.onEvent({ type: 'corrupt-session', error: err });
        session.deleteKey = key;
        return session;
      }
      if (o.anonymousOnStoreError) {
        o.onEvent({ type: 'store-unavailable', error: err as Error });
        session.readOnly = true;
        return session;
      }
      throw err;
    }
    if (record === null) return session; // strict mode: the client's key is never adopted (OWASP)
    if (o.absoluteTtl !== undefined && o.now() >= record.createdAt + o.absoluteTtl * 1000) {
      session.deleteKey = key;
      return session;
    }
    session.adopt(key, record.state, record.version, record.expiresAt, record.createdAt, record.stale === true);
    session.olderSecret = olderSecret;
    return session;
  }

  private async write(s: Session): Promise<string | undefined> {
    const o = this.options;
    const status = s.status;
    const state = s.view();
    // Snapshot this request's per-key changes; anything set from here on is a late change.
    const change = s.takeChanges(state);
    const killed = s.deleteKey;
    if (killed !== null && status !== 'renewed') {
      // Purged, expired or corrupt: delete first, so a failure below can never leave a logout undone.
      await this.call('delete', () => this.store.delete(killed));
      s.deleteKey = null;
    }
    const expire = killed !== null ? o.writer.expire(this.secure(s)) : undefined;
    switch (status) {
      case 'purged':
        return expire;
      case 'renewed':
        return this.renew(s, state);
      case 'changed':
        if (s.key === null) return state.size === 0 ? expire : this.saveNew(s, state);
        return state.size === 0 ? this.purgeEmptied(s, s.key) : this.update(s, s.key, change);
      case 'unchanged':
        return s.key === null ? expire : this.extend(s);
    }
  }

  private async saveNew(s: Session, state: SessionState): Promise<string> {
    const createdAt = this.options.now();
    const ttl = this.ttlFrom(createdAt);
    const key = await this.call('save', () => this.store.save(state, ttl, { createdAt }));
    s.key = key;
    return this.cookie(s, key, ttl);
  }

  private async renew(s: Session, state: SessionState): Promise<string | undefined> {
    const old = s.deleteKey;
    s.deleteKey = null;
    if (state.size === 0) {
      if (old === null) return undefined;
      await this.call('delete', () => this.store.delete(old));
      return this.options.writer.expire(this.secure(s));
    }
    const createdAt = s.createdAt || this.options.now();
    const ttl = this.ttlFrom(createdAt);
    // Save the new record before deleting the old one: if the save fails, the user keeps the
    // old session rather than losing it; if the delete fails, the request fails.
    const key = await this.call('save', () => this.store.save(state, ttl, { createdAt }));
    if (old !== null) await this.call('delete', () => this.store.delete(old));
    s.key = key;
    return this.cookie(s, key, ttl);
  }

  /** An existing session the handler emptied is purged. */
  private async purgeEmptied(s: Session, key: string): Promise<string> {
    await this.call('delete', () => this.store.delete(key));
    s.key = null;
    return this.options.writer.expire(this.secure(s));
  }

  private async update(s: Session, key: string, change: PendingChange): Promise<string | undefined> {
    const o = this.options;
    const ttl = this.ttlFrom(s.createdAt);
    let version = s.version;
    let stale = s.stale;
    for (let attempt = 1; ; attempt++) {
      // Per-key changes commute, so only a rotation needs the version to be the one we loaded:
      // two rotations racing would each hand out a key, and one of them would die after the grace.
      // After too many conflicts we save without rotating rather than fail or lose the change.
      const rotate = o.rotateOnUpdate && !stale && attempt < MAX_UPDATE_ATTEMPTS;
      try {
        const next = await this.call('update', () =>
          this.store.update(
            key,
            {
              set: change.set,
              removed: change.removed,
              expectedVersion: rotate ? version : undefined,
              rotateTo: rotate ? (this.store.rotatedKey?.(key, randomBytes(32).toString('base64url')) ?? undefined) : undefined,
              graceMs: o.rotationGraceMs,
            },
            ttl,
          ),
        );
        if (next === null) return this.gone(s, change.set);
        s.key = next;
        // A request on a rotated-out key sends nothing: the response that rotated carries the current value.
        return stale ? undefined : this.cookie(s, next, ttl);
      } catch (err) {
        if (!(err instanceof VersionConflictError)) throw err;
        // Another request committed first: reload for its version and whether our key was rotated out, then reapply.
        const fresh = await this.call('load', () => this.store.load(key));
        if (fresh === null) return this.gone(s, change.set);
        version = fresh.version;
        stale = fresh.stale === true;
      }
    }
  }

  /**
   * The session was deleted, renewed or expired while this request ran: never resurrect it.
   * Values this request set start a fresh session; otherwise nothing is sent.
   */
  private async gone(s: Session, set: Map<string, string>): Promise<string | undefined> {
    s.key = null;
    if (set.size === 0) return undefined;
    const createdAt = this.options.now();
    const ttl = this.ttlFrom(createdAt);
    const key = await this.call('save', () => this.store.save(set, ttl, { createdAt }));
    s.key = key;
    return this.cookie(s, key, ttl);
  }

  private async extend(s: Session): Promise<string | undefined> {
    if (s.stale) return undefined;
    const key = s.key!;
    const policy = this.options.ttlExtension;
    if (policy === 'on-every-request' || (policy === 'sliding' && this.extensionDue(s))) {
      const ttl = this.ttlFrom(s.createdAt);
      const next = await this.call('updateTtl', () => this.store.updateTtl(key, ttl));
      if (next === null) return undefined;
      s.key = next;
      return this.cookie(s, next, ttl);
    }
    if (s.olderSecret) return this.cookie(s, key, (s.expiresAt - this.options.now()) / 1000);
    return undefined;
  }

  /** Sliding: extend once half the TTL is spent, so read-only traffic costs one write per half-TTL. */
  private extensionDue(s: Session): boolean {
    const target = this.options.now() + this.ttlFrom(s.createdAt) * 1000;
    return target - s.expiresAt > (this.options.ttl * 1000) / 2;
  }

  private hasLateWork(s: Session): boolean {
    return (s.changes !== null && s.changes.size > 0) || (s.status === 'purged' && s.deleteKey !== null);
  }

  private async lateCommit(s: Session): Promise<void> {
    try {
      if (s.status === 'purged' && s.deleteKey !== null) {
        const key = s.deleteKey;
        s.deleteKey = null;
        await this.call('delete', () => this.store.delete(key));
      } else if (s.key !== null && s.changes !== null && s.changes.size > 0) {
        const key = s.key;
        const { set, removed } = s.takeChanges();
        if (this.store.stateless) {
          // The state travels in the cookie, and the response that could carry it has gone: say so.
          throw new UpdateError('other', `changes to ${[...set.keys(), ...removed].join(', ')} made after the response head was sent cannot be kept by a stateless store`);
        }
        const ttl = this.ttlFrom(s.createdAt);
        await this.call('update', () => this.store.update(key, { set, removed, graceMs: 0 }, ttl));
      }
    } catch (err) {
      this.options.onEvent({ type: 'late-commit-failed', error: err as Error });
    }
  }

  /** The TTL to give the store: `ttl`, cut short by `absoluteTtl` (at least one second). */
  private ttlFrom(createdAt: number): number {
    const o = this.options;
    if (o.absoluteTtl === undefined) return o.ttl;
    const left = (createdAt + o.absoluteTtl * 1000 - o.now()) / 1000;
    return Math.max(1, Math.min(o.ttl, left));
  }

  private cookie(s: Session, key: string, ttl: number): string {
    const o = this.options;
    const value = o.codec.protect(key);
    const size = o.writer.name.length + 1 + value.length;
    if (size > MAX_COOKIE_BYTES) {
      // Browsers drop such a cookie silently (RFC 6265bis 5.6): fail loudly instead, never truncate.
      throw new SaveError('serialization', `session cookie would be ${size} bytes (name + value); browsers keep at most ${MAX_COOKIE_BYTES}`);
    }
    return o.writer.write(value, o.persistent ? ttl : undefined, this.secure(s));
  }

  private secure(s: Session): boolean {
    return this.options.writer.isSecure(s.https);
  }

  private call<T>(operation: 'load' | 'save' | 'update' | 'updateTtl' | 'delete', fn: () => Promise<T>): Promise<T> {
    return withDeadline(operation, this.options.storeTimeoutMs, fn);
  }
}

