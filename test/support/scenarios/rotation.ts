/** Rotation with its grace window, renew() allowing none, and secret rotation. */
import request from 'supertest';
import { sessionCookie } from '../cookies';
import { OLD_SECRET, SECRET } from '../harness';
import { type ScenarioContext, sleep } from './context';

export function rotationScenarios(t: ScenarioContext): void {
  describe('rotation grace and secrets', () => {
    it('a previous value works within the grace (changes kept, no Set-Cookie) and not after', async () => {
      const a = t.app({ rotationGraceMs: 300 });
      const jar = await t.seed(a);
      const old = jar.header();
      jar.take(await request(a).get('/set?key=b&json=2').set('Cookie', old));
      const inGrace = await request(a).get('/set?key=c&json=3').set('Cookie', old);
      expect(inGrace.body.isNew).toBe(false);
      // A stateless store has no grace: the previous value is the previous state itself, changed and re-issued on its own.
      if (!t.invalidation) return;
      expect(sessionCookie(inGrace)).toBeUndefined();
      expect((await request(a).get('/dump').set('Cookie', jar.header())).body).toEqual({ k: 'v', b: 2, c: 3 });
      await sleep(500);
      expect((await request(a).get('/read').set('Cookie', old)).body.isNew).toBe(true);
      expect((await request(a).get('/read?key=c').set('Cookie', jar.header())).body.value).toBe(3);
    });

    it('renew() allows no grace to the previous values', async () => {
      if (!t.invalidation) return;
      const a = t.app({ rotationGraceMs: 60_000 });
      const jar = await t.seed(a);
      const first = jar.header();
      jar.take(await request(a).get('/set?key=b&json=2').set('Cookie', first));
      jar.take(await request(a).get('/login').set('Cookie', jar.header()));
      expect((await request(a).get('/read').set('Cookie', first)).body.isNew).toBe(true);
    });

    it('a cookie under an older secret is accepted and re-issued under the first', async () => {
      const before = await t.seed(t.app({ secret: OLD_SECRET }));
      const rotated = t.app({ secret: [SECRET, OLD_SECRET] });
      const res = await request(rotated).get('/read?key=k').set('Cookie', before.header());
      expect(res.body.value).toBe('v');
      const c = sessionCookie(res)!;
      expect(c.value).not.toBe(before.value);
      // The re-issued value opens under the new secret alone.
      const only = t.app({ secret: SECRET });
      expect((await request(only).get('/read?key=k').set('Cookie', `sid=${c.value}`)).body.value).toBe('v');
      expect((await request(only).get('/read?key=k').set('Cookie', before.header())).body.isNew).toBe(true);
    });
  });
}
