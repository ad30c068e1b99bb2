/**
 * The TTL policy, in one place: how long a session lives from now (its own TTL, cut short by
 * `absoluteTtl`), and whether a request that changes nothing must still extend it.
 */
import type { ResolvedOptions } from './options';
import type { SessionRecord } from './record';

/** The TTL to give the store and the cookie: the session's TTL, cut short by `absoluteTtl` (at least one second). */
export function ttlFor(o: ResolvedOptions, r: SessionRecord, createdAt: number): number {
  if (o.absoluteTtl === undefined) return r.ttl;
  const left = (createdAt + o.absoluteTtl * 1000 - o.now()) / 1000;
  return Math.max(1, Math.min(r.ttl, left));
}

/**
 * Whether an existing session that changed nothing must have its TTL extended now: always with
 * 'on-every-request' (or when the handler asked, express-session's `touch()`); with 'sliding' once
 * more than half its TTL would be gained, so read-only traffic costs at most one store write per
 * half-TTL; never with 'on-change'.
 */
export function extensionDue(o: ResolvedOptions, r: SessionRecord): boolean {
  if (r.key === null || r.stale) return false;
  if (r.mustExtend || o.ttlExtension === 'on-every-request') return true;
  if (o.ttlExtension !== 'sliding') return false;
  return o.now() + ttlFor(o, r, r.createdAt) * 1000 - r.expiresAt > (r.ttl * 1000) / 2;
}
