/**
 * The rules of the store contract (`types.ts`), one named case each, run by `runStoreConformance`
 * (`conformance.ts`). Each case gets a fresh store and uses only the SessionStore interface.
 */
import { randomBytes } from 'node:crypto';
import { VersionConflictError } from '../errors';
import type { SessionChange, SessionSettings, SessionStore } from './types';

/** One rule's check: throws a CaseFailure (through `fail`) when the store breaks it. */
export type Case = (store: SessionStore, ctx: { invalidation: boolean }) => Promise<void>;

/** A rule the store broke, as opposed to an error the store threw. */
export class CaseFailure extends Error {}
function fail(detail: string): never {
  throw new CaseFailure(detail);
}
/** Every rule, in the order they run. */
export const cases: [string, Case][] = [];
function rule(name: string, body: Case): void {
  cases.push([name, body]);
}

const TTL = 60;
const state = (obj: Record<string, unknown>): Map<string, string> =>
  new Map(Object.entries(obj).map(([k, v]) => [k, JSON.stringify(v)]));
const change = (set: Record<string, unknown>, removed: string[] = [], extra: Partial<SessionChange> = {}): SessionChange => ({
  set: state(set),
  removed: new Set(removed),
  graceMs: 0,
  ...extra,
});
/** A seed as the engine makes one: 256 bits, base64url. */
const seed = () => randomBytes(32).toString('base64url');
/** A change that rotates `key` (for a stateless store, whose every update is a new key, a plain change). */
function rotating(store: SessionStore, key: string, set: Record<string, unknown>, graceMs: number, extra: Partial<SessionChange> = {}): SessionChange {
  const rotateTo = store.rotatedKey?.(key, seed()) ?? undefined;
  if (store.rotatedKey && !rotateTo) fail(`rotatedKey(${JSON.stringify(key.slice(0, 20))}…) of a key the store made returned ${String(rotateTo)}`);
  return change(set, [], { rotateTo, graceMs, ...extra });
}
const sameSettings = (a: SessionSettings | undefined, b: SessionSettings) => (a?.ttl ?? null) === (b.ttl ?? null) && (a?.persistent ?? null) === (b.persistent ?? null);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function sameState(actual: Map<string, string> | undefined, expected: Record<string, unknown>): boolean {
  if (!actual) return false;
  const want = state(expected);
  if (actual.size !== want.size) return false;
  for (const [k, v] of want) if (actual.get(k) !== v) return false;
  return true;
}
const show = (m: Map<string, string> | undefined) => (m ? JSON.stringify([...m]) : String(m));

