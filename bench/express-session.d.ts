// Types for express-session 1.x, only as much as bench/ uses (and connect-redis's types import).
// Not @types/express-session: it augments Express's Request with its own `session`, which clashes
// with the one latchkey's adapter declares; bench/ mounts the two in different targets.
declare module 'express-session' {
  import type { EventEmitter } from 'node:events';
  import type { RequestHandler } from 'express';

  function session(options: session.SessionOptions): RequestHandler;

  namespace session {
    interface SessionData {
      cookie: { originalMaxAge: number | null; expires?: Date | null; httpOnly?: boolean; path?: string };
      [key: string]: unknown;
    }
    interface SessionOptions {
      secret: string | string[];
      resave?: boolean;
      saveUninitialized?: boolean;
      store?: Store;
    }
    class Store extends EventEmitter {}
    class MemoryStore extends Store {
      length(callback: (err: unknown, length: number) => void): void;
    }
  }

  export = session;
}
