/**
 * The commit: one switch on the session's status decides which store write to make (at most
 * one, but for renew's save-then-delete) and which Set-Cookie to send, as actix-session's
 * middleware does. Late changes (made after the head went out) are written here too.
 */
import { MAX_COOKIE_BYTES } from '../cookie/codec';
import { SaveError, type SessionError, UpdateError, VersionConflictError } from '../errors';
import type { SessionSettings, SessionState, SessionStore } from '../store/types';
import { type StoreOperation, withDeadline } from './deadline';
import type { ResolvedOptions } from './options';
import type { SessionRecord, Snapshot } from './record';
import { extensionDue, ttlFor } from './ttl';

/** How often an update is retried after a version conflict before it is saved without rotating. */
const MAX_UPDATE_ATTEMPTS = 5;

/** Makes a record's store writes; one per engine. */
export class Committer {
  private readonly store: SessionStore;

  constructor(private readonly o: ResolvedOptions) {
    this.store = o.store;
  }

  /**
   * Whether committing may write or send something even if the handler changed nothing
   * (a TTL extension, a re-issue under the newest secret, a record to delete).
   */
  needed(r: SessionRecord): boolean {
    return r.status !== 'unchanged' || r.doomed !== null || r.olderSecret || r.recovering || extensionDue(this.o, r);
  }

  /** Makes the store write the record's status calls for; returns the Set-Cookie value to send, if any. */
  async write(r: SessionRecord): Promise<string | undefined> {
    const status = r.status;
    // Snapshot this request's changes; anything set from here on is a late change.
    const snap = r.take();
    const killed = r.doomed;
    if (killed !== null && status !== 'renewed') {
      // Purged, expired or corrupt: delete first, so a failure below can never leave a logout undone.
      await this.call('delete', () => this.store.delete(killed));
      r.undoom();
    }
    const expire = killed !== null ? this.expire(r) : undefined;
    switch (status) {
      case 'purged':
        return expire;
      case 'renewed':
        return this.renew(r, snap.state);
      case 'changed':
        if (r.key === null) return snap.state.size === 0 ? expire : this.saveFresh(r, snap.state, this.o.now(), r.ownSettings);
        return snap.state.size === 0 ? this.purgeEmptied(r, r.key) : this.update(r, r.key, snap);
      case 'unchanged':
        if (r.key === null) return expire;
        // The cookie's rotation never reached the store: make it now, to the key the cookie names.
        return r.recovering ? this.update(r, r.key, snap) : this.extend(r);
    }
  }

  /** Changes made after the head went out: saved under the key the client holds, without rotation and without a cookie. */
  async late(r: SessionRecord): Promise<void> {
    if (r.status === 'purged' && r.doomed !== null) {
      const key = r.undoom()!;
      await this.call('delete', () => this.store.delete(key));
    } else if (r.key !== null && r.hasChanges) {
      const key = r.key;
      const { set, removed, settings } = r.take();
      if (this.store.stateless) {
        // The state travels in the cookie, and the response that could carry it has gone: say so.
        throw new UpdateError('other', `changes to ${[...set.keys(), ...removed].join(', ')} made after the response head was sent cannot be kept by a stateless store`);
      }
      await this.call('update', () => this.store.update(key, { set, removed, graceMs: 0, settings }, ttlFor(this.o, r, r.createdAt)));
    }
  }

  /** Whether a late commit has anything to do. */
  hasLateWork(r: SessionRecord): boolean {
    return r.hasChanges || (r.status === 'purged' && r.doomed !== null);
  }

  /** A new record for `state`: the one way sessions are created (new, renewed, or after "gone"). */
  private async saveFresh(r: SessionRecord, state: SessionState, createdAt: number, settings?: SessionSettings): Promise<string> {
    const ttl = ttlFor(this.o, r, createdAt);
    const meta = settings === undefined ? { createdAt } : { createdAt, settings };
    const key = await this.call('save', () => this.store.save(state, ttl, meta));
    r.savedAs(key);
    return this.cookie(r, key, ttl);
  }

  private async renew(r: SessionRecord, state: SessionState): Promise<string | undefined> {
    const old = r.undoom();
    if (state.size === 0) {
      if (old === null) return undefined;
      await this.call('delete', () => this.store.delete(old));
      return this.expire(r);
    }
    // Save the new record before deleting the old one: if the save fails, the user keeps the
    // old session rather than losing it; if the delete fails, the request fails.
    const cookie = await this.saveFresh(r, state, r.createdAt || this.o.now(), r.ownSettings);
    // The new record exists: if the delete is given up on, the error response still hands it out.
    if (old !== null) await this.call('delete', () => this.store.delete(old)).catch((err: unknown) => Promise.reject(withCookie(err, cookie)));
    return cookie;
  }

