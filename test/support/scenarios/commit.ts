/** Commit by status: which store call and which Set-Cookie each status makes. */
import request from 'supertest';
import { sessionCookie } from '../cookies';
import { type ScenarioContext } from './context';

export function commitScenarios(t: ScenarioContext): void {
  describe('commit by status', () => {
    it('untouched, no cookie: no store call, no Set-Cookie', async () => {
      const res = await request(t.app()).get('/anon');
      expect(res.status).toBe(200);
      expect(sessionCookie(res)).toBeUndefined();
      expect(t.spy.count()).toBe(0);
    });

    it('new: one save, a Set-Cookie with the safe defaults and Cache-Control: no-store', async () => {
      const res = await request(t.app()).get('/set?key=a&json=1');
      expect(res.status).toBe(200);
      expect(t.spy.methods()).toEqual(['save']);
      const c = sessionCookie(res)!;
      expect(c.attributes).toMatchObject({ 'max-age': '86400', path: '/', httponly: true, samesite: 'Lax' });
      expect(c.attributes.secure).toBeUndefined();
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('a new session left empty is not saved', async () => {
      const res = await request(t.app()).get('/remove?key=a');
      expect(t.spy.count()).toBe(0);
      expect(sessionCookie(res)).toBeUndefined();
    });

    it('unchanged read: one load, no Set-Cookie', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const res = await request(a).get('/read?key=k').set('Cookie', jar.header());
      expect(res.body).toEqual({ value: 'v', isNew: false, status: 'unchanged' });
      expect(t.spy.methods()).toEqual(['load']);
      expect(sessionCookie(res)).toBeUndefined();
    });

    it('setting the loaded value again is not a change', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const res = await request(a).get(`/set?key=k&json=${encodeURIComponent('"v"')}`).set('Cookie', jar.header());
      expect(res.body.status).toBe('unchanged');
      expect(t.spy.methods()).toEqual(['load']);
      expect(sessionCookie(res)).toBeUndefined();
    });

    it('changed: load + one update that rotates the key; the new value sees every key', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const before = jar.value;
      const res = await request(a).get('/set?key=b&json=2').set('Cookie', jar.header());
      expect(t.spy.methods()).toEqual(['load', 'update']);
      const c = sessionCookie(res)!;
      expect(c.value).not.toBe(before);
      expect(c.attributes['max-age']).toBe('86400');
      jar.take(res);
      const dump = await request(a).get('/dump').set('Cookie', jar.header());
      expect(dump.body).toEqual({ k: 'v', b: 2 });
    });

    it("rotation 'on-renew': an update keeps the key and refreshes the cookie", async () => {
      if (t.stateless()) return; // a stateless store's key is its state: every change is a new value
      const a = t.app({ rotation: 'on-renew' });
      const jar = await t.seed(a);
      const before = jar.value;
      const res = await request(a).get('/set?key=b&json=2').set('Cookie', jar.header());
      expect(t.spy.methods()).toEqual(['load', 'update']);
      expect(t.spy.calls[1]!.change!.rotateTo).toBeUndefined();
      expect(sessionCookie(res)!.value).toBe(before);
    });

    it('renewed: a new key for the same state; the old key is dead at once', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const old = jar.header();
      const res = await request(a).get('/login?user=ada').set('Cookie', old);
      expect(t.spy.methods()).toEqual(['load', 'save', 'delete']);
      jar.take(res);
      expect(jar.header()).not.toBe(old);
      expect((await request(a).get('/dump').set('Cookie', jar.header())).body).toEqual({ k: 'v', user: 'ada' });
      if (t.invalidation) {
        expect((await request(a).get('/read?key=k').set('Cookie', old)).body).toEqual({ value: null, isNew: true, status: 'unchanged' });
      }
    });

    it('purged: one delete and a Set-Cookie that expires the cookie', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const old = jar.header();
      const res = await request(a).get('/purge').set('Cookie', old);
      expect(t.spy.methods()).toEqual(['load', 'delete']);
      const c = sessionCookie(res)!;
      expect(c.value).toBe('');
      expect(c.attributes).toMatchObject({ 'max-age': '0', path: '/', httponly: true });
      expect(res.headers['cache-control']).toBe('no-store');
      if (t.invalidation) expect((await request(a).get('/read?key=k').set('Cookie', old)).body.isNew).toBe(true);
    });

    it('emptied by remove(): purged', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const res = await request(a).get('/remove?key=k').set('Cookie', jar.header());
      expect(t.spy.methods()).toEqual(['load', 'delete']);
      expect(sessionCookie(res)!.attributes['max-age']).toBe('0');
    });

    it('emptied by clear(): purged', async () => {
      const a = t.app();
      const jar = await t.seed(a, { a: 1, b: 2 });
      const res = await request(a).get('/clear').set('Cookie', jar.header());
      expect(t.spy.methods()).toEqual(['load', 'delete']);
      expect(sessionCookie(res)!.attributes['max-age']).toBe('0');
    });

    it('values set after purge() start a new session; the old one is deleted', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const old = jar.header();
      await request(a).get('/purge').set('Cookie', old);
      t.spy.reset();
      // purge then set in one request, through two routes is not possible: drive the handle directly
      const res = await request(a).get('/set?key=x&json=1').set('Cookie', old);
      if (t.invalidation) expect(t.spy.methods()).toEqual(['load', 'save']);
      expect(sessionCookie(res)).toBeDefined();
    });

    it("browser-session lifecycle: a cookie without Max-Age", async () => {
      const res = await request(t.app({ lifecycle: 'browser-session' })).get('/set?key=a&json=1');
      const c = sessionCookie(res)!;
      expect(c.attributes['max-age']).toBeUndefined();
      expect(c.attributes.expires).toBeUndefined();
    });

    it('__Host- name with secure: true gives Secure; Path=/', async () => {
      const res = await request(t.app({ name: '__Host-sid', cookie: { secure: true } })).get('/set?key=a&json=1');
      const c = sessionCookie(res, '__Host-sid')!;
      expect(c.attributes).toMatchObject({ secure: true, path: '/' });
      expect(c.attributes.domain).toBeUndefined();
    });

    it("a response to a request with a live session is no-store (the back button after logout); 'cookie' limits it to Set-Cookie responses", async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const read = await request(a).get('/read?key=k').set('Cookie', jar.header());
      expect(sessionCookie(read)).toBeUndefined();
      expect(read.headers['cache-control']).toBe('no-store');
      expect((await request(a).get('/anon')).headers['cache-control']).toBeUndefined();
      const b = t.app({ cacheControl: 'cookie' });
      const jarB = await t.seed(b);
      expect((await request(b).get('/read?key=k').set('Cookie', jarB.header())).headers['cache-control']).toBeUndefined();
    });

    it('the response that ends a session clears the browser cache of the site (Clear-Site-Data)', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const res = await request(a).get('/purge').set('Cookie', jar.header());
      expect(res.headers['clear-site-data']).toBe('"cache"');
      expect(res.headers['cache-control']).toBe('no-store');
      expect((await request(a).get('/set?key=a&json=1')).headers['clear-site-data']).toBeUndefined();
    });
  });
}
