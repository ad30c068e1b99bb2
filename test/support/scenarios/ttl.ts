/** TTL extension policies and the absolute timeout. */
import request from 'supertest';
import { Jar, sessionCookie } from '../cookies';
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

    it('a TTL set for one session ("remember me") is kept with the record: later changes and extensions keep it', async () => {
      const a = t.app({ ttl: 100, ttlExtension: 'on-every-request' });
      const jar = new Jar();
      const res = await request(a).get('/remember?ttl=2592000');
      expect(res.body).toEqual({ ttl: 2592000, persistent: true });
      expect(sessionCookie(res)!.attributes['max-age']).toBe('2592000');
      jar.take(res);
      const changed = await request(a).get('/set?key=b&json=1').set('Cookie', jar.header());
      expect(sessionCookie(changed)!.attributes['max-age']).toBe('2592000');
      jar.take(changed);
      const read = await request(a).get('/settings').set('Cookie', jar.header());
      expect(read.body).toEqual({ ttl: 2592000, persistent: true });
      expect(sessionCookie(read)!.attributes['max-age']).toBe('2592000');
      // Another session on the same app keeps the option's TTL.
      expect(sessionCookie(await request(a).get('/set?key=x&json=1'))!.attributes['max-age']).toBe('100');
    });

    it('persistent false for one session: a browser-session cookie, kept on later commits; absoluteTtl still caps a remembered TTL', async () => {
      const a = t.app({ ttlExtension: 'on-every-request' });
      const jar = new Jar();
      const res = await request(a).get('/remember?persistent=0');
      expect(sessionCookie(res)!.attributes['max-age']).toBeUndefined();
      jar.take(res);
      const later = await request(a).get('/set?key=b&json=1').set('Cookie', jar.header());
      expect(sessionCookie(later)!.attributes['max-age']).toBeUndefined();
      const capped = await request(t.app({ absoluteTtl: 50 })).get('/remember?ttl=3600');
      expect(Number(sessionCookie(capped)!.attributes['max-age'])).toBeLessThanOrEqual(50);
    });
  });
}
