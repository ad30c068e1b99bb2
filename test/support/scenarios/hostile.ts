/** Hostile cookies: every kind gives a fresh session, no store call, never a 500. */
import request from 'supertest';
import { PrivateCodec, SignedCodec } from '../../../src/cookie/codec';
import { Jar, sessionCookie } from '../cookies';
import { SECRET } from '../harness';
import { rawGet } from '../raw';
import { OTHER_SECRET, type ScenarioContext } from './context';

export function hostileScenarios(t: ScenarioContext): void {
  describe('hostile cookies', () => {
    it('get a fresh session, status 200, and no store call when the signature fails', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      const valid = jar.value!;
      const keyInside = (t.stateless() ? new PrivateCodec([SECRET], 'sid') : new SignedCodec([SECRET])).open(valid)!.key;
      const foreign = (t.stateless() ? new PrivateCodec([OTHER_SECRET], 'sid') : new SignedCodec([OTHER_SECRET])).protect(keyInside);
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
        expect({ name, calls: t.spy.count() }).toEqual({ name, calls: 0 });
        expect({ name, cookie: sessionCookie(res) }).toEqual({ name, cookie: undefined });
      }
    });

    it('raw bytes a browser could send (UTF-8, obs-text, NUL and controls) never give a 500', async () => {
      const a = t.app();
      const jar = await t.seed(a);
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
      expect(t.spy.count()).toBe(0);
    });

    it('a valid signature over a key the store does not know: fresh session, the key is never adopted', async () => {
      const a = t.app();
      const forged = t.stateless()
        ? new PrivateCodec([SECRET], 'sid').protect('AAAAAAAAAAAAAAAAAAAAAA')
        : new SignedCodec([SECRET]).protect('AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      const res = await request(a).get('/set?key=a&json=1').set('Cookie', `sid=${forged}`);
      expect(res.body.isNew).toBe(true);
      const c = sessionCookie(res)!;
      expect(c.value).not.toBe(forged);
      expect(t.spy.methods()).toEqual(['load', 'save']);
    });

    it('__Host- lookalikes are not our cookie', async () => {
      const a = t.app({ name: '__Host-sid', cookie: { secure: true } });
      const jar = new Jar('__Host-sid');
      jar.take(await request(a).get('/set?key=k&json=1'));
      t.spy.reset();
      for (const cookie of [`__HOST-sid=${jar.value}`, `%5F%5FHost-sid=${jar.value}`, `__host-sid=${jar.value}`]) {
        const res = await request(a).get('/read?key=k').set('Cookie', cookie);
        expect({ cookie, isNew: res.body.isNew }).toEqual({ cookie, isNew: true });
      }
      expect(t.spy.count()).toBe(0);
      expect((await request(a).get('/read?key=k').set('Cookie', jar.header())).body.value).toBe(1);
    });

    it('several cookies of our name: the first that verifies is used; a quoted value is accepted', async () => {
      const a = t.app();
      const jar = await t.seed(a);
      expect((await request(a).get('/read?key=k').set('Cookie', `sid=junk; other=1; sid=${jar.value}`)).body.value).toBe('v');
      expect((await request(a).get('/read?key=k').set('Cookie', `sid="${jar.value}"`)).body.value).toBe('v');
    });
  });
}
