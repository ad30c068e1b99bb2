/**
 * CookieStore: the stateless store. The conformance kit with `invalidation: false`, the
 * decoder against garbage, and through HTTP: sealed by default, the 4096-byte limit, secret
 * rotation by key id, the expiry enforced on the server, tampering at every byte.
 */
import express5 from 'express';
import request from 'supertest';
import type { RequestListener } from 'node:http';
import { CookieStore, type SessionChange, type SessionStore, VersionConflictError } from 'latchkey';
import { session } from 'latchkey/express';
import { ConformanceError, runStoreConformance } from 'latchkey/testing';
import { PrivateCodec, SignedCodec } from '../../src/cookie/codec';
import { Jar, sessionCookie } from '../support/cookies';
import { errorBody, frameworks, handle, OLD_SECRET, SECRET } from '../support/harness';
import { DelegatingStore } from '../support/delegating-store';
import { SpyStore } from '../support/spy-store';
import { change as plainChange, state } from '../support/state';

const change = (set: Record<string, unknown>, removed: string[] = [], extra: Partial<SessionChange> = {}): SessionChange =>
  plainChange(set, removed, { graceMs: 10_000, ...extra });
const decodeKey = (key: string): unknown => JSON.parse(Buffer.from(key, 'base64url').toString('utf8'));
const sealed = new PrivateCodec([SECRET], 'sid');
/** The store key inside a cookie value sealed under SECRET. */
const keyOf = (value: string) => sealed.open(value)?.key;

