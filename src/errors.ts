/**
 * Error classes shared by every layer. Each has a stable `code` that callers may
 * switch on, an HTTP `status` the adapters hand to the framework's error path, and
 * `expose: false` so Koa's default handler never leaks a store message to a client.
 */

/** Options accepted by every latchkey error. */
export interface SessionErrorOptions {
  cause?: unknown;
}

/** Options of {@link ConfigError}. */
export interface ConfigErrorOptions extends SessionErrorOptions {
  /** The option at fault, e.g. `secret` or `cookie.maxAge`. */
  option?: string;
}

/**
 * Base class of every latchkey error.
 *
 * @example
 * ```ts
 * app.use((err, req, res, next) => {
 *   if (err instanceof SessionError && err.code === 'LATCHKEY_STORE_TIMEOUT') res.set('Retry-After', '1');
 *   next(err);
 * });
 * ```
 */
export class SessionError extends Error {
  /** Stable machine-readable code, e.g. `LATCHKEY_STORE_TIMEOUT`. */
  readonly code: string;
  /** HTTP status the adapters use when this error reaches the framework. */
  readonly status: number;
  /** Koa reads this: store details are never shown to clients. */
  readonly expose = false;
  /**
   * Headers the error response must carry (Koa's default handler and Express's finalhandler send
   * `err.headers`; the adapters set them too): after a store write we gave up on, the cookie that
   * opens the session whatever the store did with that write.
   */
  headers?: Record<string, string>;

  constructor(code: string, message: string, status: number, options?: SessionErrorOptions) {
    super(message, options && 'cause' in options ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }

  /** Alias of `status` for frameworks that read `statusCode`. */
  get statusCode(): number {
    return this.status;
  }
}

/** Invalid options, thrown when the middleware or a store is created, never per request. */
export class ConfigError extends SessionError {
  /** The option at fault, when one is (`secret`, `cookie.maxAge`, an unknown option's name…). */
  readonly option: string | undefined;
  constructor(message: string, options?: ConfigErrorOptions) {
    super('LATCHKEY_CONFIG', message, 500, options);
    this.option = options?.option;
  }
}

/** What went wrong while loading: corrupt data, or anything else (the store is unavailable). */
export type LoadErrorKind = 'deserialization' | 'other';
/** What went wrong while writing: state that cannot be stored, or anything else. */
export type WriteErrorKind = 'serialization' | 'other';

function kindStatus(kind: string): number {
  // A store that cannot be reached is "unavailable" (503, retry later); data we cannot
  // encode or decode is our bug or the client's, and retrying does not help (500).
  return kind === 'other' ? 503 : 500;
}

/**
 * A store failed to load a session. Kind `deserialization` means the record is corrupt:
 * the engine then serves a fresh session instead of failing the request.
 */
export class LoadError extends SessionError {
  readonly kind: LoadErrorKind;
  constructor(kind: LoadErrorKind, message: string, options?: SessionErrorOptions) {
    super(kind === 'deserialization' ? 'LATCHKEY_LOAD_DESERIALIZATION' : 'LATCHKEY_LOAD', message, kindStatus(kind), options);
    this.kind = kind;
  }
}

/** A store failed to save a new session. */
export class SaveError extends SessionError {
  readonly kind: WriteErrorKind;
  constructor(kind: WriteErrorKind, message: string, options?: SessionErrorOptions) {
    super(kind === 'serialization' ? 'LATCHKEY_SAVE_SERIALIZATION' : 'LATCHKEY_SAVE', message, kindStatus(kind), options);
    this.kind = kind;
  }
}

/** A store failed to update, extend or delete an existing session. */
export class UpdateError extends SessionError {
  readonly kind: WriteErrorKind;
  constructor(kind: WriteErrorKind, message: string, options?: SessionErrorOptions) {
    super(kind === 'serialization' ? 'LATCHKEY_UPDATE_SERIALIZATION' : 'LATCHKEY_UPDATE', message, kindStatus(kind), options);
    this.kind = kind;
  }
}

/**
 * `update` carried an expected version and the record has moved on. The engine reloads,
 * reapplies the request's per-key changes and retries; stores throw it, apps rarely see it.
 */
export class VersionConflictError extends SessionError {
  /** The version the store holds now. */
  readonly actualVersion: number;
  readonly expectedVersion: number;
  constructor(expectedVersion: number, actualVersion: number) {
    super('LATCHKEY_VERSION_CONFLICT', `session version conflict: expected ${expectedVersion}, store has ${actualVersion}`, 503);
    this.expectedVersion = expectedVersion;
    this.actualVersion = actualVersion;
  }
}

/** A store call did not settle within `storeTimeoutMs`. */
export class StoreTimeoutError extends SessionError {
  readonly operation: string;
  readonly timeoutMs: number;
  constructor(operation: string, timeoutMs: number) {
    super('LATCHKEY_STORE_TIMEOUT', `session store ${operation} did not answer within ${timeoutMs} ms`, 503);
    this.operation = operation;
    this.timeoutMs = timeoutMs;
  }
}
