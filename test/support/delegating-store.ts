/** A store that hands every call to another: the base of the spy and of the deliberately broken stores. */
import type { LoadedSession, SessionChange, SessionMeta, SessionStore } from 'latchkey';

export class DelegatingStore implements SessionStore {
  /** Present when the inner store has it (a stateless store has none). */
  readonly rotatedKey?: (key: string, seed: string) => string | null;

  readonly recordId?: (key: string) => string | null;

  constructor(readonly inner: SessionStore) {
    if (inner.rotatedKey) this.rotatedKey = (key, seed) => inner.rotatedKey!(key, seed);
    if (inner.recordId) this.recordId = (key) => inner.recordId!(key);
  }

  // Not `inProcess`, even over a MemoryStore: a subclass may delay or hang calls, and the engine's
  // deadline must then still apply.
  get stateless(): boolean | undefined {
    return this.inner.stateless;
  }

  load(key: string): Promise<LoadedSession | null> {
    return this.inner.load(key);
  }
  save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta): Promise<string> {
    return this.inner.save(state, ttl, meta);
  }
  update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    return this.inner.update(key, change, ttl);
  }
  updateTtl(key: string, ttl: number): Promise<string | null> {
    return this.inner.updateTtl(key, ttl);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
}
