/**
 * The table under MemoryStore and MemoryCache: entries by record id in one Map whose insertion
 * order is the LRU order (a use moves an entry to the end; the oldest goes past `maxSessions`),
 * expiry checked on every read and swept on an unref'd timer, so it never keeps the process
 * alive and never grows without bound.
 */
import type { SessionSettings, SessionState } from './types';
import { sameHash } from './keys';

/** `hash` against the first 16 characters of `packed`, without an early exit (no timing signal). */
function sameHashAt(packed: string, hash: string): boolean {
  if (hash.length !== HASH_CHARS) return false;
  let diff = 0;
  for (let i = 0; i < HASH_CHARS; i++) diff |= packed.charCodeAt(i) ^ hash.charCodeAt(i);
  return diff === 0;
}

/** Options shared by MemoryStore and MemoryCache. */
export interface MemoryTableOptions {
  /** At most this many sessions are kept; the least recently used is evicted first. Default 100 000. */
  maxSessions?: number;
  /** How often expired entries are swept, in ms, on an unref'd timer. Default 60 000; 0 turns the sweep off. */
  sweepIntervalMs?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** How a presented validator hash relates to an entry. */
export type HashMatch = 'current' | 'previous' | 'none';

/** What an entry rarely has: a rotated-out hash inside its grace, settings, a session expiry apart from the entry's. */
export interface EntryExtra {
  graceHash?: string;
  graceUntil?: number;
  settings?: SessionSettings;
  /** A cache entry: when the session itself expires (the entry's `expiresAt` is when the cache stops serving it). */
  sessionExpiresAt?: number;
}

/** Validator hashes are 16 ASCII characters (112 bits of SHA-256, `keys.ts`). */
const HASH_CHARS = 16;

/**
 * `a + b` as one flat string. V8 makes a concatenation of 13 or more characters a rope (a 32-byte
 * node over both parts: 88 bytes for a hash and `{"n":1}` against 40 flat); reading a character
 * flattens it, and the next GC drops the rope node. Measured: 234 → 187 bytes per MemoryStore session.
 */
function flat(a: string, b: string): string {
  const s = a + b;
  s.charCodeAt(0);
  return s;
}

/**
 * One session. Kept lean, since a table may hold 100 000 of them: the validator hash and the values
 * in one string (a second string would cost another ~24 bytes of heap), createdAt in whole seconds
 * (a small integer, where epoch ms would need a boxed double), and whatever few entries need in
 * one optional object.
 */
export class Entry {
  extra: EntryExtra | undefined = undefined;
  readonly createdSec: number;
  /** The current validator hash, then the values as `encodeState` writes them. */
  private packed: string;
  constructor(
    hash: string,
    data: string,
    public version: number,
    public expiresAt: number,
    createdAt: number,
  ) {
    this.packed = flat(hash, data);
    this.createdSec = Math.floor(createdAt / 1000);
  }

  get createdAt(): number {
    return this.createdSec * 1000;
  }

  get hash(): string {
    return this.packed.slice(0, HASH_CHARS);
  }

  set hash(hash: string) {
    this.packed = flat(hash, this.packed.slice(HASH_CHARS));
  }

  /** The values, as `encodeState` wrote them. */
  get data(): string {
    return this.packed.slice(HASH_CHARS);
  }

  set data(data: string) {
    this.packed = flat(this.packed.slice(0, HASH_CHARS), data);
  }

  /** Whether `hash` is this entry's current validator hash, a previous one inside its grace, or neither. */
  match(hash: string, now: number): HashMatch {
    if (sameHashAt(this.packed, hash)) return 'current';
    const x = this.extra;
    if (x?.graceHash !== undefined && now < x.graceUntil! && sameHash(x.graceHash, hash)) return 'previous';
    return 'none';
  }

  get settings(): SessionSettings | undefined {
    return this.extra?.settings;
  }

  /** Replaces the settings, dropping the extra object when nothing is left in it. */
  set settings(settings: SessionSettings | undefined) {
    const empty = settings === undefined || (settings.ttl === undefined && settings.persistent === undefined);
    this.patchExtra({ settings: empty ? undefined : { ...settings } });
  }

  /** Sets (or, with undefined, ends) the grace of a rotated-out hash. */
  setGrace(hash: string | undefined, until: number): void {
    this.patchExtra({ graceHash: hash, graceUntil: hash === undefined ? undefined : until });
  }

  private patchExtra(patch: EntryExtra): void {
    const next: EntryExtra = { ...this.extra, ...patch };
    for (const k of Object.keys(next) as (keyof EntryExtra)[]) if (next[k] === undefined) delete next[k];
    this.extra = Object.keys(next).length === 0 ? undefined : next;
  }
}

/** The shared table. */
export class MemoryTable {
  private readonly entries = new Map<string, Entry>();
  private readonly maxSessions: number;
  private readonly sweeper: NodeJS.Timeout | undefined;
  readonly now: () => number;

  constructor(options: MemoryTableOptions = {}) {
    this.maxSessions = options.maxSessions ?? 100_000;
    this.now = options.now ?? Date.now;
    const every = options.sweepIntervalMs ?? 60_000;
    if (every > 0) {
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
  }

  get size(): number {
    return this.entries.size;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The entry if present and unexpired, moved to the most-recently-used end; an expired one is dropped. */
  live(id: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    if (entry.expiresAt <= this.now()) return undefined;
    this.entries.set(id, entry);
    return entry;
  }

  /** Puts `entry` at the most-recently-used end (replacing any entry of that id) and evicts past the bound. */
  put(id: string, entry: Entry): void {
    this.entries.delete(id);
    this.entries.set(id, entry);
    while (this.entries.size > this.maxSessions) this.entries.delete(this.entries.keys().next().value as string);
  }

  delete(id: string): void {
    this.entries.delete(id);
  }

  /** Removes expired entries without reading them; returns how many. */
  sweep(): number {
    const now = this.now();
    let removed = 0;
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.entries.delete(id);
        removed++;
      }
    }
    return removed;
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }
}

/**
 * A session's values as one flat string, `<key length>:<value length>:<key><value>` per value:
 * one string costs ~24 bytes of heap where an array of two strings costs ~100.
 */
export function encodeState(state: ReadonlyMap<string, string>): string {
  const parts: string[] = [];
  for (const [k, v] of state) parts.push(`${k.length}:${v.length}:`, k, v);
  return parts.join('');
}

export function decodeState(data: string): SessionState {
  const state: SessionState = new Map();
  let i = 0;
  while (i < data.length) {
    const a = data.indexOf(':', i);
    const b = data.indexOf(':', a + 1);
    const kEnd = b + 1 + Number(data.slice(i, a));
    const vEnd = kEnd + Number(data.slice(a + 1, b));
    state.set(data.slice(b + 1, kEnd), data.slice(kEnd, vEnd));
    i = vEnd;
  }
  return state;
}
