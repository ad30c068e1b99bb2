/** What set() accepts and refuses, and keys that look like prototype members. */
import request from 'supertest';
import { type ScenarioContext } from './context';

export function valuesScenarios(t: ScenarioContext): void {
  describe('values', () => {
    it.each(['function', 'bigint', 'cycle', 'symbol', 'array-undefined', 'nested', 'nan'])('set() of a %s throws a TypeError naming the key', async (kind) => {
      const res = await request(t.app()).get(`/set-bad?kind=${kind}`);
      expect(res.status).toBe(200);
      expect(res.body.error).toMatch(/^TypeError: .*bad-/);
    });

    it('set(key, undefined) removes the key', async () => {
      const a = t.app();
      const jar = await t.seed(a, { k: 'v', 'bad-undefined': 1 });
      const res = await request(a).get('/set-bad?kind=undefined').set('Cookie', jar.header());
      expect(res.body.error).toBeNull();
      jar.take(res);
      expect((await request(a).get('/dump').set('Cookie', jar.header())).body).toEqual({ k: 'v' });
    });

    it('__proto__ and constructor keys round-trip as plain data', async () => {
      const a = t.app();
      const jar = await t.seed(a, { __proto__: { admin: true }, constructor: 'c' } as unknown as Record<string, unknown>);
      // the object literal above sets a prototype; set the key explicitly as well
      jar.take(await request(a).get(`/set?key=__proto__&json=${encodeURIComponent('{"admin":true}')}`).set('Cookie', jar.header()));
      const dump = await request(a).get('/read?key=__proto__').set('Cookie', jar.header());
      expect(dump.body.value).toEqual({ admin: true });
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
      expect((await request(a).get('/read?key=constructor').set('Cookie', jar.header())).body.value).toBe('c');
    });
  });
}
