import { Session } from '../../src/engine/session';

const fresh = () => new Session(false, null);

describe('Session', () => {
  it('tracks per-key changes and the status', () => {
    const s = fresh();
    s.adopt('k', new Map([['a', '1'], ['b', '"x"']]), 1, Date.now() + 1000, Date.now(), false);
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
    expect(s.takeChanges()).toEqual({ set: new Map([['c', '[1]']]), removed: new Set(['b']) });
  });

  it('decodes on every get, so mutating a returned value changes nothing', () => {
    const s = fresh();
    s.set('o', { n: 1 });
    (s.get('o') as { n: number }).n = 2;
    expect(s.get('o')).toEqual({ n: 1 });
  });

  it('refuses what JSON cannot round-trip, naming the key, and accepts plain data', () => {
    const s = fresh();
    const cycle: Record<string, unknown> = {};
    cycle.me = cycle;
    for (const bad of [() => 1, BigInt(2), cycle, Symbol('s'), undefined, Number.NaN, Infinity, [undefined], { f() {} }, { deep: [{ b: BigInt(1) }] }]) {
      expect(() => s.set('the-key', bad as never)).toThrow(TypeError);
      expect(() => s.set('the-key', bad as never)).toThrow(/"the-key"/);
    }
    expect(s.keys()).toEqual([]);
    s.set('ok', { a: [1, 'two', null, true], d: new Date(0), opt: undefined });
    expect(s.get('ok')).toEqual({ a: [1, 'two', null, true], d: '1970-01-01T00:00:00.000Z' });
  });

  it('keeps __proto__ and constructor as data', () => {
    const s = fresh();
    s.set('__proto__', { admin: true });
    s.set('constructor', 'c');
    expect(s.get('__proto__')).toEqual({ admin: true });
    expect(s.has('constructor')).toBe(true);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(s.has('toString')).toBe(false);
  });

  it('a corrupt stored value is a LoadError naming the key', () => {
    const s = fresh();
    s.adopt('k', new Map([['bad', '{nope']]), 1, 0, 0, false);
    expect(() => s.get('bad')).toThrow(expect.objectContaining({ code: 'LATCHKEY_LOAD_DESERIALIZATION' }));
  });

  it('purge wins over renew; values set after purge start a new session', () => {
    const s = fresh();
    s.adopt('k', new Map([['a', '1']]), 1, 0, 0, false);
    s.purge();
    s.renew();
    expect(s.status).toBe('purged');
    expect(s.keys()).toEqual([]);
    s.set('b', 1);
    expect(s.status).toBe('changed');
    expect(s.isNew).toBe(true);
    expect(s.deleteKey).toBe('k');
  });
});
