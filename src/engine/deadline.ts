/**
 * Every store call runs under one deadline: ioredis waits about 73 s on a dead Redis and
 * forever on a paused one with its defaults, so bounding the wait is ours to do.
 *
 * One shared coarse timer serves every call (a deadline wheel: calls are filed by the tick their
 * deadline falls in, and one unref'd timer rejects each tick's leftovers), instead of a setTimeout
 * and clearTimeout per call; a call is rejected at most one tick (50 ms) after its deadline. A
 * store that answers from this process (`inProcess`) cannot stall and gets no deadline at all.
 */
import { LoadError, SaveError, SessionError, StoreTimeoutError, UpdateError } from '../errors';

/** The store operations, as named in errors. */
export type StoreOperation = 'load' | 'save' | 'update' | 'updateTtl' | 'delete';

const TICK_MS = 50;

interface Pending {
  fail: () => void;
}

/** Pending calls by the tick their deadline falls in. */
const wheel = new Map<number, Set<Pending>>();
let timer: NodeJS.Timeout | undefined;

function turn(): void {
  const now = Math.floor(Date.now() / TICK_MS);
  for (const [tick, calls] of wheel) {
    if (tick > now) continue;
    wheel.delete(tick);
    for (const call of calls) call.fail();
  }
  if (wheel.size === 0) {
    clearInterval(timer);
    timer = undefined;
  }
}

/**
 * Settles like `call()`, or rejects with `StoreTimeoutError` after `ms` (to the next tick); a
 * non-latchkey error is wrapped with its cause. `inProcess`: no deadline, errors still wrapped.
 */
export function withDeadline<T>(operation: StoreOperation, ms: number, call: () => Promise<T>, inProcess = false): Promise<T> {
  if (inProcess) {
    try {
      return call().then(undefined, (err: unknown) => Promise.reject(wrap(operation, err)));
    } catch (err) {
      return Promise.reject(wrap(operation, err));
    }
  }
  return new Promise<T>((resolve, reject) => {
    const tick = Math.ceil((Date.now() + ms) / TICK_MS);
    let calls = wheel.get(tick);
    if (calls === undefined) wheel.set(tick, (calls = new Set()));
    const pending: Pending = { fail: () => reject(new StoreTimeoutError(operation, ms)) };
    calls.add(pending);
    if (timer === undefined) {
      timer = setInterval(turn, TICK_MS);
      timer.unref(); // a pending store call never keeps the process alive by itself
    }
    const done = (): void => {
      calls.delete(pending);
    };
    let settled: Promise<T>;
    try {
      settled = call();
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled.then(
      (value) => {
        done();
        resolve(value);
      },
      (err: unknown) => {
        done();
        reject(wrap(operation, err));
      },
    );
  });
}

function wrap(operation: StoreOperation, err: unknown): SessionError {
  if (err instanceof SessionError) return err;
  const message = `session store ${operation} failed: ${err instanceof Error ? err.message : String(err)}`;
  if (operation === 'load') return new LoadError('other', message, { cause: err });
  if (operation === 'save') return new SaveError('other', message, { cause: err });
  return new UpdateError('other', message, { cause: err });
}
