/**
 * The engine's per-request record of one session: where it came from (key, version, expiry),
 * what the request changed (per key, and the settings), what the commit must do (status, a key
 * to delete) and where the request is (phase). Every transition is a method here, so each piece
 * of state has one writer; the engine reads the record and calls them.
 */
import { MAX_AGE_CAP_SECONDS } from '../cookie/serialize';
import type { LoadedSession, SessionSettings, SessionState } from '../store/types';
import { type Changes, overlay, split } from './changes';
import { Handle, type Session, type SessionStatus } from './session';

/**
 * Where a session is in its request: open (the handler runs), committing, done (the head has gone
 * out: later changes are saved as late ones), closed (the request failed: nothing more is saved).
 */
export type Phase = 'open' | 'committing' | 'done' | 'closed';

const EMPTY: SessionState = new Map();

/** The defaults a record falls back on: the middleware's options. */
export interface RecordDefaults {
  readonly ttl: number;
  readonly persistent: boolean;
  /** The store's name for the record a key opens (safe to show), if it has one. */
  recordId(key: string): string | undefined;
  /** Whether responses to requests with a live session get Cache-Control: no-store. */
  readonly noStoreWithSession: boolean;
}

/** Told of changes: the first one while the request is open, and any after its commit began. */
export interface RecordListener {
  changed(record: SessionRecord): void;
}

/** What one commit takes from the record: the per-key changes and the settings, if they changed. */
export interface Snapshot {
  state: SessionState;
  set: Map<string, string>;
  removed: Set<string>;
  settings: SessionSettings | undefined;
}

/**
 * One request's session. Adapters hold it as an `OpenSession` (they see `session` only); views
 * (the drop-ins) read and write raw JSON through `raw`/`setRaw`.
 */
export class SessionRecord {
  readonly session: Session;
  /** The store key this session is known under; null for a new (or purged, or renewed) one. */
  key: string | null = null;
  /** A key whose record the commit deletes (purged, renewed, expired or corrupt). */
  doomed: string | null = null;
  version = 0;
  expiresAt = 0;
  createdAt = 0;
  /** Loaded through a rotated-out key inside its grace: never rotate again. */
  stale = false;
  /** The cookie was protected by an older secret: re-issue it. */
  olderSecret = false;
  /** Loading failed and onStoreError is 'anonymous': never save. */
  private _readOnly = false;
  /** The rotation this request's cookie names must be made (see adopt). */
  recovering = false;
  /** The request came with a live session (loaded from the store). */
  private loadedLive = false;
  /** The TTL is to be extended at commit whatever the policy says (express-session's touch()). */
  mustExtend = false;
  phase: Phase = 'open';
  isNew = true;
  status: SessionStatus = 'unchanged';
  private loaded: SessionState = EMPTY;
  private settings: SessionSettings = {};
  /** Per-key changes: JSON text, or undefined for a removal. */
  private changes: Changes | null = null;
  /** The settings this request gave the session, when they differ from the loaded ones. */
  private newSettings: SessionSettings | undefined = undefined;

  constructor(
    readonly https: boolean,
    private readonly defaults: RecordDefaults,
    private readonly listener: RecordListener,
    /** The adapter's hook for the first change (lazy arming); called with this record. */
    readonly onChange: ((record: SessionRecord) => void) | undefined,
  ) {
    this.session = new Handle(this);
  }

  // --- Reading

  /** The JSON text under `key` as this request sees it. */
  raw(key: string): string | undefined {
    const changes = this.changes;
    if (changes !== null && changes.has(key)) return changes.get(key);
    return this.loaded.get(key);
  }

  /** The state as this request sees it. */
  view(): SessionState {
    return overlay(this.loaded, this.changes);
  }

  /** Every key holding a value, as this request sees them. */
  keys(): string[] {
    return [...this.view().keys()];
  }

  /** no-store for a request that carries a live session, when the option asks for it. */
  get cacheControl(): string | undefined {
    return this.loadedLive && this.defaults.noStoreWithSession ? 'no-store' : undefined;
  }

  /** The record's id (never the secret part of the key); undefined while the session has no record. */
  get id(): string | undefined {
    return this.key === null ? undefined : this.defaults.recordId(this.key);
  }

  get readOnly(): boolean {
    return this._readOnly;
  }

  get ttl(): number {
    return (this.newSettings ?? this.settings).ttl ?? this.defaults.ttl;
  }

  get persistent(): boolean {
    return (this.newSettings ?? this.settings).persistent ?? this.defaults.persistent;
  }

  /** The session's own settings (pending ones first), or undefined when it has none. */
  get ownSettings(): SessionSettings | undefined {
    const s = this.newSettings ?? this.settings;
    return s.ttl === undefined && s.persistent === undefined ? undefined : s;
  }

  /** Whether changes are pending that a commit would write (late ones included). */
  get hasChanges(): boolean {
    return (this.changes !== null && this.changes.size > 0) || this.newSettings !== undefined;
  }

  // --- Transitions made by the handler

