/**
 * `latchkey/express`: the Express adapter (Express 5 and 4), on `latchkey/adapter` alone. It
 * reads the Cookie header, puts the session on `req.session`, and holds the response head
 * until the commit is acknowledged, arming only when the session needs a commit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { type OpenSession, type Session, SessionEngine, type SessionOptions } from '../adapter';
import { commitBeforeHead } from './node-response';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The request's session (latchkey). */
      session: Session;
    }
  }
}

/** The request as the adapter reads it: Express's, or any Node request. */
export type SessionRequest = IncomingMessage & { secure?: boolean; session?: Session };
/** An Express (4 or 5) middleware. */
export type ExpressSessionMiddleware = (req: SessionRequest, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * Session middleware for Express 4 and 5.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { session } from 'latchkey/express';
 *
 * const app = express();
 * app.use(session({ secret: process.env.SESSION_SECRET }));
 * app.get('/', (req, res) => {
 *   const visits = (req.session.get('visits') as number | undefined) ?? 0;
 *   req.session.set('visits', visits + 1);
 *   res.send(`visit ${visits + 1}`);
 * });
 * ```
 * @throws ConfigError at once for invalid options.
 */
export function session(options: SessionOptions): ExpressSessionMiddleware {
  const engine = new SessionEngine(options);

  return function latchkeySession(req, res, next) {
    let opened;
    try {
      opened = engine.open(req.headers.cookie, req.secure ?? (req.socket as TLSSocket).encrypted === true, commitBeforeHead(engine, res, next));
    } catch (err) {
      next(err);
      return;
    }
    if (opened instanceof Promise) opened.then((open) => attach(req, res, open, next), next);
    else attach(req, res, opened, next);
  };
}

function attach(req: SessionRequest, res: ServerResponse, open: OpenSession, next: (err?: unknown) => void): void {
  req.session = open.session;
  if (open.cacheControl !== undefined) res.setHeader('Cache-Control', open.cacheControl);
  next();
}

// From '../index' (not '../engine/session'), so a program that imports only this entry point
// also loads latchkey's main declaration file: `declare module 'latchkey' { … }` needs it in the program.
export type { Session, SessionData } from '../index';
