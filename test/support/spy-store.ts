/** A store wrapper that counts and records every call, and can make each call slow or hang. */
import type { LoadedSession, SessionChange, SessionMeta } from 'latchkey';
import { DelegatingStore } from './delegating-store';

export type StoreMethod = 'load' | 'save' | 'update' | 'updateTtl' | 'delete';

export class SpyStore extends DelegatingStore {
  calls: { method: StoreMethod; key?: string; change?: SessionChange; ttl?: number }[] = [];
  /** Milliseconds every call waits before reaching the inner store. */
  delayMs = 0;
  /** When set, calls of these methods never settle. */
  hang = new Set<StoreMethod>();
  /** When set, calls of these methods reject with this error. */
  failWith: Partial<Record<StoreMethod, Error>> = {};

  count(method?: StoreMethod): number {
    return method ? this.calls.filter((c) => c.method === method).length : this.calls.length;
  }

  methods(): StoreMethod[] {
    return this.calls.map((c) => c.method);
  }

  reset(): void {
    this.calls = [];
  }

  private async gate(method: StoreMethod): Promise<void> {
    if (this.hang.has(method)) await new Promise<never>(() => {});
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const err = this.failWith[method];
    if (err) throw err;
  }

  override async load(key: string): Promise<LoadedSession | null> {
    this.calls.push({ method: 'load', key });
    await this.gate('load');
    return this.inner.load(key);
  }
  override async save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta): Promise<string> {
    this.calls.push({ method: 'save', ttl });
    await this.gate('save');
    return this.inner.save(state, ttl, meta);
  }
  override async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    this.calls.push({ method: 'update', key, change, ttl });
    await this.gate('update');
    return this.inner.update(key, change, ttl);
  }
  override async updateTtl(key: string, ttl: number): Promise<string | null> {
    this.calls.push({ method: 'updateTtl', key, ttl });
    await this.gate('updateTtl');
    return this.inner.updateTtl(key, ttl);
  }
  override async delete(key: string): Promise<void> {
    this.calls.push({ method: 'delete', key });
    await this.gate('delete');
    return this.inner.delete(key);
  }
}
