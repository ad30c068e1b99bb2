/**
 * `latchkey/testing`: the store conformance kit. One named case per rule of the store
 * contract; framework-free (no jest needed), so third-party store authors can run it in
 * any test runner. It throws on the first failed case, naming it.
 *
 * @example
 * ```ts
 * import { runStoreConformance } from 'latchkey/testing';
 * test('MyStore keeps the contract', () => runStoreConformance(() => new MyStore()));
 * ```
 */
import { CaseFailure, cases } from './conformance-rules';
import type { SessionStore } from './types';
/** Options of {@link runStoreConformance}. */
export interface ConformanceOptions {
  /**
   * Whether the store can revoke a copied session (false for a stateless store such as
   * CookieStore, whose old cookie values stay valid until they expire). Default true.
   * With false, the cases that need a server-side record (a deleted or rotated-out key
   * dying, concurrent updates merging into one record) check what a stateless store can
   * promise instead: each returned key carries its own result.
   */
  invalidation?: boolean;
  /** Called once after each case with the store it used (close connections, drop keys). */
  cleanup?: (store: SessionStore) => Promise<void> | void;
  /** Only run cases whose name contains this text. */
  only?: string;
}

/** A failed conformance case. */
export class ConformanceError extends Error {
  constructor(readonly caseName: string, detail: string) {
    super(`store conformance case "${caseName}" failed: ${detail}`);
    this.name = 'ConformanceError';
  }
}

/** The names of every case, in the order they run. */
export const conformanceCases: readonly string[] = cases.map(([name]) => name);

/**
 * Runs every conformance case against fresh stores from `makeStore`, one per case.
 * @throws ConformanceError naming the first case that failed.
 */
export async function runStoreConformance(
  makeStore: () => SessionStore | Promise<SessionStore>,
  options: ConformanceOptions = {},
): Promise<void> {
  const invalidation = options.invalidation ?? true;
  for (const [name, body] of cases) {
    if (options.only !== undefined && !name.includes(options.only)) continue;
    const store = await makeStore();
    try {
      await body(store, { invalidation });
    } catch (err) {
      if (err instanceof CaseFailure) throw new ConformanceError(name, err.message);
      throw new ConformanceError(name, `threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    } finally {
      await options.cleanup?.(store);
    }
  }
}
