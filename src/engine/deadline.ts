/**
 * Every store call runs under one deadline: ioredis waits about 73 s on a dead Redis and
 * forever on a paused one with its defaults, so bounding the wait is ours to do.
 */
import { LoadError, SessionError, StoreTimeoutError, UpdateError, SaveError } from '../errors';

/** The store operations, as named in errors. */
export type StoreOperation = 'load' | 'save' | 'update' | 'updateTtl' | 'delete';

/** Settles like `call()`, or rejects with `StoreTimeoutError` after `ms`; a non-latchkey error is wrapped with its cause. */
export function withDeadline<T>(operation: StoreOperation, ms: number, call: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreTimeoutError(operation, ms)), ms);
    let pending: Promise<T>;
    try {
      pending = call();
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
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
