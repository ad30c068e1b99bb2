/** Failed requests commit nothing; a store that fails or hangs gives a 503 within storeTimeoutMs. */
import request from 'supertest';
import { sessionCookie } from '../cookies';
import { type ScenarioContext } from './context';

export function failuresScenarios(t: ScenarioContext): void {
  describe('failures', () => {
    it('a 500 from the handler commits nothing', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const res = await request(a).get('/set-then-500?key=k').set('Cookie', jar.header());
      expect(res.status).toBe(500);
      expect(t.spy.methods()).toEqual(['load']);
      expect(sessionCookie(res)).toBeUndefined();
      expect((await request(a).get('/read?key=k').set('Cookie', jar.header())).body.value).toBe('v');
    });

    it('a 503 from the handler commits nothing, on a new session too', async () => {
      const res = await request(t.app()).get('/set-then-503');
      expect(res.status).toBe(503);
      expect(t.spy.count()).toBe(0);
      expect(sessionCookie(res)).toBeUndefined();
    });

    it('a thrown handler error commits nothing', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const res = await request(a).get('/set-then-throw?key=k').set('Cookie', jar.header());
      expect(res.status).toBe(500);
      expect(t.spy.methods()).toEqual(['load']);
      expect(sessionCookie(res)).toBeUndefined();
    });

    it('a store that never answers: 503 within storeTimeoutMs, no Set-Cookie', async () => {
      const a = t.app({ storeTimeoutMs: 200 });
      const jar = await t.seed(a);
      t.spy.hang.add('load');
      const started = Date.now();
      const res = await request(a).get('/read').set('Cookie', jar.header());
      const took = Date.now() - started;
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('LATCHKEY_STORE_TIMEOUT');
      expect(took).toBeLessThan(200 + 1000);
      expect(sessionCookie(res)).toBeUndefined();
    });

    it('a store that fails at commit: 503 through the error path (LATCHKEY_SAVE), the handler body not sent, no Set-Cookie', async () => {
      const a = t.app();
      t.spy.failWith.save = new Error('ECONNRESET');
      const res = await request(a).get('/set?key=a&json=1');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ error: 'LATCHKEY_SAVE' });
      expect(sessionCookie(res)).toBeUndefined();
      expect(t.spy.methods()).toEqual(['save']);
    });

    it('a commit that never answers: 503, and the handler body is not sent', async () => {
      const a = t.app({ storeTimeoutMs: 200 });
      t.spy.hang.add('save');
      const res = await request(a).get('/set?key=a&json=1');
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('LATCHKEY_STORE_TIMEOUT');
      expect(sessionCookie(res)).toBeUndefined();
    });

    it("onStoreError 'anonymous': 200 with an empty session that is not saved", async () => {
      const events: string[] = [];
      const a = t.app({ storeTimeoutMs: 200, onStoreError: 'anonymous', onEvent: (e) => events.push(e.type) });
      const jar = await t.seed(a);
      t.spy.failWith.load = new Error('ECONNREFUSED');
      const res = await request(a).get('/set?key=x&json=1').set('Cookie', jar.header());
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ isNew: true });
      expect(t.spy.methods()).toEqual(['load']);
      expect(sessionCookie(res)).toBeUndefined();
      expect(events).toEqual(['store-unavailable']);
    });
  });
}
