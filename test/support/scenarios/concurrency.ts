/** Parallel requests on one session: per-key merges, rotation under load, no resurrection. */
import request from 'supertest';
import { sessionCookie } from '../cookies';
import { type ScenarioContext, sleep } from './context';

export function concurrencyScenarios(t: ScenarioContext): void {
  describe('concurrency', () => {
    it('40 parallel requests on one session, each setting a distinct key: all 40 kept', async () => {
      if (t.stateless()) return; // the state travels in the cookie: parallel responses cannot merge
      const a = t.app();
      const jar = await t.seed(a);
      t.spy.delayMs = 5;
      const responses = await Promise.all(
        Array.from({ length: 40 }, (_, i) => request(a).get(`/set?key=p${i}&json=${i}`).set('Cookie', jar.header())),
      );
      expect(responses.every((r) => r.status === 200)).toBe(true);
      const sent = responses.map((r) => sessionCookie(r)).filter((c) => c !== undefined);
      expect(sent.length).toBeGreaterThanOrEqual(1);
      t.spy.delayMs = 0;
      for (const c of sent) {
        const dump = await request(a).get('/dump').set('Cookie', `sid=${c!.value}`);
        expect(Object.keys(dump.body)).toHaveLength(41);
      }
    });

    it('parallel requests during a rotation: every value sent still loads after the grace', async () => {
      const a = t.app({ rotationGraceMs: 200 });
      const jar = await t.seed(a, { n: 0 });
      t.spy.delayMs = 3;
      const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => request(a).get(`/set?key=r${i}&json=${i}`).set('Cookie', jar.header())));
      expect(responses.every((r) => r.status === 200)).toBe(true);
      t.spy.delayMs = 0;
      await sleep(400);
      const sent = responses.map((r) => sessionCookie(r)).filter((c) => c !== undefined);
      expect(sent.length).toBeGreaterThanOrEqual(1);
      // The browser keeps the last Set-Cookie it received, whichever that is: each must be alive.
      const last = sent[sent.length - 1]!;
      const res = await request(a).get('/read?key=n').set('Cookie', `sid=${last.value}`);
      expect(res.body.isNew).toBe(false);
      if (!t.stateless()) {
        for (const c of sent) expect((await request(a).get('/read?key=n').set('Cookie', `sid=${c!.value}`)).body.isNew).toBe(false);
        expect(Object.keys((await request(a).get('/dump').set('Cookie', `sid=${last.value}`)).body)).toHaveLength(11);
      }
    });

    it('an update never brings back a session purged meanwhile', async () => {
      if (!t.invalidation) return;
      const a = t.app();
      const jar = await t.seed(a);
      const slow = request(a).get('/read?delay=150').set('Cookie', jar.header());
      const slowSet = request(a).get('/set?key=late&json=1&delay=150').set('Cookie', jar.header());
      const [, , purged] = await Promise.all([slow, slowSet, sleep(30).then(() => request(a).get('/purge').set('Cookie', jar.header()))]);
      expect(sessionCookie(purged)!.attributes['max-age']).toBe('0');
      expect((await request(a).get('/dump').set('Cookie', jar.header())).body).toEqual({});
    });
  });
}