describe('CookieStore: store contract', () => {
  it('the kit still fails a broken stateless store under invalidation: false', async () => {
    /** Delegates to a CookieStore; each subclass breaks one rule. */
    class Wrapped extends DelegatingStore {
      constructor() {
        super(new CookieStore());
      }
    }
    class Immortal extends Wrapped {
      override save(s: ReadonlyMap<string, string>, ttl: number) {
        return this.inner.save(s, ttl < 5 ? 3600 : ttl);
      }
    }
    class VersionBlind extends Wrapped {
      override update(key: string, c: SessionChange, ttl: number) {
        return this.inner.update(key, { ...c, expectedVersion: undefined }, ttl);
      }
    }
    class KeepsFirstKey extends Wrapped {
      override async update(key: string, c: SessionChange, ttl: number) {
        await this.inner.update(key, c, ttl);
        return key; // "updated", but the change is nowhere
      }
    }
    for (const [make, rule] of [
      [() => new Immortal(), 'expire after their TTL'],
      [() => new VersionBlind(), 'honours an expected version'],
      [() => new KeepsFirstKey(), 'update applies changes key by key'],
    ] as const) {
      const run = runStoreConformance(make, { invalidation: false });
      await expect(run).rejects.toBeInstanceOf(ConformanceError);
      await expect(runStoreConformance(make, { invalidation: false })).rejects.toThrow(rule);
    }
  });

  it('the key is base64url of compact JSON holding format, version, createdAt, expiry and the pairs', async () => {
    const store = new CookieStore({ now: () => 1_700_000_000_000 });
    const key = await store.save(state({ user: 'ada', cart: ['a', 'b'] }), 60, { createdAt: 1_699_999_000_000 });
    expect(key).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeKey(key)).toEqual([1, 1, 1_699_999_000_000, 1_700_000_060_000, 'user', 'ada', 'cart', ['a', 'b']]);
    // Values are embedded as JSON, not as escaped strings of JSON.
    expect(Buffer.from(key, 'base64url').toString()).toBe('[1,1,1699999000000,1700000060000,"user","ada","cart",["a","b"]]');
  });

  it('every update returns a new key with the next version; the expected version is honoured', async () => {
    const store = new CookieStore();
    const k1 = await store.save(state({ a: 1 }), 60);
    const k2 = await store.update(k1, change({ a: 1 }), 60);
    expect(k2).not.toBe(k1); // even an update that changes no value and asks for no rotation
    expect((await store.load(k2!))?.version).toBe(2);
    const k3 = await store.update(k2!, change({ b: 2 }, ['a'], { expectedVersion: 2 }), 60);
    expect([...(await store.load(k3!))!.state]).toEqual([['b', '2']]);
    const conflict = store.update(k3!, change({ c: 3 }, [], { expectedVersion: 2 }), 60);
    await expect(conflict).rejects.toBeInstanceOf(VersionConflictError);
    await expect(store.update(k3!, change({ c: 3 }, [], { expectedVersion: 2 }), 60)).rejects.toMatchObject({ actualVersion: 3, expectedVersion: 2 });
  });

  it('updateTtl returns a new key carrying the extended expiry and the same state and version', async () => {
    let now = 1_700_000_000_000;
    const store = new CookieStore({ now: () => now });
    const key = await store.save(state({ a: 1 }), 60);
    now += 30_000;
    const next = await store.updateTtl(key, 60);
    expect(next).not.toBe(key);
    expect(await store.load(next!)).toEqual({ state: state({ a: 1 }), version: 1, createdAt: 1_700_000_000_000, expiresAt: now + 60_000 });
    expect((await store.load(key))?.expiresAt).toBe(1_700_000_060_000); // the old key keeps its own expiry
  });

  it('the expiry inside is enforced: load, update and updateTtl refuse an expired key', async () => {
    let now = 1_700_000_000_000;
    const store = new CookieStore({ now: () => now });
    const key = await store.save(state({ a: 1 }), 10);
    now += 9_999;
    expect(await store.load(key)).not.toBeNull();
    now += 1;
    expect(await store.load(key)).toBeNull();
    expect(await store.update(key, change({ a: 2 }), 10)).toBeNull();
    expect(await store.updateTtl(key, 10)).toBeNull();
  });

  it('delete is a no-op: a copied key stays valid until its expiry (documented)', async () => {
    const store = new CookieStore();
    const key = await store.save(state({ a: 1 }), 60);
    await store.delete(key);
    expect(await store.load(key)).not.toBeNull();
  });

  it('__proto__ and constructor are plain data, at the top and nested', async () => {
    const store = new CookieStore();
    const s = new Map([
      ['__proto__', '{"admin":true}'],
      ['constructor', '{"__proto__":{"polluted":1}}'],
      ['toString', '1'],
    ]);
    const loaded = await store.load(await store.save(s, 60));
    expect([...loaded!.state]).toEqual([...s]);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a value that is not JSON text is a serialization error, never a corrupt key', async () => {
    const store = new CookieStore();
    await expect(store.save(new Map([['a', 'not json']]), 60)).rejects.toMatchObject({ name: 'SaveError', kind: 'serialization', message: expect.stringContaining('"a"') });
    const key = await store.save(state({ a: 1 }), 60);
    const bad: SessionChange = { set: new Map([['b', '{']]), removed: new Set(), graceMs: 0 };
    await expect(store.update(key, bad, 60)).rejects.toMatchObject({ name: 'UpdateError', kind: 'serialization' });
  });

  it('load never throws on garbage: malformed or structurally wrong keys are null', async () => {
    const store = new CookieStore();
    const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
    const future = Date.now() + 60_000;
    const valid = await store.save(state({ a: 1 }), 60);
    const garbage = [
      '',
      'nope',
      '!!!!',
      'a.b',
      'x'.repeat(5000),
      b64('not json'),
      b64('{"a":1}'),
      b64('null'),
      b64('[]'),
      b64(`[2,1,0,${future}]`), // unknown format
      b64(`[1,1,0,${future},"a"]`), // odd length
      b64(`[1,1,0,${future},1,2]`), // key not a string
      b64(`[1,1,0,${future},"a",1,"a",2]`), // duplicate key
      b64(`[1,-1,0,${future}]`),
      b64(`[1,1.5,0,${future}]`),
      b64(`[1,"1",0,${future}]`),
      b64(`[1,1,"0",${future}]`),
      b64('[1,1,0,"never"]'),
      b64('[1,1,0,1e999]'),
      Buffer.from([0x5b, 0x31, 0xff, 0xfe]).toString('base64url'), // not UTF-8
      valid.slice(0, -3),
      `${valid}A`,
    ];
    for (const key of garbage) expect({ key, loaded: await store.load(key) }).toEqual({ key, loaded: null });
    // Every truncation of a valid key, and random base64url text: null, never a throw.
    for (let i = 0; i < valid.length; i++) expect({ i, loaded: await store.load(valid.slice(0, i)) }).toEqual({ i, loaded: null });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let n = 0; n < 2000; n++) {
      let key = '';
      const len = 1 + Math.floor(Math.random() * 80);
      for (let i = 0; i < len; i++) key += alphabet[Math.floor(Math.random() * alphabet.length)];
      expect(await store.load(key)).toBeNull();
    }
    // An empty state is a valid key.
    expect(await store.load(b64(`[1,1,0,${future}]`))).toEqual({ state: new Map(), version: 1, createdAt: 0, expiresAt: future });
  });

  it("is stateless, so the middleware seals by default ('private')", () => {
    expect(new CookieStore().stateless).toBe(true);
  });
});

