/**
 * `latchkey`: the session engine's public surface: stores, their contract, errors and types.
 * Adapters live in `latchkey/express` and `latchkey/koa`, the Redis store in `latchkey/redis`,
 * the store conformance kit in `latchkey/testing`.
 */
export type { Session, SessionData, SessionStatus, SessionValue } from './engine/session';
export type { SessionEvent, SessionOptions } from './engine/options';
export type { CookieOptions } from './cookie/serialize';
export type {
  LoadedSession,
  SessionCache,
  SessionChange,
  SessionMeta,
  SessionSettings,
  SessionState,
  SessionStore,
} from './store/types';
export { MemoryStore, type MemoryStoreOptions } from './store/memory';
export { MemoryCache, type MemoryCacheOptions } from './store/memory-cache';
export { CookieStore, type CookieStoreOptions } from './store/cookie';
export { CachingStore, type CachingStoreOptions } from './store/caching';
export { startExpiredDeletion } from './store/expired';
export {
  ConfigError,
  LoadError,
  SaveError,
  SessionError,
  StoreTimeoutError,
  UpdateError,
  VersionConflictError,
  type LoadErrorKind,
  type WriteErrorKind,
} from './errors';
