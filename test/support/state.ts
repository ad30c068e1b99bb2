/** Building session states and changes in tests: values given as JS, kept as JSON text. */
import { randomBytes } from 'node:crypto';
import type { SessionChange, SessionStore } from 'latchkey';

/** A state map from plain values (each JSON-encoded). */
export const state = (obj: Record<string, unknown>): Map<string, string> => new Map(Object.entries(obj).map(([k, v]) => [k, JSON.stringify(v)]));

/** A per-key change: keys set, keys removed, anything else of SessionChange. */
export const change = (set: Record<string, unknown>, removed: string[] = [], extra: Partial<SessionChange> = {}): SessionChange => ({
  set: state(set),
  removed: new Set(removed),
  graceMs: 0,
  ...extra,
});

/** A seed as the engine makes one (256 bits, base64url). */
export const seed = (): string => randomBytes(32).toString('base64url');

/** A change that rotates `key` on `store` (a plain change for a stateless store, whose keys are its states). */
export function rotation(store: SessionStore, key: string, set: Record<string, unknown> = {}, extra: Partial<SessionChange> = {}): SessionChange {
  return change(set, [], { rotateTo: store.rotatedKey?.(key, seed()) ?? undefined, graceMs: 10_000, ...extra });
}