  /** An existing session the handler emptied is purged. */
  private async purgeEmptied(r: SessionRecord, key: string): Promise<string> {
    await this.call('delete', () => this.store.delete(key));
    r.gone();
    return this.expire(r);
  }

  private async update(r: SessionRecord, key: string, snap: Snapshot): Promise<string | undefined> {
    const ttl = ttlFor(this.o, r, r.createdAt);
    let version = r.version;
    let stale = r.stale;
    for (let attempt = 1; ; attempt++) {
      // Every update carries the version it was made from. For a rotation, so two rotations never
      // race (each would hand out a key, and one would die after the grace); for every update, so
      // one given up on and replayed late (a resend after a reconnect, another instance's retry)
      // meets a conflict instead of undoing newer acknowledged writes. A conflict reloads and
      // reapplies this request's per-key changes, so concurrent requests still all land. After too
      // many conflicts the change is saved without a version or a rotation rather than failed or lost.
      const versioned = attempt < MAX_UPDATE_ATTEMPTS;
      const rotate = (this.o.rotateOnUpdate || r.recovering) && !stale && versioned;
      const rotateTo = rotate ? (this.store.rotatedKey?.(key, this.o.seedFor(key)) ?? undefined) : undefined;
      const change = { set: snap.set, removed: snap.removed, expectedVersion: versioned ? version : undefined, rotateTo, graceMs: this.o.rotationGraceMs, settings: snap.settings };
      // A rotated cookie names both keys, `next~presented`: it opens the session whatever the store
      // did with this write (applied, applied late, applied twice, lost in a failover, not applied).
      const rotatedCookie = rotateTo === undefined ? undefined : this.cookie(r, `${rotateTo}~${key}`, ttl);
      try {
        const next = await this.call('update', () => this.store.update(key, change, ttl));
        if (next === null) return this.gone(r, snap.set);
        r.savedAs(next, version + 1);
        r.recovering = false;
        if (next === rotateTo) return rotatedCookie;
        // A request on a rotated-out key sends nothing: the response that rotated carries the current value.
        return stale ? undefined : this.cookie(r, next, ttl);
      } catch (err) {
        if (!(err instanceof VersionConflictError)) throw rotatedCookie === undefined ? err : withCookie(err, rotatedCookie);
        // Another request committed first: reload for its version and whether our key was rotated out, then reapply.
        const fresh = await this.call('load', () => this.store.load(key));
        if (fresh === null) return this.gone(r, snap.set);
        version = fresh.version;
        stale = fresh.stale === true;
      }
    }
  }

  /**
   * The session was deleted, renewed or expired while this request ran: never resurrect it.
   * Values this request set start a fresh session; otherwise nothing is sent.
   */
  private async gone(r: SessionRecord, set: Map<string, string>): Promise<string | undefined> {
    r.gone();
    if (set.size === 0) return undefined;
    return this.saveFresh(r, set, this.o.now(), r.ownSettings);
  }

  private async extend(r: SessionRecord): Promise<string | undefined> {
    const key = r.key!;
    if (extensionDue(this.o, r)) {
      const ttl = ttlFor(this.o, r, r.createdAt);
      const next = await this.call('updateTtl', () => this.store.updateTtl(key, ttl));
      if (next === null) return undefined;
      r.savedAs(next);
      return this.cookie(r, next, ttl);
    }
    if (r.olderSecret) return this.cookie(r, key, (r.expiresAt - this.o.now()) / 1000);
    return undefined;
  }

  private cookie(r: SessionRecord, key: string, ttl: number): string {
    const value = this.o.codec.protect(key);
    const size = this.o.writer.name.length + 1 + value.length;
    if (size > MAX_COOKIE_BYTES) {
      // Browsers drop such a cookie silently (RFC 6265bis 5.6): fail loudly instead, never truncate.
      throw new SaveError('serialization', `session cookie would be ${size} bytes (name + value); browsers keep at most ${MAX_COOKIE_BYTES}`);
    }
    return this.o.writer.write(value, r.persistent ? ttl : undefined, this.o.writer.isSecure(r.https));
  }

  private expire(r: SessionRecord): string {
    return this.o.writer.expire(this.o.writer.isSecure(r.https));
  }

  private call<T>(operation: StoreOperation, fn: () => Promise<T>): Promise<T> {
    return withDeadline(operation, this.o.storeTimeoutMs, fn, this.store.inProcess === true);
  }
}

/**
 * A store call we gave up on (or that failed) after the cookie to hand out was known: the error
 * response carries that cookie, so the browser holds a value that opens the session whatever the
 * store ends up doing with the write.
 */
function withCookie(err: unknown, setCookie: string): unknown {
  if (err !== null && typeof err === 'object') (err as SessionError).headers = { 'Set-Cookie': setCookie, 'Cache-Control': 'no-store' };
  return err;
}
