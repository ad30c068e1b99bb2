/**
 * The conformance kit must be able to fail: each deliberately broken store below breaks
 * one rule of the contract, and the kit must name that rule.
 */
import { MemoryStore, type SessionChange, type SessionMeta, type SessionStore } from 'latchkey';
import { ConformanceError, conformanceCases, runStoreConformance } from 'latchkey/testing';
import { DelegatingStore } from '../support/delegating-store';

/** Delegates everything to a MemoryStore; subclasses break one rule each. */
class Wrapped extends DelegatingStore {
  constructor() {
    super(new MemoryStore({ sweepIntervalMs: 0 }));
  }
}

/** Overwrites: every save after the first writes over the first record. */
class OverwritingStore extends Wrapped {
  private first: string | undefined;
  override async save(state: ReadonlyMap<string, string>, ttl: number) {
    if (this.first === undefined) return (this.first = await this.inner.save(state, ttl));
    await this.inner.update(this.first, { set: new Map(state), removed: new Set((await this.inner.load(this.first))!.state.keys()), graceMs: 0 }, ttl);
    return this.first;
  }
}

/** Last writer wins: an update replaces the whole state with just the keys it set. */
class WholeStateStore extends Wrapped {
  override async update(key: string, change: SessionChange, ttl: number) {
    const loaded = await this.inner.load(key);
    if (!loaded) return null;
    return this.inner.update(key, { ...change, removed: new Set([...loaded.state.keys()].filter((k) => !change.set.has(k))) }, ttl);
  }
}

/** Ignores the expected version. */
class VersionBlindStore extends Wrapped {
  override update(key: string, change: SessionChange, ttl: number) {
    return this.inner.update(key, { ...change, expectedVersion: undefined }, ttl);
  }
}

/** Brings a deleted session back on update. */
class ResurrectingStore extends Wrapped {
  private readonly states = new Map<string, ReadonlyMap<string, string>>();
  override async save(state: ReadonlyMap<string, string>, ttl: number) {
    const key = await this.inner.save(state, ttl);
    this.states.set(key, state);
    return key;
  }
  override async update(key: string, change: SessionChange, ttl: number) {
    const done = await this.inner.update(key, change, ttl);
    if (done !== null) return done;
    return this.save(new Map([...(this.states.get(key) ?? []), ...change.set]), ttl);
  }
}

/** Never expires anything. */
class ImmortalStore extends Wrapped {
  override save(state: ReadonlyMap<string, string>, ttl: number) {
    return this.inner.save(state, ttl < 5 ? 3600 : ttl);
  }
}

/** Hands out a key of its own on rotation instead of the one rotatedKey named. */
class OwnKeyStore extends Wrapped {
  override update(key: string, change: SessionChange, ttl: number) {
    const rotateTo = change.rotateTo === undefined ? undefined : (this.inner.rotatedKey!(key, 'x'.repeat(43)) ?? undefined);
    return this.inner.update(key, { ...change, rotateTo }, ttl);
  }
}

/** Rotates a resent update again: the same rotating change, sent twice, moves the key once more. */
class DoubleRotatingStore extends Wrapped {
  private readonly seen = new WeakSet<SessionChange>();
  override async update(key: string, change: SessionChange, ttl: number) {
    const resent = this.seen.has(change);
    this.seen.add(change);
    if (resent && change.rotateTo !== undefined) {
      // Rotate the current record once more, as a store that does not check the validator first would.
      return this.inner.update(change.rotateTo, { ...change, expectedVersion: undefined, rotateTo: this.inner.rotatedKey!(change.rotateTo, 'y'.repeat(43))! }, ttl);
    }
    return this.inner.update(key, change, ttl);
  }
}

/** Forgets the session's settings. */
class SettingsDroppingStore extends Wrapped {
  override save(state: ReadonlyMap<string, string>, ttl: number, meta?: SessionMeta) {
    return this.inner.save(state, ttl, { createdAt: meta?.createdAt });
  }
}

describe('runStoreConformance', () => {
  it('passes a correct store (MemoryStore)', async () => {
    await runStoreConformance(() => new MemoryStore({ sweepIntervalMs: 0 }));
  });

  it.each<[string, () => SessionStore, string]>([
    ['a store that overwrites on save', () => new OverwritingStore(), 'save never overwrites'],
    ['a store that replaces the whole state', () => new WholeStateStore(), 'update applies changes key by key'],
    ['a store that ignores versions', () => new VersionBlindStore(), 'honours an expected version'],
    ['a store that resurrects deleted sessions', () => new ResurrectingStore(), 'update of a deleted session'],
    ['a store that never expires', () => new ImmortalStore(), 'expire after their TTL'],
    ['a store that hands out a key of its own on rotation', () => new OwnKeyStore(), 'the key rotatedKey named'],
    ['a store that rotates a resent update again', () => new DoubleRotatingStore(), 'applied twice'],
    ['a store that forgets the settings', () => new SettingsDroppingStore(), 'settings'],
  ])('catches %s', async (_name, make, rule) => {
    const run = runStoreConformance(make);
    await expect(run).rejects.toBeInstanceOf(ConformanceError);
    await expect(runStoreConformance(make)).rejects.toThrow(rule);
  });

  it('names every case', () => {
    expect(conformanceCases.length).toBeGreaterThanOrEqual(12);
  });
});