for (const fw of frameworks) {
  describe(`CookieStore through HTTP on ${fw.name}`, () => {
    let spy: SpyStore;
    beforeEach(() => {
      spy = new SpyStore(new CookieStore());
    });
    const app = (options: Record<string, unknown> = {}): RequestListener => fw.app({ secret: SECRET, store: spy, ...options });

    async function seed(listener: RequestListener, values: Record<string, unknown>): Promise<Jar> {
      const jar = new Jar();
      for (const [key, value] of Object.entries(values)) {
        jar.take(await request(listener).get(`/set?key=${key}&json=${encodeURIComponent(JSON.stringify(value))}`).set('Cookie', jar.header()));
      }
      spy.reset();
      return jar;
    }

    it('the cookie is sealed (AES-256-GCM) by default: the state is not readable in it', async () => {
      const res = await request(app()).get(`/set?key=user&json=${encodeURIComponent('"ada-lovelace"')}`);
      const value = sessionCookie(res)!.value;
      expect(Buffer.from(value, 'base64url').toString('latin1')).not.toContain('ada');
      expect(value).not.toContain(Buffer.from('ada-lovelace').toString('base64url').slice(0, 8));
      expect(decodeKey(keyOf(value)!)).toEqual([1, 1, expect.any(Number), expect.any(Number), 'user', 'ada-lovelace']);
    });

    it("contentSecurity 'signed' may be chosen: readable, and tamper-proof", async () => {
      const a = app({ contentSecurity: 'signed' });
      const jar = await seed(a, { user: 'ada' });
      const key = new SignedCodec([SECRET]).open(jar.value!)!.key;
      expect(decodeKey(key)).toEqual([1, 1, expect.any(Number), expect.any(Number), 'user', 'ada']);
      // Rewrite the readable state and keep the signature: refused.
      const forgedKey = Buffer.from(JSON.stringify([1, 1, Date.now(), Date.now() + 60_000, 'user', 'admin'])).toString('base64url');
      const forged = `${forgedKey}${jar.value!.slice(key.length)}`;
      const res = await request(a).get('/read?key=user').set('Cookie', `sid=${forged}`);
      expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
      for (let i = 0; i < jar.value!.length; i++) {
        const v = jar.value!;
        const flipped = v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1);
        const r = await request(a).get('/read?key=user').set('Cookie', `sid=${flipped}`);
        expect({ i, status: r.status, isNew: r.body.isNew, cookie: sessionCookie(r) }).toEqual({ i, status: 200, isNew: true, cookie: undefined });
      }
      expect(spy.count()).toBe(0);
    });

    it('a state too big for 4096 bytes: 500 through the error path, no Set-Cookie; the old cookie still works', async () => {
      const a = app();
      const big = encodeURIComponent(JSON.stringify('x'.repeat(5000)));
      const res = await request(a).get(`/set?key=big&json=${big}`);
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: 'LATCHKEY_SAVE_SERIALIZATION' });
      expect(res.headers['set-cookie']).toBeUndefined();
      // An existing session that grows past the limit: same, and it keeps its last good cookie.
      const jar = await seed(a, { k: 'v' });
      const grown = await request(a).get(`/set?key=big&json=${big}`).set('Cookie', jar.header());
      expect(grown.status).toBe(500);
      expect(grown.headers['set-cookie']).toBeUndefined();
      expect((await request(a).get('/read?key=k').set('Cookie', jar.header())).body).toEqual({ value: 'v', isNew: false, status: 'unchanged' });
    });

    it('a cookie sealed under an older secret opens and is re-sealed under the newest key id on that response', async () => {
      const before = await seed(app({ secret: OLD_SECRET }), { k: 'v' });
      const oldSeal = Buffer.from(before.value!, 'base64url');
      const rotated = app({ secret: [SECRET, OLD_SECRET] });
      const res = await request(rotated).get('/read?key=k').set('Cookie', before.header());
      expect(res.body).toEqual({ value: 'v', isNew: false, status: 'unchanged' });
      expect(spy.methods()).toEqual(['load']); // re-sealed without a store write
      const c = sessionCookie(res)!;
      const newSeal = Buffer.from(c.value, 'base64url');
      // The seal starts with the key id: the new one is SECRET's, as a fresh seal under SECRET has it.
      const freshUnderSecret = Buffer.from(sealed.protect('x'), 'base64url');
      expect(newSeal.subarray(0, 4)).toEqual(freshUnderSecret.subarray(0, 4));
      expect(oldSeal.subarray(0, 4)).not.toEqual(newSeal.subarray(0, 4));
      // Same state, same expiry: only the protection changed.
      expect(keyOf(c.value)).toBe(new PrivateCodec([OLD_SECRET], 'sid').open(before.value!)!.key);
      expect(Number(c.attributes['max-age'])).toBeGreaterThan(86_390);
      const only = app({ secret: SECRET });
      expect((await request(only).get('/read?key=k').set('Cookie', `sid=${c.value}`)).body.value).toBe('v');
      expect((await request(only).get('/read?key=k').set('Cookie', before.header())).body.isNew).toBe(true);
    });

    it('an expired seal is refused even when the browser still sends it (store clock)', async () => {
      let offset = 0;
      spy = new SpyStore(new CookieStore({ now: () => Date.now() + offset }));
      const a = app({ ttl: 60 });
      const jar = await seed(a, { k: 'v' });
      offset = 59_000;
      expect((await request(a).get('/read?key=k').set('Cookie', jar.header())).body.value).toBe('v');
      offset = 60_001;
      spy.reset();
      const res = await request(a).get('/read?key=k').set('Cookie', jar.header());
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ value: null, isNew: true, status: 'unchanged' });
      expect(spy.methods()).toEqual(['load']);
      expect(sessionCookie(res)).toBeUndefined();
      // Writing to it starts a fresh session that carries nothing of the old one.
      const fresh = await request(a).get('/set?key=n&json=1').set('Cookie', jar.header());
      expect(spy.methods()).toEqual(['load', 'load', 'save']);
      expect(decodeKey(keyOf(sessionCookie(fresh)!.value)!)).toEqual([1, 1, expect.any(Number), expect.any(Number), 'n', 1]);
    });

    it('an expired seal is refused in real time too (ttl 1 s, replayed after 1.2 s)', async () => {
      const a = app({ ttl: 1 });
      const jar = await seed(a, { k: 'v' });
      expect(sessionCookie(await request(a).get('/read?key=k').set('Cookie', jar.header()))).toBeUndefined();
      await new Promise((r) => setTimeout(r, 1_200));
      expect((await request(a).get('/read?key=k').set('Cookie', jar.header())).body).toEqual({ value: null, isNew: true, status: 'unchanged' });
    });

    it('a seal with one byte flipped, at every position, gives a fresh session and never a 500', async () => {
      const a = app();
      const jar = await seed(a, { user: 'ada', cart: [1, 2] });
      const seal = Buffer.from(jar.value!, 'base64url');
      expect(seal.toString('base64url')).toBe(jar.value);
      for (let i = 0; i < seal.length; i++) {
        for (const mask of [0x01, 0x80]) {
          const t = Buffer.from(seal);
          t[i] = t[i]! ^ mask;
          const res = await request(a).get('/read?key=user').set('Cookie', `sid=${t.toString('base64url')}`);
          expect({ i, mask, status: res.status, body: res.body, cookie: sessionCookie(res) }).toEqual({
            i,
            mask,
            status: 200,
            body: { value: null, isNew: true, status: 'unchanged' },
            cookie: undefined,
          });
        }
      }
      // Every character of the text form, too (base64 leaves slack bits in the last character).
      const v = jar.value!;
      for (let i = 0; i < v.length; i++) {
        for (const other of [v[i] === 'A' ? 'B' : 'A', v[i] === '_' ? '-' : '_']) {
          const res = await request(a).get('/read?key=user').set('Cookie', `sid=${v.slice(0, i)}${other}${v.slice(i + 1)}`);
          expect({ i, status: res.status, isNew: res.body.isNew }).toEqual({ i, status: 200, isNew: true });
        }
      }
      expect(spy.count()).toBe(0); // nothing tampered reaches the store
      expect((await request(a).get('/read?key=user').set('Cookie', jar.header())).body.value).toBe('ada');
    }, 90_000); // a request per byte of the seal: slow on a loaded machine

    it('only the exact text of a seal opens: other last characters and an appended one are refused, for every length mod 3', async () => {
      // Base64 leaves 2 or 4 slack bits in the last character unless the byte length is a multiple of 3,
      // and ignores a dangling character: a lenient decoder would open these variants as the same seal.
      const a = app();
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const residues = new Set<number>();
      for (let extra = 0; residues.size < 3 && extra < 12; extra++) {
        const jar = await seed(a, { user: `ada${'x'.repeat(extra)}` });
        const v = jar.value!;
        const residue = Buffer.from(v, 'base64url').length % 3;
        if (residues.has(residue)) continue;
        residues.add(residue);
        const variants = [...alphabet].filter((ch) => ch !== v[v.length - 1]).map((ch) => v.slice(0, -1) + ch);
        variants.push(`${v}A`, `${v}_`);
        for (const variant of variants) {
          const res = await request(a).get('/read?key=user').set('Cookie', `sid=${variant}`);
          expect({ residue, variant, status: res.status, isNew: res.body.isNew }).toEqual({ residue, variant, status: 200, isNew: true });
        }
      }
      expect(residues.size).toBe(3);
      expect(spy.count()).toBe(0);
    });

    it('purge() clears the cookie; a copy taken before stays valid until its expiry (cannot be revoked)', async () => {
      const a = app();
      const jar = await seed(a, { k: 'v' });
      const copy = jar.header();
      const res = await request(a).get('/purge').set('Cookie', copy);
      expect(sessionCookie(res)!.attributes['max-age']).toBe('0');
      expect((await request(a).get('/read?key=k').set('Cookie', copy)).body.value).toBe('v');
    });

    it('renew() hands out a new seal for the same state; updateTtl a seal carrying the later expiry', async () => {
      let offset = 0;
      spy = new SpyStore(new CookieStore({ now: () => Date.now() + offset }));
      const a = app({ ttl: 100, ttlExtension: 'on-every-request', now: () => Date.now() + offset });
      const jar = await seed(a, { k: 'v' });
      const before = decodeKey(keyOf(jar.value!)!) as number[];
      offset = 30_000;
      const res = await request(a).get('/read?key=k').set('Cookie', jar.header());
      expect(spy.methods()).toEqual(['load', 'updateTtl']);
      const after = decodeKey(keyOf(sessionCookie(res)!.value)!) as number[];
      expect(after[3]! - before[3]!).toBeGreaterThanOrEqual(29_000);
      expect(after.slice(4)).toEqual(before.slice(4));
      jar.take(res);
      const renewed = await request(a).get('/login?user=ada').set('Cookie', jar.header());
      const c = sessionCookie(renewed)!;
      expect(c.value).not.toBe(jar.value);
      expect(decodeKey(keyOf(c.value)!)).toEqual([1, 1, before[2], expect.any(Number), 'k', 'v', 'user', 'ada']);
    });
  });
}

