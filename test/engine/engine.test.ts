/**
 * The engine without any framework or HTTP: open → handler → finish against a spied MemoryStore.
 * Every commit status, rotation, the version retry, a session gone meanwhile, late changes,
 * 5xx, the deadline, lazy arming (onChange) and Cache-Control.
 */
import { MemoryStore, type SessionOptions, StoreTimeoutError } from 'latchkey';
import { type OpenSession, SessionEngine } from 'latchkey/adapter';
import { SECRET } from '../support/harness';
import { SpyStore } from '../support/spy-store';

function setup(options: Partial<SessionOptions> = {}) {
  const spy = new SpyStore(new MemoryStore({ sweepIntervalMs: 0 }));
  const engine = new SessionEngine({ secret: SECRET, store: spy, ...options });
  /** The Cookie header a browser would send after `setCookie`. */
  const cookieOf = (setCookie: string) => setCookie.split(';')[0]!;
  /** One request: open with `cookie`, run `handler`, finish with `status`. */
  async function request(cookie: string | undefined, handler: (open: OpenSession) => void | Promise<void>, status = 200) {
    const open = await engine.open(cookie, false);
    await handler(open);
    const headers = await engine.finish(open, { status });
    return { open, headers, cookie: headers ? cookieOf(headers.setCookie) : cookie };
  }
  async function seeded(values: Record<string, unknown> = { k: 'v' }) {
    const r = await request(undefined, ({ session }) => {
      for (const [k, v] of Object.entries(values)) session.set(k, v);
    });
    spy.reset();
    return r.cookie!;
  }
  return { spy, engine, request, seeded, cookieOf };
}

