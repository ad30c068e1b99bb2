/**
 * The embedded default store: one process, bounded, expiring. Values are kept as one
 * length-prefixed string per session rather than a Map, which keeps a one-value session
 * near 215 bytes of heap.
 */
import { VersionConflictError } from '../errors';
import { newId, newValidator, rotatedKey, splitKey } from './keys';
import { Entry, MemoryTable, type MemoryTableOptions, decodeState, encodeState } from './memory-table';
import type { LoadedSession, SessionChange, SessionMeta, SessionStore } from './types';

/** Options of {@link MemoryStore}. */
export type MemoryStoreOptions = MemoryTableOptions;

/**
 * In-process session store. Never keeps the process alive; TTL is checked on every read,
 * and expired sessions are also swept on a timer so memory does not grow with abandoned sessions
 * (express-session's MemoryStore only drops them when read).
 *
 * @example
 * ```ts
 * app.use(session({ secret, store: new MemoryStore({ maxSessions: 50_000 }) }));
 * ```
 */
export class MemoryStore implements SessionStore {
  readonly stateless = false;
  readonly inProcess = true;
  private readonly table: MemoryTable;

  constructor(options: MemoryStoreOptions = {}) {
    this.table = new MemoryTable(options);
  }

  /** How many sessions are held, expired ones not yet swept included. */
  get size(): number {
    return this.table.size;
  }

  async load(key: string): Promise<LoadedSession | null> {
    const parts = splitKey(key);
    const entry = parts && this.table.live(parts.id);
    if (!entry) return null;
    const match = entry.match(parts.hash, this.table.now());
    if (match === 'none') return null;
    return {
      state: decodeState(entry.data),
      version: entry.version,
      expiresAt: entry.expiresAt,
      createdAt: entry.createdAt,
      stale: match === 'previous',
      settings: entry.settings,
    };
  }

  async save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta): Promise<string> {
    const now = this.table.now();
    let id = newId();
    // 96 random bits do not collide in practice; the loop makes "never overwrites" a guarantee.
    while (this.table.has(id)) id = newId();
    const { key, hash } = newValidator(id);
    const entry = new Entry(hash, encodeState(state), 1, now + ttl * 1000, meta?.createdAt ?? now);
    if (meta?.settings) entry.settings = meta.settings;
    this.table.put(id, entry);
    return key;
  }

  async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    const entry = parts && this.table.live(parts.id);
    if (!entry) return null;
    const now = this.table.now();
    const match = entry.match(parts.hash, now);
    if (match === 'none') return null;
    if (change.expectedVersion !== undefined && change.expectedVersion !== entry.version) {
      throw new VersionConflictError(change.expectedVersion, entry.version);
    }
    const next = change.rotateTo !== undefined && match === 'current' ? splitKey(change.rotateTo) : null;
    if (next !== null && next.id !== parts.id) throw new TypeError('rotateTo must name the same record');
    entry.data = applyChange(entry.data, change);
    entry.version += 1;
    entry.expiresAt = now + ttl * 1000;
    if (change.settings) entry.settings = change.settings;
    if (next === null) return key;
    entry.setGrace(change.graceMs > 0 ? entry.hash : undefined, now + change.graceMs);
    entry.hash = next.hash;
    return change.rotateTo!;
  }

  async updateTtl(key: string, ttl: number): Promise<string | null> {
    const parts = splitKey(key);
    const entry = parts && this.table.live(parts.id);
    if (!entry || entry.match(parts.hash, this.table.now()) === 'none') return null;
    entry.expiresAt = this.table.now() + ttl * 1000;
    return key;
  }

  /** Deletes the session and every key of it still in its grace. */
  async delete(key: string): Promise<void> {
    const parts = splitKey(key);
    if (parts) this.table.delete(parts.id);
  }

  rotatedKey(key: string, seed: string): string | null {
    return rotatedKey(key, seed);
  }

  recordId(key: string): string | null {
    return splitKey(key)?.id ?? null;
  }

  async deleteExpired(): Promise<number> {
    return this.table.sweep();
  }

  /** Stops the sweep timer (it is unref'd, so this is only needed to tidy up tests). */
  close(): void {
    this.table.close();
  }
}

function applyChange(data: string, change: SessionChange): string {
  const state = decodeState(data);
  for (const k of change.removed) state.delete(k);
  for (const [k, v] of change.set) state.set(k, v);
  return encodeState(state);
}
