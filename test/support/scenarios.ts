/**
 * The shared HTTP scenario table: every engine behaviour a user can see, run through
 * every framework in `frameworks` against any store. Store test files call
 * `describeScenarios(label, makeStore)`; each test gets a fresh store wrapped in a SpyStore.
 */
import request from 'supertest';
import type { RequestListener } from 'node:http';
import type { SessionOptions, SessionStore } from 'latchkey';
import { PrivateCodec, SignedCodec } from '../../src/cookie/codec';
import { Jar, sessionCookie } from './cookies';
import { rawGet } from './raw';
import { frameworks as allFrameworks, type Framework, OLD_SECRET, SECRET } from './harness';
import { SpyStore } from './spy-store';

export interface ScenarioOptions {
  /** False for a store that cannot revoke a copied session (CookieStore). Default true. */
  invalidation?: boolean;
  /** Called after each test with the inner store. */
  cleanup?: (store: SessionStore) => Promise<void> | void;
  /** Frameworks to run; default all. */
  frameworks?: Framework[];
}

const OTHER_SECRET = 'somebody-elses-secret-that-is-long-enough-99';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function describeScenarios(
  label: string,
  makeStore: () => SessionStore | Promise<SessionStore>,
  scenarioOptions: ScenarioOptions = {},
): void {
  const invalidation = scenarioOptions.invalidation ?? true;
  for (const fw of scenarioOptions.frameworks ?? allFrameworks) {
    describe(`${label} on ${fw.name}`, () => {
      let spy: SpyStore;
      let inner: SessionStore;
      beforeEach(async () => {
        inner = await makeStore();
        spy = new SpyStore(inner);
      });
      afterEach(async () => {
        await scenarioOptions.cleanup?.(inner);
      });

      const app = (options: Partial<SessionOptions> = {}, setup?: (app: unknown) => void): RequestListener =>
        fw.app({ secret: SECRET, store: spy, ...options }, setup);
      const stateless = () => inner.stateless === true;

      /** A session holding `values`, made through the app; the spy is reset afterwards. */
      async function seed(listener: RequestListener, values: Record<string, unknown> = { k: 'v' }): Promise<Jar> {
        const jar = new Jar();
        for (const [key, value] of Object.entries(values)) {
          jar.take(await request(listener).get(`/set?key=${key}&json=${encodeURIComponent(JSON.stringify(value))}`).set('Cookie', jar.header()));
        }
        expect(jar.value).toBeDefined();
        spy.reset();
        return jar;
      }

      describe('commit by status', () => {
        it('untouched, no cookie: no store call, no Set-Cookie', async () => {
          const res = await request(app()).get('/anon');
          expect(res.status).toBe(200);
          expect(sessionCookie(res)).toBeUndefined();
          expect(spy.count()).toBe(0);
        });

        it('new: one save, a Set-Cookie with the safe defaults and Cache-Control: no-store', async () => {
          const res = await request(app()).get('/set?key=a&json=1');
          expect(res.status).toBe(200);
          expect(spy.methods()).toEqual(['save']);
          const c = sessionCookie(res)!;
          expect(c.attributes).toMatchObject({ 'max-age': '86400', path: '/', httponly: true, samesite: 'Lax' });
          expect(c.attributes.secure).toBeUndefined();
          expect(res.headers['cache-control']).toBe('no-store');
        });

        it('a new session left empty is not saved', async () => {
          const res = await request(app()).get('/remove?key=a');
          expect(spy.count()).toBe(0);
          expect(sessionCookie(res)).toBeUndefined();
        });

        it('unchanged read: one load, no Set-Cookie', async () => {
          const a = app();
          const jar = await seed(a);
          const res = await request(a).get('/read?key=k').set('Cookie', jar.header());
          expect(res.body).toEqual({ value: 'v', isNew: false, status: 'unchanged' });
          expect(spy.methods()).toEqual(['load']);
          expect(sessionCookie(res)).toBeUndefined();
        });

        it('setting the loaded value again is not a change', async () => {
          const a = app();
          const jar = await seed(a);
          const res = await request(a).get(`/set?key=k&json=${encodeURIComponent('"v"')}`).set('Cookie', jar.header());
          expect(res.body.status).toBe('unchanged');
          expect(spy.methods()).toEqual(['load']);
          expect(sessionCookie(res)).toBeUndefined();
        });

        it('changed: load + one update that rotates the key; the new value sees every key', async () => {
          const a = app();
          const jar = await seed(a);
          const before = jar.value;
          const res = await request(a).get('/set?key=b&json=2').set('Cookie', jar.header());
          expect(spy.methods()).toEqual(['load', 'update']);
          const c = sessionCookie(res)!;
          expect(c.value).not.toBe(before);
          expect(c.attributes['max-age']).toBe('86400');
          jar.take(res);
          const dump = await request(a).get('/dump').set('Cookie', jar.header());
          expect(dump.body).toEqual({ k: 'v', b: 2 });
        });

        it("rotation 'on-renew': an update keeps the key and refreshes the cookie", async () => {
          if (stateless()) return; // a stateless store's key is its state: every change is a new value
          const a = app({ rotation: 'on-renew' });
          const jar = await seed(a);
          const before = jar.value;
          const res = await request(a).get('/set?key=b&json=2').set('Cookie', jar.header());
          expect(spy.methods()).toEqual(['load', 'update']);
          expect(spy.calls[1]!.change!.rotateTo).toBeUndefined();
          expect(sessionCookie(res)!.value).toBe(before);
        });

        it('renewed: a new key for the same state; the old key is dead at once', async () => {
          const a = app();
          const jar = await seed(a);
          const old = jar.header();
          const res = await request(a).get('/login?user=ada').set('Cookie', old);
          expect(spy.methods()).toEqual(['load', 'save', 'delete']);
          jar.take(res);
          expect(jar.header()).not.toBe(old);
          expect((await request(a).get('/dump').set('Cookie', jar.header())).body).toEqual({ k: 'v', user: 'ada' });
          if (invalidation) {
            expect((await request(a).get('/read?key=k').set('Cookie', old)).body).toEqual({ value: null, isNew: true, status: 'unchanged' });
          }
        });

        it('purged: one delete and a Set-Cookie that expires the cookie', async () => {
          const a = app();
          const jar = await seed(a);
          const old = jar.header();
          const res = await request(a).get('/purge').set('Cookie', old);
          expect(spy.methods()).toEqual(['load', 'delete']);
          const c = sessionCookie(res)!;
          expect(c.value).toBe('');
          expect(c.attributes).toMatchObject({ 'max-age': '0', path: '/', httponly: true });
          expect(res.headers['cache-control']).toBe('no-store');
          if (invalidation) expect((await request(a).get('/read?key=k').set('Cookie', old)).body.isNew).toBe(true);
        });

        it('emptied by remove(): purged', async () => {
          const a = app();
          const jar = await seed(a);
          const res = await request(a).get('/remove?key=k').set('Cookie', jar.header());
          expect(spy.methods()).toEqual(['load', 'delete']);
          expect(sessionCookie(res)!.attributes['max-age']).toBe('0');
        });

        it('emptied by clear(): purged', async () => {
          const a = app();
          const jar = await seed(a, { a: 1, b: 2 });
          const res = await request(a).get('/clear').set('Cookie', jar.header());
          expect(spy.methods()).toEqual(['load', 'delete']);
          expect(sessionCookie(res)!.attributes['max-age']).toBe('0');
        });

        it('values set after purge() start a new session; the old one is deleted', async () => {
          const a = app();
          const jar = await seed(a);
          const old = jar.header();
          await request(a).get('/purge').set('Cookie', old);
          spy.reset();
          // purge then set in one request, through two routes is not possible: drive the handle directly
          const res = await request(a).get('/set?key=x&json=1').set('Cookie', old);
          if (invalidation) expect(spy.methods()).toEqual(['load', 'save']);
          expect(sessionCookie(res)).toBeDefined();
        });

        it("browser-session lifecycle: a cookie without Max-Age", async () => {
          const res = await request(app({ lifecycle: 'browser-session' })).get('/set?key=a&json=1');
          const c = sessionCookie(res)!;
          expect(c.attributes['max-age']).toBeUndefined();
          expect(c.attributes.expires).toBeUndefined();
        });

        it('__Host- name with secure: true gives Secure; Path=/', async () => {
          const res = await request(app({ name: '__Host-sid', cookie: { secure: true } })).get('/set?key=a&json=1');
          const c = sessionCookie(res, '__Host-sid')!;
          expect(c.attributes).toMatchObject({ secure: true, path: '/' });
          expect(c.attributes.domain).toBeUndefined();
        });
      });

      describe('TTL extension', () => {
        it("'on-change': read-only traffic never extends", async () => {
          let offset = 0;
          const a = app({ ttlExtension: 'on-change', ttl: 100, now: () => Date.now() + offset });
          const jar = await seed(a);
          offset = 90_000;
          const res = await request(a).get('/read').set('Cookie', jar.header());
          expect(spy.methods()).toEqual(['load']);
          expect(sessionCookie(res)).toBeUndefined();
        });

        it("'on-every-request': each read extends and refreshes the cookie", async () => {
          const a = app({ ttlExtension: 'on-every-request', ttl: 100 });
          const jar = await seed(a);
          const res = await request(a).get('/read').set('Cookie', jar.header());
          expect(spy.methods()).toEqual(['load', 'updateTtl']);
          expect(sessionCookie(res)!.attributes['max-age']).toBe('100');
        });

        it("'sliding': nothing before half the TTL is spent, one extension after", async () => {
          let offset = 0;
          const a = app({ ttlExtension: 'sliding', ttl: 100, now: () => Date.now() + offset });
          const jar = await seed(a);
          offset = 40_000;
          const early = await request(a).get('/read').set('Cookie', jar.header());
          expect(spy.methods()).toEqual(['load']);
          expect(sessionCookie(early)).toBeUndefined();
          spy.reset();
          offset = 60_000;
          const late = await request(a).get('/read').set('Cookie', jar.header());
          expect(spy.methods()).toEqual(['load', 'updateTtl']);
          expect(sessionCookie(late)!.attributes['max-age']).toBe('100');
        });

        it('absoluteTtl ends a session however active it is', async () => {
          let offset = 0;
          const a = app({ absoluteTtl: 50, ttl: 100, ttlExtension: 'on-every-request', now: () => Date.now() + offset });
          const jar = await seed(a);
          const fresh = await request(a).get('/read?key=k').set('Cookie', jar.header());
          expect(Number(sessionCookie(fresh)!.attributes['max-age'])).toBeLessThanOrEqual(50);
          jar.take(fresh);
          offset = 51_000;
          spy.reset();
          const res = await request(a).get('/read?key=k').set('Cookie', jar.header());
          expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
          expect(spy.methods()).toEqual(['load', 'delete']);
          expect(sessionCookie(res)!.attributes['max-age']).toBe('0');
        });
      });

      describe('rotation grace and secrets', () => {
        it('a previous value works within the grace (changes kept, no Set-Cookie) and not after', async () => {
          const a = app({ rotationGraceMs: 300 });
          const jar = await seed(a);
          const old = jar.header();
          jar.take(await request(a).get('/set?key=b&json=2').set('Cookie', old));
          const inGrace = await request(a).get('/set?key=c&json=3').set('Cookie', old);
          expect(inGrace.body.isNew).toBe(false);
          // A stateless store has no grace: the previous value is the previous state itself, changed and re-issued on its own.
          if (!invalidation) return;
          expect(sessionCookie(inGrace)).toBeUndefined();
          expect((await request(a).get('/dump').set('Cookie', jar.header())).body).toEqual({ k: 'v', b: 2, c: 3 });
          await sleep(500);
          expect((await request(a).get('/read').set('Cookie', old)).body.isNew).toBe(true);
          expect((await request(a).get('/read?key=c').set('Cookie', jar.header())).body.value).toBe(3);
        });

        it('renew() allows no grace to the previous values', async () => {
          if (!invalidation) return;
          const a = app({ rotationGraceMs: 60_000 });
          const jar = await seed(a);
          const first = jar.header();
          jar.take(await request(a).get('/set?key=b&json=2').set('Cookie', first));
          jar.take(await request(a).get('/login').set('Cookie', jar.header()));
          expect((await request(a).get('/read').set('Cookie', first)).body.isNew).toBe(true);
        });

        it('a cookie under an older secret is accepted and re-issued under the first', async () => {
          const before = await seed(app({ secret: OLD_SECRET }));
          const rotated = app({ secret: [SECRET, OLD_SECRET] });
          const res = await request(rotated).get('/read?key=k').set('Cookie', before.header());
          expect(res.body.value).toBe('v');
          const c = sessionCookie(res)!;
          expect(c.value).not.toBe(before.value);
          // The re-issued value opens under the new secret alone.
          const only = app({ secret: SECRET });
          expect((await request(only).get('/read?key=k').set('Cookie', `sid=${c.value}`)).body.value).toBe('v');
          expect((await request(only).get('/read?key=k').set('Cookie', before.header())).body.isNew).toBe(true);
        });
      });

      describe('concurrency', () => {
        it('40 parallel requests on one session, each setting a distinct key: all 40 kept', async () => {
          if (stateless()) return; // the state travels in the cookie: parallel responses cannot merge
          const a = app();
          const jar = await seed(a);
          spy.delayMs = 5;
          const responses = await Promise.all(
            Array.from({ length: 40 }, (_, i) => request(a).get(`/set?key=p${i}&json=${i}`).set('Cookie', jar.header())),
          );
          expect(responses.every((r) => r.status === 200)).toBe(true);
          const sent = responses.map((r) => sessionCookie(r)).filter((c) => c !== undefined);
          expect(sent.length).toBeGreaterThanOrEqual(1);
          spy.delayMs = 0;
          for (const c of sent) {
            const dump = await request(a).get('/dump').set('Cookie', `sid=${c!.value}`);
            expect(Object.keys(dump.body)).toHaveLength(41);
          }
        });

        it('parallel requests during a rotation: every value sent still loads after the grace', async () => {
          const a = app({ rotationGraceMs: 200 });
          const jar = await seed(a, { n: 0 });
          spy.delayMs = 3;
          const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => request(a).get(`/set?key=r${i}&json=${i}`).set('Cookie', jar.header())));
          expect(responses.every((r) => r.status === 200)).toBe(true);
          spy.delayMs = 0;
          await sleep(400);
          const sent = responses.map((r) => sessionCookie(r)).filter((c) => c !== undefined);
          expect(sent.length).toBeGreaterThanOrEqual(1);
          // The browser keeps the last Set-Cookie it received, whichever that is: each must be alive.
          const last = sent[sent.length - 1]!;
          const res = await request(a).get('/read?key=n').set('Cookie', `sid=${last.value}`);
          expect(res.body.isNew).toBe(false);
          if (!stateless()) {
            for (const c of sent) expect((await request(a).get('/read?key=n').set('Cookie', `sid=${c!.value}`)).body.isNew).toBe(false);
            expect(Object.keys((await request(a).get('/dump').set('Cookie', `sid=${last.value}`)).body)).toHaveLength(11);
          }
        });

        it('an update never brings back a session purged meanwhile', async () => {
          if (!invalidation) return;
          const a = app();
          const jar = await seed(a);
          const slow = request(a).get('/read?delay=150').set('Cookie', jar.header());
          const slowSet = request(a).get('/set?key=late&json=1&delay=150').set('Cookie', jar.header());
          const [, , purged] = await Promise.all([slow, slowSet, sleep(30).then(() => request(a).get('/purge').set('Cookie', jar.header()))]);
          expect(sessionCookie(purged)!.attributes['max-age']).toBe('0');
          expect((await request(a).get('/dump').set('Cookie', jar.header())).body).toEqual({});
        });
      });

      describe('values', () => {
        it.each(['function', 'bigint', 'cycle', 'symbol', 'array-undefined', 'nested', 'nan'])('set() of a %s throws a TypeError naming the key', async (kind) => {
          const res = await request(app()).get(`/set-bad?kind=${kind}`);
          expect(res.status).toBe(200);
          expect(res.body.error).toMatch(/^TypeError: .*bad-/);
        });

        it('set(key, undefined) removes the key', async () => {
          const a = app();
          const jar = await seed(a, { k: 'v', 'bad-undefined': 1 });
          const res = await request(a).get('/set-bad?kind=undefined').set('Cookie', jar.header());
          expect(res.body.error).toBeNull();
          jar.take(res);
          expect((await request(a).get('/dump').set('Cookie', jar.header())).body).toEqual({ k: 'v' });
        });

        it('__proto__ and constructor keys round-trip as plain data', async () => {
          const a = app();
          const jar = await seed(a, { __proto__: { admin: true }, constructor: 'c' } as unknown as Record<string, unknown>);
          // the object literal above sets a prototype; set the key explicitly as well
          jar.take(await request(a).get(`/set?key=__proto__&json=${encodeURIComponent('{"admin":true}')}`).set('Cookie', jar.header()));
          const dump = await request(a).get('/read?key=__proto__').set('Cookie', jar.header());
          expect(dump.body.value).toEqual({ admin: true });
          expect(({} as Record<string, unknown>).admin).toBeUndefined();
          expect((await request(a).get('/read?key=constructor').set('Cookie', jar.header())).body.value).toBe('c');
        });
      });

      describe('failures', () => {
        it('a 500 from the handler commits nothing', async () => {
          const a = app();
          const jar = await seed(a);
          const res = await request(a).get('/set-then-500?key=k').set('Cookie', jar.header());
          expect(res.status).toBe(500);
          expect(spy.methods()).toEqual(['load']);
          expect(sessionCookie(res)).toBeUndefined();
          expect((await request(a).get('/read?key=k').set('Cookie', jar.header())).body.value).toBe('v');
        });

        it('a 503 from the handler commits nothing, on a new session too', async () => {
          const res = await request(app()).get('/set-then-503');
          expect(res.status).toBe(503);
          expect(spy.count()).toBe(0);
          expect(sessionCookie(res)).toBeUndefined();
        });

        it('a thrown handler error commits nothing', async () => {
          const a = app();
          const jar = await seed(a);
          const res = await request(a).get('/set-then-throw?key=k').set('Cookie', jar.header());
          expect(res.status).toBe(500);
          expect(spy.methods()).toEqual(['load']);
          expect(sessionCookie(res)).toBeUndefined();
        });

        it('a store that never answers: 503 within storeTimeoutMs, no Set-Cookie', async () => {
          const a = app({ storeTimeoutMs: 200 });
          const jar = await seed(a);
          spy.hang.add('load');
          const started = Date.now();
          const res = await request(a).get('/read').set('Cookie', jar.header());
          const took = Date.now() - started;
          expect(res.status).toBe(503);
          expect(res.body.error).toBe('LATCHKEY_STORE_TIMEOUT');
          expect(took).toBeLessThan(200 + 1000);
          expect(sessionCookie(res)).toBeUndefined();
        });

        it('a commit that never answers: 503, and the handler body is not sent', async () => {
          const a = app({ storeTimeoutMs: 200 });
          spy.hang.add('save');
          const res = await request(a).get('/set?key=a&json=1');
          expect(res.status).toBe(503);
          expect(res.body.error).toBe('LATCHKEY_STORE_TIMEOUT');
          expect(sessionCookie(res)).toBeUndefined();
        });

        it("onStoreError 'anonymous': 200 with an empty session that is not saved", async () => {
          const events: string[] = [];
          const a = app({ storeTimeoutMs: 200, onStoreError: 'anonymous', onEvent: (e) => events.push(e.type) });
          const jar = await seed(a);
          spy.failWith.load = new Error('ECONNREFUSED');
          const res = await request(a).get('/set?key=x&json=1').set('Cookie', jar.header());
          expect(res.status).toBe(200);
          expect(res.body).toMatchObject({ isNew: true });
          expect(spy.methods()).toEqual(['load']);
          expect(sessionCookie(res)).toBeUndefined();
          expect(events).toEqual(['store-unavailable']);
        });
      });

      describe('hostile cookies', () => {
        it('get a fresh session, status 200, and no store call when the signature fails', async () => {
          const a = app();
          const jar = await seed(a);
          const valid = jar.value!;
          const keyInside = (stateless() ? new PrivateCodec([SECRET], 'sid') : new SignedCodec([SECRET])).open(valid)!.key;
          const foreign = (stateless() ? new PrivateCodec([OTHER_SECRET], 'sid') : new SignedCodec([OTHER_SECRET])).protect(keyInside);
          const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
          const unrelated = Array.from({ length: 200 }, (_, i) => `c${i}=v${i}`).join('; ');
          const hostile: [string, string][] = [
            ['no header', ''],
            ['empty value', 'sid='],
            ['unsigned plausible key', `sid=${keyInside}`],
            ['tampered first char', `sid=${flip(valid, 0)}`],
            ['tampered middle', `sid=${flip(valid, Math.floor(valid.length / 2))}`],
            ['tampered last char', `sid=${flip(valid, valid.length - 1)}`],
            ['appended byte', `sid=${valid}x`],
            ['truncated', `sid=${valid.slice(0, -1)}`],
            ['= padding', `sid=${valid}=`],
            ['other secret', `sid=${foreign}`],
            ['only a dot', 'sid=.'],
            ['express-session prefix', `sid=s:${valid}`],
            ['dots', 'sid=a.b.c.d'],
            ['10 kB', `sid=${'a'.repeat(10_000)}`],
            ['duplicated junk', 'sid=x; sid=y; sid=z'],
            ['%-junk', 'sid=%E0%A4%A'],
            ['%00', `sid=%00${valid}`],
            ['percent-encoded unicode', 'sid=%C3%A9%E2%9C%93'],
            ['upper-case name', `SID=${valid}`],
            ['prefix in name', `xsid=${valid}`],
            ['suffix in name', `sidx=${valid}`],
            ['percent-encoded name', `%73id=${valid}`],
            ['nameless', `=${valid}`],
            ['bare name', 'sid'],
            ['prototype names', '__proto__=x; constructor=y; toString=z; hasOwnProperty=q'],
            ['200 unrelated cookies and junk', `${unrelated}; sid=junk`],
            ['base64 of the value', `sid=${Buffer.from(valid).toString('base64')}`],
          ];
          expect(hostile.length).toBeGreaterThanOrEqual(25);
          for (const [name, cookie] of hostile) {
            const req = request(a).get('/read?key=k');
            const res = await (cookie ? req.set('Cookie', cookie) : req);
            expect({ name, status: res.status, body: res.body }).toEqual({ name, status: 200, body: { value: null, isNew: true, status: 'unchanged' } });
            expect({ name, calls: spy.count() }).toEqual({ name, calls: 0 });
            expect({ name, cookie: sessionCookie(res) }).toEqual({ name, cookie: undefined });
          }
        });

        it('raw bytes a browser could send (UTF-8, obs-text, NUL and controls) never give a 500', async () => {
          const a = app();
          const jar = await seed(a);
          const raw: [string, Buffer][] = [
            ['UTF-8', Buffer.from(`sid=é✓${jar.value}`, 'utf8')],
            ['obs-text', Buffer.concat([Buffer.from('sid='), Buffer.from([0xff, 0xfe, 0x80])])],
            ['NUL', Buffer.concat([Buffer.from('sid='), Buffer.from([0]), Buffer.from(jar.value!)])],
            ['control', Buffer.concat([Buffer.from('sid='), Buffer.from([1, 2, 0x7f])])],
          ];
          for (const [name, bytes] of raw) {
            const res = await rawGet(a, '/read?key=k', bytes);
            // Node's parser refuses NUL and controls in a header with 400 before any middleware; anything it lets through is a fresh session.
            expect({ name, ok: res.status === 200 || res.status === 400 }).toEqual({ name, ok: true });
            if (res.status === 200) expect({ name, body: JSON.parse(res.body) }).toEqual({ name, body: { value: null, isNew: true, status: 'unchanged' } });
          }
          expect(spy.count()).toBe(0);
        });

        it('a valid signature over a key the store does not know: fresh session, the key is never adopted', async () => {
          const a = app();
          const forged = stateless()
            ? new PrivateCodec([SECRET], 'sid').protect('AAAAAAAAAAAAAAAAAAAAAA')
            : new SignedCodec([SECRET]).protect('AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
          const res = await request(a).get('/set?key=a&json=1').set('Cookie', `sid=${forged}`);
          expect(res.body.isNew).toBe(true);
          const c = sessionCookie(res)!;
          expect(c.value).not.toBe(forged);
          expect(spy.methods()).toEqual(['load', 'save']);
        });

        it('__Host- lookalikes are not our cookie', async () => {
          const a = app({ name: '__Host-sid', cookie: { secure: true } });
          const jar = new Jar('__Host-sid');
          jar.take(await request(a).get('/set?key=k&json=1'));
          spy.reset();
          for (const cookie of [`__HOST-sid=${jar.value}`, `%5F%5FHost-sid=${jar.value}`, `__host-sid=${jar.value}`]) {
            const res = await request(a).get('/read?key=k').set('Cookie', cookie);
            expect({ cookie, isNew: res.body.isNew }).toEqual({ cookie, isNew: true });
          }
          expect(spy.count()).toBe(0);
          expect((await request(a).get('/read?key=k').set('Cookie', jar.header())).body.value).toBe(1);
        });

        it('several cookies of our name: the first that verifies is used; a quoted value is accepted', async () => {
          const a = app();
          const jar = await seed(a);
          expect((await request(a).get('/read?key=k').set('Cookie', `sid=junk; other=1; sid=${jar.value}`)).body.value).toBe('v');
          expect((await request(a).get('/read?key=k').set('Cookie', `sid="${jar.value}"`)).body.value).toBe('v');
        });
      });
    });
  }
}