rule('load of an unknown or malformed key is null', async (store) => {
  for (const key of ['nope', '', 'a'.repeat(5000), 'AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '__proto__']) {
    if ((await store.load(key)) !== null) fail(`load(${JSON.stringify(key.slice(0, 40))}) did not return null`);
  }
});

rule('save then load returns the state, a version and the expiry', async (store) => {
  const before = Date.now();
  const key = await store.save(state({ user: 'ada', n: 1, nested: { a: [1, 2] } }), TTL);
  if (typeof key !== 'string' || key.length === 0) fail('save did not return a non-empty string key');
  const loaded = await store.load(key);
  if (!loaded) fail('load after save returned null');
  if (!sameState(loaded.state, { user: 'ada', n: 1, nested: { a: [1, 2] } })) fail(`state differs: ${show(loaded.state)}`);
  if (typeof loaded.version !== 'number') fail('version is not a number');
  if (loaded.expiresAt < before + (TTL - 2) * 1000 || loaded.expiresAt > Date.now() + (TTL + 2) * 1000) {
    fail(`expiresAt ${loaded.expiresAt} is not about now + ${TTL} s`);
  }
  if (loaded.stale) fail('a fresh key loaded as stale');
});

rule('keys like __proto__ and constructor are plain data', async (store) => {
  // JSON.parse makes "__proto__" an own key, as a hostile record would have it.
  const hostile = JSON.parse('{"__proto__":{"admin":true},"constructor":"x","toString":1}') as Record<string, unknown>;
  const key = await store.save(state(hostile), TTL);
  const loaded = await store.load(key);
  if (!sameState(loaded?.state, hostile) || loaded?.state.get('__proto__') !== '{"admin":true}') fail(`state differs: ${show(loaded?.state)}`);
  if (({} as Record<string, unknown>).admin !== undefined) fail('Object.prototype was polluted');
});

rule('save never overwrites: every save gets its own key', async (store) => {
  const keys = new Set<string>();
  for (let i = 0; i < 20; i++) keys.add(await store.save(state({ i }), TTL));
  if (keys.size !== 20) fail(`20 saves gave ${keys.size} distinct keys`);
  let i = 0;
  for (const key of keys) {
    const loaded = await store.load(key);
    if (!sameState(loaded?.state, { i })) fail(`the session saved ${i}th holds ${show(loaded?.state)}`);
    i++;
  }
});

rule('update applies changes key by key', async (store) => {
  const key = await store.save(state({ a: 1, b: 2, c: 3 }), TTL);
  const next = await store.update(key, change({ b: 20, d: 4 }, ['c']), TTL);
  if (typeof next !== 'string') fail('update of a live session did not return a key');
  const loaded = await store.load(next);
  if (!sameState(loaded?.state, { a: 1, b: 20, d: 4 })) fail(`state after update is ${show(loaded?.state)}`);
});

rule('concurrent updates of different keys both survive', async (store, { invalidation }) => {
  const key = await store.save(state({ base: true }), TTL);
  const [kx, ky] = await Promise.all([store.update(key, change({ x: 1 }), TTL), store.update(key, change({ y: 2 }), TTL)]);
  if (!invalidation) {
    // No record to merge into: each update's key carries the loaded state plus its own change.
    if (!sameState((await store.load(kx!))?.state, { base: true, x: 1 })) fail('the first key does not carry its change');
    if (!sameState((await store.load(ky!))?.state, { base: true, y: 2 })) fail('the second key does not carry its change');
    return;
  }
  const loaded = await store.load(key);
  if (!sameState(loaded?.state, { base: true, x: 1, y: 2 })) fail(`state is ${show(loaded?.state)}`);
});

rule('update bumps the version and honours an expected version', async (store, { invalidation }) => {
  const first = await store.save(state({ a: 1 }), TTL);
  const v1 = (await store.load(first))!.version;
  const next = await store.update(first, change({ a: 2 }, [], { expectedVersion: v1 }), TTL);
  // A stateless store's old key still holds the old version: follow the key it returned.
  const key = invalidation ? first : next;
  if (typeof key !== 'string') fail('update of a live session did not return a key');
  const v2 = (await store.load(key))!.version;
  if (!(v2 > v1)) fail(`version did not grow (${v1} → ${v2})`);
  try {
    await store.update(key, change({ a: 3 }, [], { expectedVersion: v1 }), TTL);
  } catch (err) {
    if (err instanceof CaseFailure) throw err;
    if (!(err instanceof VersionConflictError)) fail(`a stale expected version threw ${String(err)}, not VersionConflictError`);
    if (err.actualVersion !== v2) fail(`VersionConflictError carries ${err.actualVersion}, the store has ${v2}`);
    const loaded = await store.load(key);
    if (!sameState(loaded?.state, { a: 2 })) fail(`a refused update still wrote: ${show(loaded?.state)}`);
    return;
  }
  fail('an update with a stale expected version succeeded');
});

rule('update of a deleted session is refused and writes nothing', async (store, { invalidation }) => {
  if (!invalidation) return;
  const key = await store.save(state({ a: 1 }), TTL);
  await store.delete(key);
  const result = await store.update(key, change({ a: 2 }), TTL);
  if (result !== null) fail('update of a deleted session did not return null');
  if ((await store.load(key)) !== null) fail('update brought a deleted session back');
});

rule('update with rotation hands out a new key; the old one is stale within the grace', async (store, { invalidation }) => {
  const key = await store.save(state({ a: 1 }), TTL);
  const rotation = rotating(store, key, { a: 2 }, 60_000);
  const next = await store.update(key, rotation, TTL);
  if (!next || next === key) fail('rotation returned no new key');
  if (rotation.rotateTo !== undefined && next !== rotation.rotateTo) fail('a rotating update did not hand out the key rotatedKey named');
  const current = await store.load(next);
  if (!sameState(current?.state, { a: 2 }) || current?.stale) fail('the new key does not load the session as current');
  // A stateless store's previous key is simply the previous state until its own expiry: no grace to check.
  if (!invalidation) return;
  const previous = await store.load(key);
  if (!previous || !previous.stale || !sameState(previous.state, { a: 2 })) fail('the previous key does not load the session as stale inside its grace');
  const again = await store.update(key, rotating(store, key, { b: 3 }, 60_000), TTL);
  if (again !== key) fail('an update through the previous key rotated again (or changed the key)');
  if (again === null) fail('an update through the previous key inside the grace was refused');
  const after = await store.load(next);
  if (!sameState(after?.state, { a: 2, b: 3 })) fail(`changes through the previous key were not kept: ${show(after?.state)}`);
});

rule('a rotated-out key dies when its grace ends', async (store, { invalidation }) => {
  if (!invalidation) return;
  const key = await store.save(state({ a: 1 }), TTL);
  const next = await store.update(key, rotating(store, key, { a: 2 }, 150), TTL);
  await sleep(400);
  if ((await store.load(key)) !== null) fail('the previous key still loads after its grace');
  if (!(await store.load(next!))) fail('the current key stopped loading');
  const zero = await store.update(next!, rotating(store, next!, { a: 3 }, 0), TTL);
  if ((await store.load(next!)) !== null) fail('with graceMs 0 the previous key still loads');
  if (!(await store.load(zero!))) fail('the key from a zero-grace rotation does not load');
});

rule('updateTtl moves the expiry and returns the key', async (store) => {
  const key = await store.save(state({ a: 1 }), 10);
  const before = (await store.load(key))!.expiresAt;
  const next = await store.updateTtl(key, 600);
  if (typeof next !== 'string') fail('updateTtl of a live session returned no key');
  const after = (await store.load(next))!;
  if (!(after.expiresAt > before + 500_000)) fail(`expiresAt moved from ${before} to ${after.expiresAt}`);
  if (!sameState(after.state, { a: 1 })) fail('updateTtl changed the state');
});

rule('sessions expire after their TTL', async (store) => {
  const key = await store.save(state({ a: 1 }), 0.3);
  if (!(await store.load(key))) fail('a session with TTL 0.3 s did not load at once');
  await sleep(700);
  if ((await store.load(key)) !== null) fail('a session loads after its TTL');
  if ((await store.update(key, change({ a: 2 }), TTL)) !== null) fail('update brought an expired session back');
});

rule('delete is idempotent and kills the session', async (store, { invalidation }) => {
  const key = await store.save(state({ a: 1 }), TTL);
  await store.delete(key);
  await store.delete(key);
  await store.delete('never-existed');
  if (invalidation && (await store.load(key)) !== null) fail('a deleted session still loads');
});

rule('delete also kills keys still inside their rotation grace', async (store, { invalidation }) => {
  if (!invalidation) return;
  const key = await store.save(state({ a: 1 }), TTL);
  const next = await store.update(key, rotating(store, key, { a: 2 }, 60_000), TTL);
  await store.delete(next!);
  if ((await store.load(key)) !== null) fail('the previous key still loads after delete');
});

rule('a rotating update applied twice (a client library resending it) leaves the key it handed out current', async (store) => {
  if (!store.rotatedKey) return;
  for (const expectedVersion of [1, undefined]) {
    const key = await store.save(state({ a: 1 }), TTL);
    const rotation = rotating(store, key, { a: 2 }, 60_000, { expectedVersion });
    const next = await store.update(key, rotation, TTL);
    let replay: string | null | undefined;
    try {
      replay = await store.update(key, rotation, TTL);
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
    if (replay !== undefined && replay !== key) fail(`the resent update answered ${String(replay)}, not the presented key (a stale key never rotates)`);
    const current = await store.load(next!);
    if (!current || current.stale || !sameState(current.state, { a: 2 })) fail(`after a resend (expectedVersion ${String(expectedVersion)}) the handed-out key is not current`);
    if (!(await store.load(key))?.stale) fail('after a resend the presented key is not the previous one inside its grace');
  }
});

rule('rotatedKey names the next key from the seed, without I/O; null for a key that is not the store\'s', async (store) => {
  if (!store.rotatedKey) return;
  const key = await store.save(state({ a: 1 }), TTL);
  const s = seed();
  const named = store.rotatedKey(key, s);
  if (typeof named !== 'string' || named === key || named.includes('~')) fail(`rotatedKey gave ${String(named)}`);
  if (store.rotatedKey(key, s) !== named) fail('rotatedKey is not a function of its arguments');
  if (store.rotatedKey('nope', s) !== null) fail('rotatedKey of a malformed key is not null');
  if ((await store.load(named)) !== null) fail('a named key loads before any update rotated to it');
});

rule('recordId names the record: the same across rotation and extension, never the secret part', async (store) => {
  if (!store.recordId) return;
  const key = await store.save(state({ a: 1 }), TTL);
  const id = store.recordId(key);
  if (typeof id !== 'string' || id.length === 0) fail(`recordId gave ${String(id)}`);
  // What the id leaves out of the key must be the secret part: at least 128 bits' worth of it.
  if (!key.includes(id) || key.length - id.length < 22) fail('recordId is not a part of the key that leaves its secret out');
  const rotated = (await store.update(key, rotating(store, key, { a: 2 }, 0), TTL))!;
  const extended = (await store.updateTtl(rotated, TTL))!;
  if (store.recordId(rotated) !== id || store.recordId(extended) !== id) fail('recordId changed with a rotation or an extension');
  if ((await store.load(id)) !== null) fail('the record id alone opens the session');
  if (store.recordId('nope') !== null) fail('recordId of a malformed key is not null');
});

rule("the session's settings (ttl, persistent) are kept with the record", async (store) => {
  const settings = { ttl: 30, persistent: false };
  let key = await store.save(state({ a: 1 }), TTL, { settings });
  const check = async (want: SessionSettings, after: string) => {
    const loaded = await store.load(key);
    if (!loaded || !sameSettings(loaded.settings, want)) fail(`after ${after} the settings are ${JSON.stringify(loaded?.settings)}, not ${JSON.stringify(want)}`);
  };
  await check(settings, 'save');
  key = (await store.update(key, change({ b: 2 }), TTL))!;
  await check(settings, 'an update that did not touch them');
  key = (await store.updateTtl(key, TTL))!;
  await check(settings, 'updateTtl');
  key = (await store.update(key, change({}, [], { settings: { ttl: 90 } }), TTL))!;
  await check({ ttl: 90 }, 'an update that set ttl alone');
  key = (await store.update(key, change({}, [], { settings: {} }), TTL))!;
  await check({}, 'an update back to the defaults');
  const plain = await store.save(state({ a: 1 }), TTL);
  if (!sameSettings((await store.load(plain))?.settings, {})) fail('a session saved without settings loads with some');
});

rule('deleteExpired removes expired sessions, if the store has it', async (store) => {
  if (!store.deleteExpired) return;
  await store.save(state({ a: 1 }), 0.2);
  const live = await store.save(state({ b: 1 }), TTL);
  await sleep(500);
  const removed = await store.deleteExpired();
  if (typeof removed !== 'number' || removed < 1) fail(`deleteExpired returned ${String(removed)}`);
  if (!(await store.load(live))) fail('deleteExpired removed a live session');
});