describe('CookieStore: the size error names the size (Express error handler)', () => {
  it('the error reaching next(err) is a SaveError of kind serialization whose message gives the bytes', async () => {
    const errors: unknown[] = [];
    const app = express5();
    app.use(session({ secret: SECRET, store: new CookieStore() }));
    app.use((req, res, next) => {
      handle(req.session, req.path, new URL(req.originalUrl, 'http://x').searchParams).then((r) => res.status(r.status).json(r.body), next);
    });
    app.use((err: unknown, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) => {
      errors.push(err);
      res.status(errorBody(err).status).json({ message: (err as Error).message });
    });
    const res = await request(app).get(`/set?key=big&json=${encodeURIComponent(JSON.stringify('x'.repeat(5000)))}`);
    expect(res.status).toBe(500);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.body.message).toMatch(/session cookie would be (\d{4,}) bytes \(name \+ value\); browsers keep at most 4096/);
    expect(Number(/would be (\d+) bytes/.exec(res.body.message)![1])).toBeGreaterThan(4096);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'SaveError', kind: 'serialization', code: 'LATCHKEY_SAVE_SERIALIZATION', status: 500 });
    // Just under the limit still works: about 2 kB of JSON state fits once sealed.
    const fits = await request(app).get(`/set?key=big&json=${encodeURIComponent(JSON.stringify('x'.repeat(2000)))}`);
    expect(fits.status).toBe(200);
    expect(sessionCookie(fits)!.value.length).toBeLessThanOrEqual(4096 - 'sid='.length);
  });
});