  /** Sets (or with undefined removes) the JSON text under `key`; the same text as loaded is no change. */
  setRaw(key: string, json: string | undefined): void {
    const changes = (this.changes ??= new Map());
    const loaded = this.loaded.get(key);
    if (json === loaded) changes.delete(key);
    else changes.set(key, json);
    this.touch();
  }

  clear(): void {
    const changes = new Map<string, string | undefined>();
    for (const k of this.loaded.keys()) changes.set(k, undefined);
    this.changes = changes;
    this.touch();
  }

  purge(): void {
    this.empty(this.key ?? this.doomed, 'purged');
    this.notify();
  }

  renew(): void {
    if (this.status === 'purged') return;
    if (this.key !== null) {
      this.doomed = this.key;
      this.key = null;
    }
    this.status = 'renewed';
    this.notify();
  }

  setTtl(seconds: number): void {
    if (typeof seconds !== 'number' || !(seconds > 0) || !Number.isFinite(seconds)) throw new TypeError('session.ttl must be a positive number of seconds');
    // RFC 6265bis 5.5: Max-Age is capped at 400 days, so no session lives longer than its cookie can.
    this.changeSettings({ ...(this.newSettings ?? this.settings), ttl: Math.min(seconds, MAX_AGE_CAP_SECONDS) });
  }

  setPersistent(persistent: boolean): void {
    this.changeSettings({ ...(this.newSettings ?? this.settings), persistent });
  }

  /** Forces a TTL extension at this request's commit. */
  forceExtension(): void {
    this.mustExtend = true;
    this.notify();
  }

  // --- Transitions made by the engine

  /**
   * Fills the record from the store. `recovering`: the key is the previous one of a cookie whose
   * rotation never took effect in the store; the commit makes that rotation now.
   */
  adopt(key: string, record: LoadedSession, olderSecret: boolean, recovering = false): void {
    this.recovering = recovering && record.stale !== true;
    this.key = key;
    this.loaded = record.state;
    this.version = record.version;
    this.expiresAt = record.expiresAt;
    this.createdAt = record.createdAt;
    this.stale = record.stale === true;
    this.settings = record.settings ?? {};
    this.olderSecret = olderSecret;
    this.isNew = false;
    this.loadedLive = true;
  }

  /** Loading failed and the request is served anyway (onStoreError 'anonymous'): nothing will be saved. */
  serveReadOnly(): void {
    this._readOnly = true;
  }

  /** Drops what was loaded (`reload`) or marks the key the cookie named for deletion (corrupt, expired). */
  forget(doomedKey: string | null): void {
    this.empty(doomedKey ?? this.doomed, 'unchanged');
  }

  /** Takes the pending changes for a commit, leaving none; anything set from here on is a late change. */
  take(): Snapshot {
    const state = this.view();
    const { set, removed } = split(this.changes);
    const settings = this.newSettings;
    this.loaded = state;
    this.changes = null;
    if (settings !== undefined) this.settings = settings;
    this.newSettings = undefined;
    if (this.status === 'changed') this.status = 'unchanged';
    return { state, set, removed, settings };
  }

  /** The store accepted a write: the session now lives under `key`. */
  savedAs(key: string, version?: number): void {
    this.key = key;
    this.isNew = false;
    if (version !== undefined) this.version = version;
  }

  /** The doomed key was deleted (or taken over by the commit). */
  undoom(): string | null {
    const key = this.doomed;
    this.doomed = null;
    return key;
  }

  /** The store said the session is gone (deleted, renewed or expired while this request ran). */
  gone(): void {
    this.key = null;
    this.isNew = true;
  }

  setPhase(phase: Phase): void {
    this.phase = phase;
  }

  // --- Internals

  /** A new, empty session in place of the loaded one; `doomed` is the key the commit deletes. */
  private empty(doomed: string | null, status: SessionStatus): void {
    this.doomed = doomed;
    this.key = null;
    this.loaded = EMPTY;
    this.changes = null;
    this.settings = {};
    this.newSettings = undefined;
    this.isNew = true;
    this.status = status;
  }

  /** A setting equal in effect to the loaded one (its own, or the default it falls back on) is no change. */
  private changeSettings(next: SessionSettings): void {
    const d = this.defaults;
    const was = this.settings;
    const same = (next.ttl ?? d.ttl) === (was.ttl ?? d.ttl) && (next.persistent ?? d.persistent) === (was.persistent ?? d.persistent);
    this.newSettings = same ? undefined : next;
    this.touch();
  }

  private touch(): void {
    const pending = this.hasChanges;
    if (this.status === 'unchanged' || this.status === 'changed') {
      this.status = pending ? 'changed' : 'unchanged';
    } else if (this.status === 'purged' && pending) {
      // Values set after purge() start a fresh session; the old one is still deleted.
      this.status = 'changed';
    }
    this.notify();
  }

  private notify(): void {
    if (this.phase !== 'open') this.listener.changed(this);
    else if (this.status !== 'unchanged' || this.mustExtend) this.onChange?.(this);
  }
}
