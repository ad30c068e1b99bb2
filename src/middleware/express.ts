/**
 * `latchkey/express`: the Express adapter (Express 5 and 4), on `latchkey/adapter` alone. It
 * reads the Cookie header, puts the session on `req.session`, and holds the response head
 * until the commit is acknowledged, arming only when the session needs a commit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { holdHead, type OpenSession, type Session, SessionEngine, type SessionOptions } from '../adapter';

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
    let armed = false;
    // Armed only when the session first needs a commit: a request that never touches it wraps nothing.
    const arm = (open: OpenSession): void => {
      if (armed) return;
      armed = true;
      if (res.headersSent) {
        // Changed after the head left unarmed: saved under the key the client holds, nothing sent.
        engine.finish(open, { status: res.statusCode, headSent: true });
        return;
      }
      holdHead(res, (status) => apply(res, engine.finish(open, { status, cacheControl: res.getHeader('Cache-Control') })), next);
    };
    let opened;
    try {
      opened = engine.open(req.headers.cookie, req.secure ?? (req.socket as TLSSocket).encrypted === true, arm);
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

/** Adds the commit's headers to the response; a rejection reaches the framework's error path (503 from err.status). */
async function apply(res: ServerResponse, finished: ReturnType<SessionEngine['finish']>): Promise<void> {
  const headers = await finished;
  if (headers === null) return;
  res.appendHeader('Set-Cookie', headers.setCookie);
  for (const [name, value] of Object.entries(headers.set)) res.setHeader(name, value);
}

export type { SessionOptions };
// From '../index' (not '../engine/session'), so a program that imports only this entry point
// also loads latchkey's main declaration file: `declare module 'latchkey' { … }` needs it in the program.
export type { Session, SessionData } from '../index';
