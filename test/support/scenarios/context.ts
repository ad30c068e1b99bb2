/** What every scenario group gets: the app under test (a fresh spied store per test), and helpers. */
import type { RequestListener } from 'node:http';
import request from 'supertest';
import type { SessionOptions, SessionStore } from 'latchkey';
import { Jar } from '../cookies';
import type { Framework } from '../harness';
import { SECRET } from '../harness';
import type { SpyStore } from '../spy-store';

export interface ScenarioContext {
  readonly fw: Framework;
  /** False for a store that cannot revoke a copied session (CookieStore). */
  readonly invalidation: boolean;
  /** This test's spy around this test's store. */
  readonly spy: SpyStore;
  /** This test's store. */
  readonly inner: SessionStore;
  /** The test app on this framework, with `options` over the defaults (the secret, the spied store). */
  app(options?: Partial<SessionOptions>, setup?: (app: unknown) => void): RequestListener;
  /** Whether this store's state travels in the cookie. */
  stateless(): boolean;
  /** A session holding `values`, made through the app; the spy is reset afterwards. */
  seed(listener: RequestListener, values?: Record<string, unknown>): Promise<Jar>;
}

export const OTHER_SECRET = 'somebody-elses-secret-that-is-long-enough-99';
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A context whose spy and store are the current test's (set by the caller's beforeEach). */
export function context(fw: Framework, invalidation: boolean, current: () => { spy: SpyStore; inner: SessionStore }): ScenarioContext {
  const t: ScenarioContext = {
    fw,
    invalidation,
    get spy() {
      return current().spy;
    },
    get inner() {
      return current().inner;
    },
    app: (options = {}, setup) => fw.app({ secret: SECRET, store: t.spy, ...options }, setup),
    stateless: () => t.inner.stateless === true,
    async seed(listener, values = { k: 'v' }) {
      const jar = new Jar();
      for (const [key, value] of Object.entries(values)) {
        jar.take(await request(listener).get(`/set?key=${key}&json=${encodeURIComponent(JSON.stringify(value))}`).set('Cookie', jar.header()));
      }
      expect(jar.value).toBeDefined();
      t.spy.reset();
      return jar;
    },
  };
  return t;
}
