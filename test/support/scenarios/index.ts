/**
 * The shared HTTP scenario table: every engine behaviour a user can see, run through every
 * framework in `frameworks` against any store, one group per file. `describeScenarios(label,
 * makeStore)` is called once per store, from test/suites/; each test gets a fresh store wrapped in a SpyStore.
 */
import type { SessionStore } from 'latchkey';
import { frameworks as allFrameworks, type Framework } from '../harness';
import { SpyStore } from '../spy-store';
import { commitScenarios } from './commit';
import { concurrencyScenarios } from './concurrency';
import { context } from './context';
import { failuresScenarios } from './failures';
import { hostileScenarios } from './hostile';
import { rotationScenarios } from './rotation';
import { ttlScenarios } from './ttl';
import { valuesScenarios } from './values';

export interface ScenarioOptions {
  /** False for a store that cannot revoke a copied session (CookieStore). Default true. */
  invalidation?: boolean;
  /** Called after each test with the inner store. */
  cleanup?: (store: SessionStore) => Promise<void> | void;
  /** Frameworks to run; default all. */
  frameworks?: Framework[];
}

const groups = [commitScenarios, ttlScenarios, rotationScenarios, concurrencyScenarios, valuesScenarios, failuresScenarios, hostileScenarios];

export function describeScenarios(label: string, makeStore: () => SessionStore | Promise<SessionStore>, options: ScenarioOptions = {}): void {
  for (const fw of options.frameworks ?? allFrameworks) {
    describe(`${label} on ${fw.name}`, () => {
      let current: { spy: SpyStore; inner: SessionStore };
      beforeEach(async () => {
        const inner = await makeStore();
        current = { inner, spy: new SpyStore(inner) };
      });
      afterEach(async () => {
        await options.cleanup?.(current.inner);
      });
      const t = context(fw, options.invalidation ?? true, () => current);
      for (const group of groups) group(t);
    });
  }
}
