/** TTL extension policies and the absolute timeout. */
import request from 'supertest';
import { sessionCookie } from '../cookies';
import { type ScenarioContext } from './context';

export function ttlScenarios(t: ScenarioContext): void {
  describe('TTL extension', () => {
    it("'on-change': read-only traffic never extends", async () => {
      let offset = 0;
      const a = t.app({ ttlExtension: 'on-change', ttl: 100, now: () => Date.now() + offset });
      const jar = await t.seed(a);
      offset = 90_000;
      const res = await request(a).get('/read').set('Cookie', jar.header());
      expect(t.spy.methods()).toEqual(['load']);
      expect(sessionCookie(res)).toBeUndefined();
    });

    it("'on-every-request': each read extends and refreshes the cookie", async () => {
      const a = t.app({ ttlExtension: 'on-every-request', ttl: 100 });
      const jar = await t.seed(a);
      const res = await request(a).get('/read').set('Cookie', jar.header());
      expect(t.spy.methods()).toEqual(['load', 'updateTtl']);
      expect(sessionCookie(res)!.attributes['max-age']).toBe('100');
    });

    it("'sliding': nothing before half the TTL is spent, one extension after", async () => {
      let offset = 0;
      const a = t.app({ ttlExtension: 'sliding', ttl: 100, now: () => Date.now() + offset });
      const jar = await t.seed(a);
      offset = 40_000;
      const early = await request(a).get('/read').set('Cookie', jar.header());
      expect(t.spy.methods()).toEqual(['load']);
      expect(sessionCookie(early)).toBeUndefined();
      t.spy.reset();
      offset = 60_000;
      const late = await request(a).get('/read').set('Cookie', jar.header());
      expect(t.spy.methods()).toEqual(['load', 'updateTtl']);
      expect(sessionCookie(late)!.attributes['max-age']).toBe('100');
    });

    it('absoluteTtl ends a session however active it is', async () => {
      let offset = 0;
      const a = t.app({ absoluteTtl: 50, ttl: 100, ttlExtension: 'on-every-request', now: () => Date.now() + offset });
      const jar = await t.seed(a);
      const fresh = await request(a).get('/read?key=k').set('Cookie', jar.header());
      expect(Number(sessionCookie(fresh)!.attributes['max-age'])).toBeLessThanOrEqual(50);
      jar.take(fresh);
      offset = 51_000;
      t.spy.reset();
      const res = await request(a).get('/read?key=k').set('Cookie', jar.header());
      expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
      expect(t.spy.methods()).toEqual(['load', 'delete']);
      expect(sessionCookie(res)!.attributes['max-age']).toBe('0');
    });
  });
}
