import type { SessionStore } from './types';

/**
 * Calls `store.deleteExpired()` every `everyMs` on an unref'd timer (it never keeps the
 * process alive) and returns a function that stops it. Failures are passed to `onError`
 * (default: `console.error`), never thrown into the event loop.
 *
 * @example
 * ```ts
 * const stop = startExpiredDeletion(store, 60_000);
 * process.on('SIGTERM', stop);
 * ```
 */
export function startExpiredDeletion(
  store: SessionStore,
  everyMs: number,
  onError: (err: unknown) => void = (err) => console.error('latchkey: deleteExpired failed', err),
): () => void {
  if (!store.deleteExpired) throw new TypeError('this store has no deleteExpired(): its backend expires sessions by itself');
  if (!(everyMs > 0)) throw new RangeError('everyMs must be a positive number of milliseconds');
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    store.deleteExpired!().then(
      () => (running = false),
      (err: unknown) => {
        running = false;
        onError(err);
      },
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
