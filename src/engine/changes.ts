/**
 * A request's per-key changes to a session's values, as pure functions over the loaded state:
 * each change is the key's new JSON text, or undefined for a removal. The record owns the maps;
 * this is how they combine.
 */
import type { SessionState } from '../store/types';

/** Per-key changes: JSON text, or undefined for a removal. */
export type Changes = Map<string, string | undefined>;

/** The state the request sees: `loaded` with `changes` applied (`loaded` itself when there are none). */
export function overlay(loaded: SessionState, changes: Changes | null): SessionState {
  if (changes === null || changes.size === 0) return loaded;
  const out = new Map(loaded);
  for (const [k, v] of changes) {
    if (v === undefined) out.delete(k);
    else out.set(k, v);
  }
  return out;
}

/** The changes as a store write takes them: the values set, and the keys removed. */
export function split(changes: Changes | null): { set: Map<string, string>; removed: Set<string> } {
  const set = new Map<string, string>();
  const removed = new Set<string>();
  if (changes !== null) {
    for (const [k, v] of changes) {
      if (v === undefined) removed.add(k);
      else set.set(k, v);
    }
  }
  return { set, removed };
}
