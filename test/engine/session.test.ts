/** The handle (`Session`) over the engine's per-request record: values, status, lifecycle verbs, settings. */
import { SessionRecord } from '../../src/engine/record';

const defaults = { ttl: 3600, persistent: true, recordId: (key: string) => key.split('.')[0], noStoreWithSession: true };
const listener = { changed: () => {} };
const fresh = () => new SessionRecord(false, defaults, listener, undefined);
const loaded = (state: [string, string][], settings = {}) => {
  const r = fresh();
  r.adopt('k', { state: new Map(state), version: 1, expiresAt: Date.now() + 1000, createdAt: Date.now(), settings }, false);
  return r;
};

describe('Session', () => {
  it('tracks per-key changes and the status as the net change', () => {
    const r = loaded([['a', '1'], ['b', '"x"']]);
    const s = r.session;
    expect(s.status).toBe('unchanged');
    s.set('a', 1);
    expect(s.status).toBe('unchanged');
    s.set('a', 2);
    expect(s.status).toBe('changed');
    s.set('a', 1);
    expect(s.status).toBe('unchanged');
    s.remove('b');
    s.set('c', [1]);
    expect(s.keys().sort()).toEqual(['a', 'c']);
    expect(s.entries()).toEqual(expect.arrayContaining([['a', 1], ['c', [1]]]));
    const snap = r.take();
    expect({ set: snap.set, removed: snap.removed }).toEqual({ set: new Map([['c', '[1]']]), removed: new Set(['b']) });
    expect(s.status).toBe('unchanged');
  });

  it('decodes on every get, so mutating a returned value changes nothing', () => {
    const s = fresh().session;
    s.set('o', { n: 1 });
    (s.get('o') as { n: number }).n = 2;
    expect(s.get('o')).toEqual({ n: 1 });
  });

  it('refuses what JSON cannot round-trip, naming the key, and accepts plain data', () => {
    const s = fresh().session;
    const cycle: Record<string, unknown> = {};
    cycle.me = cycle;
    for (const bad of [() => 1, BigInt(2), cycle, Symbol('s'), Number.NaN, Infinity, [undefined], { f() {} }, { deep: [{ b: BigInt(1) }] }]) {
      expect(() => s.set('the-key', bad as never)).toThrow(TypeError);
      expect(() => s.set('the-key', bad as never)).toThrow(/"the-key"/);
    }
    expect(s.keys()).toEqual([]);
    s.set('ok', { a: [1, 'two', null, true], d: new Date(0), opt: undefined });
    expect(s.get('ok')).toEqual({ a: [1, 'two', null, true], d: '1970-01-01T00:00:00.000Z' });
  });

  it('set(key, undefined) removes the key (as @fastify/session-era libraries call it)', () => {
    const r = loaded([['a', '1'], ['b', '2']]);
    r.session.set('a', undefined);
    expect(r.session.has('a')).toBe(false);
    expect(r.session.status).toBe('changed');
    expect([...r.take().removed]).toEqual(['a']);
    r.session.set('never-there', undefined);
    expect(r.session.status).toBe('unchanged');
  });

  it('keeps __proto__ and constructor as data', () => {
    const s = fresh().session;
    s.set('__proto__', { admin: true });
    s.set('constructor', 'c');
    expect(s.get('__proto__')).toEqual({ admin: true });
    expect(s.has('constructor')).toBe(true);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(s.has('toString')).toBe(false);
  });

  it('a corrupt stored value is a LoadError naming the key', () => {
    const s = loaded([['bad', '{nope']]).session;
    expect(() => s.get('bad')).toThrow(expect.objectContaining({ code: 'LATCHKEY_LOAD_DESERIALIZATION' }));
  });

  it('purge wins over renew; values set after purge start a new session', () => {
    const r = loaded([['a', '1']]);
    const s = r.session;
    s.purge();
    s.renew();
    expect(s.status).toBe('purged');
    expect(s.keys()).toEqual([]);
    s.set('b', 1);
    expect(s.status).toBe('changed');
    expect(s.isNew).toBe(true);
    expect(r.doomed).toBe('k');
  });

  it('shows nothing but its API: no own properties, and assigning one throws a TypeError pointing to set()', () => {
    const s = loaded([['a', '1']]).session as unknown as Record<string, unknown>;
    expect(Object.keys(s)).toEqual([]);
    expect(Object.getOwnPropertyNames(s)).toEqual([]);
    expect(() => {
      s.foo = 1;
    }).toThrow(TypeError);
    expect(() => {
      s.user = 'ada';
    }).toThrow(/session\.set\("user", value\).*latchkey\/express-session/);
    expect('foo' in s).toBe(false);
    expect(s.foo).toBeUndefined();
    // Sloppy-mode code cannot drop the assignment silently either: the trap throws, it does not return false.
    // eslint-disable-next-line no-new-func
    expect(() => new Function('s', 's.bar = 2')(s)).toThrow(TypeError);
  });

  it('ttl and persistent: the defaults until set, a change of an existing session, capped at 400 days', () => {
    const r = loaded([['a', '1']]);
    const s = r.session;
    expect([s.ttl, s.persistent]).toEqual([3600, true]);
    s.ttl = 3600; // the value it has: no change
    expect(s.status).toBe('unchanged');
    s.ttl = 30 * 86_400;
    s.persistent = false;
    expect(s.status).toBe('changed');
    expect([s.ttl, s.persistent]).toEqual([30 * 86_400, false]);
    expect(r.take().settings).toEqual({ ttl: 30 * 86_400, persistent: false });
    s.ttl = 10_000 * 86_400;
    expect(s.ttl).toBe(400 * 86_400);
    for (const bad of [0, -1, Number.NaN, Infinity, '60']) expect(() => (s.ttl = bad as never)).toThrow(TypeError);
    expect(() => (s.persistent = 'yes' as never)).toThrow(TypeError);
    // Loaded settings are the session's own: they win over the defaults.
    expect(loaded([], { ttl: 60, persistent: false }).session.ttl).toBe(60);
  });
});
