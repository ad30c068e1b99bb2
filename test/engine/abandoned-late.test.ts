/**
 * A write we gave up on that the store applies only after the client's next writes were
 * acknowledged: what ioredis does with its defaults when another app instance reconnected first
 * (it resends the unanswered commands of the connection it lost), or what a Cluster's retry on
 * another node does. The late write must not undo an acknowledged one.
 *
 * Every update carries the version it was made from, so a late one meets a version conflict and
 * changes nothing, whether it rotates (the default) or not (`rotation: 'on-renew'`, or a request on a
 * previous key inside its grace); concurrent requests still merge: a conflict reloads and reapplies.
 */
import { MemoryStore, type SessionChange, StoreTimeoutError } from 'latchkey';
import { SessionEngine, type SessionOptions } from 'latchkey/adapter';
import { DelegatingStore } from '../support/delegating-store';
import { SECRET } from '../support/harness';

/** Answers the next update with a timeout and keeps it, to apply when `release` is called. */
class HoldsOne extends DelegatingStore {
  holdNext = false;
  private held: (() => Promise<unknown>) | undefined;
  override async update(key: string, change: SessionChange, ttl: number): Promise<string | null> {
    if (!this.holdNext) return this.inner.update(key, change, ttl);
    this.holdNext = false;
    this.held = () => this.inner.update(key, change, ttl).catch(() => null); // a conflict: refused, nothing written
    throw new StoreTimeoutError('update', 1);
  }
  release(): Promise<unknown> {
    return this.held?.() ?? Promise.resolve();
  }
}

const cookieOf = (setCookie: string) => setCookie.split(';')[0]!;

/** Runs the story: n = 2 acknowledged, n = 3 given up on, then 3 and 4 acknowledged, then the late write lands. */
async function story(options: Partial<SessionOptions>): Promise<unknown> {
  const store = new HoldsOne(new MemoryStore({ sweepIntervalMs: 0 }));
  const engine = new SessionEngine({ secret: SECRET, store, rotationGraceMs: 60_000, ...options });
  let cookie: string | undefined;
  const incr = async (): Promise<number> => {
    const open = await engine.open(cookie, false);
    const n = ((open.session.get('n') as number | undefined) ?? 0) + 1;
    open.session.set('n', n);
    const headers = await engine.finish(open, { status: 200 })!.catch((err: { headers?: Record<string, string> }) => {
      if (err.headers?.['Set-Cookie']) cookie = cookieOf(err.headers['Set-Cookie']); // the browser keeps a 503's cookie
      throw err;
    });
    if (headers) cookie = cookieOf(headers.setCookie);
    return n;
  };
  await incr();
  expect(await incr()).toBe(2);
  store.holdNext = true;
  await expect(incr()).rejects.toBeInstanceOf(StoreTimeoutError); // n = 3, given up on
  expect(await incr()).toBe(3);
  expect(await incr()).toBe(4); // acknowledged
  await store.release(); // the write given up on lands now
  const last = await engine.open(cookie, false);
  return last.session.get('n');
}

describe('a write given up on that lands after the next acknowledged writes', () => {
  it("rotation 'on-update' (the default): the late rotating update meets a version conflict; the acknowledged 4 stays", async () => {
    expect(await story({})).toBe(4);
  });

  it("rotation 'on-renew': the late update meets a version conflict too; the acknowledged 4 stays", async () => {
    expect(await story({ rotation: 'on-renew' })).toBe(4);
  });
});
