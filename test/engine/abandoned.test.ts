/**
 * A store write we gave up on must never cost the user their session. Stores that answer a
 * rotating update with a timeout but did something else (applied it, applied it twice, applied it
 * later, did not apply it): through the engine, and over HTTP on every framework. After the
 * rotation grace has passed, the cookie the 503 carried still opens the session, and no value
 * the client saw acknowledged is lost.
 */
import request from 'supertest';
import { MemoryStore, type SessionChange, StoreTimeoutError } from 'latchkey';
import { SessionEngine } from 'latchkey/adapter';
import { DelegatingStore } from '../support/delegating-store';
import { sessionCookie } from '../support/cookies';
import { frameworks, SECRET } from '../support/harness';

type Fate = 'applied' | 'applied twice' | 'applied later' | 'not applied';

/** Answers every update with a timeout; what it did with the write depends on `fate`. */
class GivesUp extends DelegatingStore {
  fate: Fate | null = null;
  late: Promise<unknown> = Promise.resolve();
  override async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    const fate = this.fate;
    if (fate === null) return this.inner.update(key, change, ttl);
    if (fate === 'applied' || fate === 'applied twice') await this.inner.update(key, change, ttl);
    if (fate === 'applied twice') await this.inner.update(key, change, ttl).catch(() => null); // a resend: its version moved
    if (fate === 'applied later') this.late = new Promise((r) => setTimeout(r, 30)).then(() => this.inner.update(key, change, ttl));
    throw new StoreTimeoutError('update', 1);
  }
}

const GRACE = 40;
const fates: Fate[] = ['applied', 'applied twice', 'applied later', 'not applied'];
const after = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(fates)('a rotating write answered with a timeout but %s', (fate) => {
  it('through the engine: the 503 carries a cookie that opens the session after the grace, with every acknowledged value', async () => {
    const store = new GivesUp(new MemoryStore({ sweepIntervalMs: 0 }));
    const engine = new SessionEngine({ secret: SECRET, store, rotationGraceMs: GRACE });
    const cookieOf = (setCookie: string) => setCookie.split(';')[0]!;
    const first = engine.open(undefined, false) as Awaited<ReturnType<typeof engine.open>>;
    first.session.set('n', 1);
    let cookie = cookieOf((await engine.finish(first, { status: 200 }))!.setCookie);
    const acked = await engine.open(cookie, false);
    acked.session.set('n', 2);
    cookie = cookieOf((await engine.finish(acked, { status: 200 }))!.setCookie); // n = 2 acknowledged
    store.fate = fate;
    const abandoned = await engine.open(cookie, false);
    abandoned.session.set('n', 3);
    const err = (await engine.finish(abandoned, { status: 200 })!.catch((e: unknown) => e)) as StoreTimeoutError;
    expect(err).toBeInstanceOf(StoreTimeoutError);
    expect(err.headers!['Set-Cookie']).toMatch(/^sid=[^;]*~/);
    store.fate = null;
    await store.late;
    await after(GRACE * 3); // the previous key's grace is over
    const next = await engine.open(cookieOf(err.headers!['Set-Cookie']!), false);
    expect(next.session.isNew).toBe(false);
    expect(next.session.get('n')).toBe(fate === 'not applied' ? 2 : 3);
    // The next change commits normally and hands out a cookie that keeps working too.
    next.session.set('m', 1);
    const again = await engine.finish(next, { status: 200 });
    await after(GRACE * 3);
    const later = await engine.open(cookieOf(again!.setCookie), false);
    expect(Object.fromEntries(later.session.entries())).toEqual({ n: fate === 'not applied' ? 2 : 3, m: 1 });
  });
});

describe.each(frameworks.map((fw) => [fw.name, fw] as const))('over HTTP on %s', (_name, fw) => {
  it.each(fates)('a rotating write answered with a timeout but %s: the next requests, after the grace, still have the session', async (fate) => {
    const store = new GivesUp(new MemoryStore({ sweepIntervalMs: 0 }));
    const app = fw.app({ secret: SECRET, store, rotationGraceMs: GRACE });
    let cookie = `sid=${sessionCookie(await request(app).get('/incr?key=n'))!.value}`;
    const acked = await request(app).get('/incr?key=n').set('Cookie', cookie);
    expect(acked.body).toBe(2);
    cookie = `sid=${sessionCookie(acked)!.value}`;
    store.fate = fate;
    const failed = await request(app).get('/incr?key=n').set('Cookie', cookie);
    expect(failed.status).toBe(503);
    // The browser keeps the cookie a 503 sets, like any other.
    const carried = sessionCookie(failed);
    expect(carried?.value).toContain('~');
    expect(failed.headers['cache-control']).toBe('no-store');
    cookie = `sid=${carried!.value}`;
    store.fate = null;
    await store.late;
    await after(GRACE * 3);
    const next = await request(app).get('/incr?key=n').set('Cookie', cookie);
    expect(next.status).toBe(200);
    expect(next.body).toBe(fate === 'not applied' ? 3 : 4); // never below the acknowledged 2 + this one
    cookie = `sid=${sessionCookie(next)!.value}`;
    await after(GRACE * 3);
    expect((await request(app).get('/read?key=n').set('Cookie', cookie)).body).toMatchObject({ isNew: false, value: next.body });
  });
});
