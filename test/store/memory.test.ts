/**
 * MemoryStore: the store contract (conformance kit), its bound (least recently used out),
 * TTL on every read, expired deletion on an unref'd timer; and MemoryCache, the SessionCache over
 * the same table.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type LoadedSession, MemoryCache, MemoryStore, startExpiredDeletion } from 'latchkey';
import { change, rotation, state } from '../support/state';

/** Polls `check` every 10 ms until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** A clock the test moves. */
function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('MemoryStore', () => {
  describe('bounded by maxSessions', () => {
    it('evicts the least recently used session, a read counting as a use', async () => {
      const store = new MemoryStore({ maxSessions: 3, sweepIntervalMs: 0 });
      const a = await store.save(state({ n: 'a' }), 60);
      const b = await store.save(state({ n: 'b' }), 60);
      const c = await store.save(state({ n: 'c' }), 60);
      expect(await store.load(a)).not.toBeNull(); // a is now the most recently used; b the least
      const d = await store.save(state({ n: 'd' }), 60);
      expect(store.size).toBe(3);
      expect(await store.load(b)).toBeNull();
      for (const key of [a, c, d]) expect(await store.load(key)).not.toBeNull();
    });

    it('an update counts as a use too, and the bound holds over many saves', async () => {
      const store = new MemoryStore({ maxSessions: 2, sweepIntervalMs: 0 });
      const x = await store.save(state({ n: 'x' }), 60);
      const y = await store.save(state({ n: 'y' }), 60);
      await store.update(x, change({ n: 'x2' }), 60); // y is now the least recently used
      await store.save(state({ n: 'z' }), 60);
      expect((await store.load(x))?.state.get('n')).toBe('"x2"');
      expect(await store.load(y)).toBeNull();
      const big = new MemoryStore({ maxSessions: 100, sweepIntervalMs: 0 });
      for (let i = 0; i < 1000; i++) await big.save(state({ i }), 60);
      expect(big.size).toBe(100);
    });
  });

  describe('TTL on every read', () => {
    it('load, update and updateTtl refuse a session past its TTL, and the read drops it from memory', async () => {
      const c = clock();
      const store = new MemoryStore({ now: c.now, sweepIntervalMs: 0 });
      const key = await store.save(state({ a: 1 }), 10);
      c.t += 9_999;
      expect(await store.load(key)).not.toBeNull();
      c.t += 1;
      expect(store.size).toBe(1); // nothing swept: only the read may judge
      expect(await store.load(key)).toBeNull();
      expect(store.size).toBe(0);
      const other = await store.save(state({ a: 1 }), 10);
      c.t += 10_000;
      expect(await store.update(other, change({ a: 2 }), 10)).toBeNull();
      const third = await store.save(state({ a: 1 }), 10);
      c.t += 10_000;
      expect(await store.updateTtl(third, 100)).toBeNull();
      expect(store.size).toBe(0);
    });

    it('updateTtl and update move the expiry that reads are judged by', async () => {
      const c = clock();
      const store = new MemoryStore({ now: c.now, sweepIntervalMs: 0 });
      const key = await store.save(state({ a: 1 }), 10);
      c.t += 8_000;
      expect(await store.updateTtl(key, 10)).toBe(key);
      c.t += 8_000;
      expect((await store.load(key))?.expiresAt).toBe(c.t + 2_000);
      await store.update(key, change({ a: 2 }), 10);
      c.t += 9_000;
      expect((await store.load(key))?.state.get('a')).toBe('2');
    });
  });

  describe('expired deletion', () => {
    it('startExpiredDeletion removes entries past their TTL without reading them; its stop function stops it', async () => {
      const store = new MemoryStore({ sweepIntervalMs: 0 }); // no sweep of its own: only the timer under test removes
      let runs = 0;
      const deleteExpired = store.deleteExpired.bind(store);
      store.deleteExpired = () => {
        runs++;
        return deleteExpired();
      };
      for (let i = 0; i < 50; i++) await store.save(state({ i }), 0.1);
      const live = await store.save(state({ live: true }), 60);
      expect(store.size).toBe(51);
      const stop = startExpiredDeletion(store, 40);
      try {
        expect(await eventually(() => store.size === 1, 2_000)).toBe(true);
      } finally {
        stop();
      }
      expect(runs).toBeGreaterThan(0);
      expect(await store.load(live)).not.toBeNull();
      // Stopped: expired entries now stay until read.
      const afterStop = runs;
      await store.save(state({ late: true }), 0.05);
      await new Promise((r) => setTimeout(r, 250));
      expect(runs).toBe(afterStop);
      expect(store.size).toBe(2);
    });

    it('its failures go to onError, and the timer keeps going', async () => {
      const errors: unknown[] = [];
      const failing = new MemoryStore({ sweepIntervalMs: 0 });
      failing.deleteExpired = () => Promise.reject(new Error('backend down'));
      const stop = startExpiredDeletion(failing, 20, (err) => errors.push(err));
      try {
        expect(await eventually(() => errors.length >= 2, 2_000)).toBe(true);
      } finally {
        stop();
      }
      expect((errors[0] as Error).message).toBe('backend down');
    });

    it("MemoryStore's own sweep (sweepIntervalMs) also drops expired entries unread", async () => {
      const store = new MemoryStore({ sweepIntervalMs: 30 });
      try {
        for (let i = 0; i < 10; i++) await store.save(state({ i }), 0.05);
        expect(await eventually(() => store.size === 0, 2_000)).toBe(true);
      } finally {
        store.close();
      }
    });

    it('the timer is unref\'d: a process that starts it and does nothing else exits on its own', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-unref-'));
      try {
        // Loads the real sources through TypeScript's transpiler (no build step, no ts-node).
        const loader = `
          const fs = require('node:fs'); const ts = require(${JSON.stringify(require.resolve('typescript'))});
          require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'),
            { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, file);
        `;
        const src = path.resolve(__dirname, '../../src/store');
        writeFileSync(
          path.join(dir, 'unref.js'),
          `${loader}
          const { MemoryStore } = require(${JSON.stringify(path.join(src, 'memory.ts'))});
          const { startExpiredDeletion } = require(${JSON.stringify(path.join(src, 'expired.ts'))});
          const store = new MemoryStore();
          store.save(new Map([['a', '1']]), 60).then(() => { startExpiredDeletion(store, 10); console.log('started'); });`,
        );
        // The control: the same check must catch a timer that does hold the process.
        writeFileSync(path.join(dir, 'ref.js'), `setInterval(() => {}, 10); console.log('started');`);
        const exits = (file: string, ms: number) =>
          new Promise<{ exited: boolean; out: string }>((resolve) => {
            const child = spawn(process.execPath, [path.join(dir, file)], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            const timer = setTimeout(() => {
              child.kill('SIGKILL');
              resolve({ exited: false, out });
            }, ms);
            child.on('exit', () => {
              clearTimeout(timer);
              resolve({ exited: true, out });
            });
          });
        const [unref, ref] = await Promise.all([exits('unref.js', 10_000), exits('ref.js', 1_500)]);
        expect(unref).toEqual({ exited: true, out: 'started\n' });
        expect(ref).toEqual({ exited: false, out: 'started\n' });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

});

describe('MemoryCache', () => {
  describe('as a SessionCache', () => {
    const record = (obj: Record<string, unknown>, expiresAt: number, version = 3): LoadedSession => ({ state: state(obj), version, expiresAt, createdAt: expiresAt - 86_400_000 });

    it('set then get returns the record with the session expiry, until the cache TTL ends', async () => {
      const c = clock();
      const cache = new MemoryCache({ now: c.now, sweepIntervalMs: 0 });
      const backend = new MemoryStore({ now: c.now, sweepIntervalMs: 0 });
      const key = await backend.save(state({ a: 1 }), 3600);
      const rec = record({ a: 1 }, c.t + 3_600_000);
      rec.state.set('__proto__', '{"admin":true}');
      await cache.set(key, rec, 5);
      const got = await cache.get(key);
      expect(got).toEqual({ state: rec.state, version: 3, expiresAt: c.t + 3_600_000, createdAt: rec.createdAt });
      expect(got?.state.get('__proto__')).toBe('{"admin":true}');
      expect(got?.stale).toBeUndefined();
      c.t += 4_999;
      expect(await cache.get(key)).not.toBeNull();
      c.t += 1;
      expect(await cache.get(key)).toBeNull();
      expect(cache.size).toBe(0);
    });

    it('answers only for the exact key: another validator of the same session misses', async () => {
      const backend = new MemoryStore({ sweepIntervalMs: 0 });
      const cache = new MemoryCache({ sweepIntervalMs: 0 });
      const key = await backend.save(state({ a: 1 }), 60);
      const rotated = await backend.update(key, rotation(backend, key, { a: 2 }, { graceMs: 60_000 }), 60);
      await cache.set(rotated!, (await backend.load(rotated!))!, 5);
      expect(await cache.get(key)).toBeNull();
      expect((await cache.get(rotated!))?.state.get('a')).toBe('2');
      expect(await cache.get('nope')).toBeNull();
    });

    it('set replaces what was kept for the session; delete forgets it (idempotently)', async () => {
      const cache = new MemoryCache({ sweepIntervalMs: 0 });
      const backend = new MemoryStore({ sweepIntervalMs: 0 });
      const key = await backend.save(state({ a: 1 }), 60);
      const next = await backend.update(key, rotation(backend, key, { a: 2 }, { graceMs: 0 }), 60);
      await cache.set(key, record({ a: 1 }, Date.now() + 60_000, 1), 5);
      await cache.set(next!, record({ a: 2 }, Date.now() + 60_000, 2), 5);
      expect(cache.size).toBe(1);
      expect(await cache.get(key)).toBeNull();
      expect((await cache.get(next!))?.version).toBe(2);
      await cache.delete(key); // any key of the session forgets it
      expect(await cache.get(next!)).toBeNull();
      await cache.delete(key);
      await cache.delete('never-cached');
      expect(cache.size).toBe(0);
    });

    it('keys in a foreign format are cached under a hash: the table holds no key text', async () => {
      const cache = new MemoryCache({ maxSessions: 2, sweepIntervalMs: 0 });
      const foreign = ['550e8400-e29b-41d4-a716-446655440000', 'sess:opaque-token-from-another-store', '__proto__'];
      for (const key of foreign) await cache.set(key, record({ k: key }, Date.now() + 60_000), 5);
      expect(cache.size).toBe(2); // the bound applies to cache entries too
      expect(await cache.get(foreign[0]!)).toBeNull(); // least recently used, evicted
      expect((await cache.get(foreign[1]!))?.state.get('k')).toBe(JSON.stringify(foreign[1]));
      expect((await cache.get(foreign[2]!))?.state.get('k')).toBe('"__proto__"');
      const entries = (cache as unknown as { table: { entries: Map<string, { hash: string }> } }).table.entries;
      for (const [id, entry] of entries) {
        for (const key of foreign) {
          expect(id).not.toContain(key);
          expect(entry.hash).not.toContain(key);
        }
      }
      await cache.delete(foreign[1]!);
      expect(await cache.get(foreign[1]!)).toBeNull();
      // A validator of our own format never sits in the table either, in a store or in a cache.
      const store = new MemoryStore({ sweepIntervalMs: 0 });
      const key = await store.save(state({ a: 1 }), 60);
      const ours = new MemoryCache({ sweepIntervalMs: 0 });
      await ours.set(key, (await store.load(key))!, 5);
      const validator = key.split('.')[1]!;
      for (const holder of [store, ours]) {
        for (const [id, entry] of (holder as unknown as { table: { entries: Map<string, { hash: string }> } }).table.entries) {
          expect(`${id} ${entry.hash}`).not.toContain(validator);
        }
      }
    });
  });
});