/** Resolves once the spy has seen a call of `method` settle (bounded). */
async function settled(spy: SpyStore, count: number): Promise<void> {
  const until = Date.now() + 2000;
  while (spy.count() < count) {
    if (Date.now() > until) throw new Error(`expected ${count} store calls, saw ${spy.methods().join(', ')}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setImmediate(r));
}

describe('SessionEngine', () => {
  it('no cookie: open is synchronous, finish is null at once, no store call', () => {
    const { spy, engine } = setup();
    const open = engine.open(undefined, false);
    expect(open).not.toBeInstanceOf(Promise);
    expect(engine.finish(open as OpenSession, { status: 200 })).toBeNull();
    expect(spy.count()).toBe(0);
  });

  it('new → save, Set-Cookie with Max-Age and Cache-Control no-store', async () => {
    const { spy, request } = setup();
    const { headers } = await request(undefined, ({ session }) => session.set('a', 1));
    expect(spy.methods()).toEqual(['save']);
    expect(headers!.setCookie).toMatch(/^sid=[^;]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(headers!.set['Cache-Control']).toBe('no-store');
  });

  it('unchanged read → one load, finish null synchronously', async () => {
    const { spy, engine, seeded } = setup();
    const cookie = await seeded();
    const open = await engine.open(cookie, false);
    expect(open.session.get('k')).toBe('v');
    expect(engine.finish(open, { status: 200 })).toBeNull();
    expect(spy.methods()).toEqual(['load']);
  });

  it('changed → one update that rotates to the key the store named, with the grace', async () => {
    const { spy, request, seeded } = setup({ rotationGraceMs: 1234 });
    const cookie = await seeded();
    const { headers } = await request(cookie, ({ session }) => session.set('b', 2));
    expect(spy.methods()).toEqual(['load', 'update']);
    const change = spy.calls[1]!.change!;
    expect(change).toMatchObject({ graceMs: 1234, expectedVersion: 1 });
    expect([...change.set]).toEqual([['b', '2']]);
    expect(change.rotateTo!.split('.')[0]).toBe(spy.calls[1]!.key!.split('.')[0]);
    expect(headers!.setCookie).toContain(change.rotateTo!.slice(0, 16));
  });

  it('renewed → save then delete; purged → delete and an expiring cookie; emptied → delete', async () => {
    const { spy, request, seeded } = setup();
    let cookie = await seeded();
    const renewed = await request(cookie, ({ session }) => session.renew());
    expect(spy.methods()).toEqual(['load', 'save', 'delete']);
    expect(renewed.cookie).not.toBe(cookie);
    spy.reset();
    cookie = renewed.cookie!;
    const purged = await request(cookie, ({ session }) => session.purge());
    expect(spy.methods()).toEqual(['load', 'delete']);
    expect(purged.headers!.setCookie).toMatch(/^sid=; Max-Age=0; Expires=Thu, 01 Jan 1970/);
    const s2 = setup();
    const c2 = await s2.seeded({ a: 1 });
    const emptied = await s2.request(c2, ({ session }) => session.remove('a'));
    expect(s2.spy.methods()).toEqual(['load', 'delete']);
    expect(emptied.headers!.setCookie).toContain('Max-Age=0');
  });

  it('a 5xx commits nothing, and changes made after it are not saved either', async () => {
    const { spy, engine, seeded } = setup();
    const cookie = await seeded();
    const open = await engine.open(cookie, false);
    open.session.set('lost', 1);
    expect(engine.finish(open, { status: 500 })).toBeNull();
    open.session.set('later', 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(spy.methods()).toEqual(['load']);
  });

  it('two requests rotating from one key: the second reloads after the conflict, keeps both changes and sends no cookie', async () => {
    const { spy, engine, seeded, request } = setup();
    const cookie = await seeded();
    const a = await engine.open(cookie, false);
    const b = await engine.open(cookie, false);
    a.session.set('a', 1);
    b.session.set('b', 2);
    const first = await engine.finish(a, { status: 200 });
    const second = await engine.finish(b, { status: 200 });
    expect(first).not.toBeNull();
    expect(second).toBeNull(); // its key was rotated out: the first response carries the current value
    expect(spy.methods()).toEqual(['load', 'load', 'update', 'update', 'load', 'update']);
    const after = await request(setup().cookieOf(first!.setCookie), () => {});
    expect(Object.fromEntries(after.open.session.entries())).toEqual({ k: 'v', a: 1, b: 2 });
  });

  it('a session purged while a request ran is never brought back; values that request set start a new one', async () => {
    const { spy, engine, seeded } = setup();
    const cookie = await seeded();
    const reader = await engine.open(cookie, false);
    const writer = await engine.open(cookie, false);
    const purger = await engine.open(cookie, false);
    purger.session.purge();
    await engine.finish(purger, { status: 200 });
    reader.session.get('k');
    expect(engine.finish(reader, { status: 200 })).toBeNull();
    writer.session.set('x', 1);
    const headers = await engine.finish(writer, { status: 200 });
    expect(spy.methods()).toEqual(['load', 'load', 'load', 'delete', 'update', 'save']);
    const fresh = await engine.open(setup().cookieOf(headers!.setCookie), false);
    expect(Object.fromEntries(fresh.session.entries())).toEqual({ x: 1 });
    expect((await engine.open(cookie, false)).session.isNew).toBe(true);
  });

  it('changes after finish, or after the head went out unfinished, are saved under the held key without rotation', async () => {
    const { spy, engine, seeded } = setup();
    const cookie = await seeded();
    const open = await engine.open(cookie, false);
    expect(engine.finish(open, { status: 200 })).toBeNull();
    open.session.set('late', 1);
    await settled(spy, 2);
    expect(spy.methods()).toEqual(['load', 'update']);
    expect(spy.calls[1]!.change!.rotateTo).toBeUndefined();
    expect(spy.calls[1]!.key).toBe(spy.calls[0]!.key);
    spy.reset();
    const written = await engine.open(cookie, false);
    written.session.set('raw', 1);
    expect(engine.finish(written, { status: 200, headSent: true })).toBeNull();
    await settled(spy, 2);
    expect(spy.methods()).toEqual(['load', 'update']);
    expect(spy.calls[1]!.change!.rotateTo).toBeUndefined();
  });

  it('a store that never answers fails the call at storeTimeoutMs with StoreTimeoutError (503)', async () => {
    const { spy, engine, seeded } = setup({ storeTimeoutMs: 100 });
    const cookie = await seeded();
    spy.hang.add('load');
    const started = Date.now();
    await expect(engine.open(cookie, false)).rejects.toBeInstanceOf(StoreTimeoutError);
    expect(Date.now() - started).toBeLessThan(1000);
    spy.hang.clear();
    spy.hang.add('update');
    const open = await engine.open(cookie, false);
    open.session.set('b', 1);
    await expect(engine.finish(open, { status: 200 })).rejects.toMatchObject({ code: 'LATCHKEY_STORE_TIMEOUT', status: 503 });
  });

  it('onChange: told of changes and not of reads, and at open when a commit is already due', async () => {
    let offset = 0;
    const { engine, seeded } = setup({ ttl: 100, now: () => Date.now() + offset });
    const cookie = await seeded();
    const calls: string[] = [];
    const open = await engine.open(cookie, false, () => calls.push('change'));
    expect(calls).toEqual([]);
    open.session.get('k');
    expect(calls).toEqual([]);
    open.session.set('a', 1);
    open.session.set('b', 1);
    expect(calls).toEqual(['change', 'change']); // the adapter arms once; the engine tells every change
    offset = 60_000; // past half the TTL: the sliding extension is due on load
    const due = await engine.open(cookie, false, () => calls.push('due'));
    expect(calls.at(-1)).toBe('due');
    expect(await engine.finish(due, { status: 200 })).not.toBeNull();
  });

  it('Cache-Control: kept when it already says private or no-store, else no-store', async () => {
    const { engine } = setup();
    for (const [given, expected] of [
      ['private, max-age=60', undefined],
      [['public', 'no-store'], undefined],
      ['public, max-age=600', 'no-store'],
      [undefined, 'no-store'],
    ] as const) {
      const open = engine.open(undefined, false) as OpenSession;
      open.session.set('a', 1);
      expect((await engine.finish(open, { status: 200, cacheControl: given }))!.set['Cache-Control']).toBe(expected);
    }
  });
});
