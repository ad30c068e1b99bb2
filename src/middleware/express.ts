/**
 * `latchkey/express`: the Express adapter. It reads the Cookie header, puts the session
 * on `req.session`, and holds the response head until the commit is acknowledged.
 * Everything else is the engine's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { SessionEngine } from '../engine/engine';
import type { SessionOptions } from '../engine/options';
import { Session } from '../engine/session';
import { holdHead } from './hold-head';

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

interface Carrier {
  res: ServerResponse;
  next: (err?: unknown) => void;
  armed: boolean;
}

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
  const engine: SessionEngine = new SessionEngine(options, (s) => arm(s));

  // Armed only when the commit may have something to do: an anonymous request that never
  // touches its session wraps nothing.
  function arm(s: Session): void {
    const carrier = s.carrier as Carrier;
    if (carrier.armed) return;
    carrier.armed = true;
    const { res, next } = carrier;
    if (res.headersSent) {
      // Changed after the head left unarmed: save under the key the client holds, send nothing.
      engine.afterHead(s);
      return;
    }
    holdHead(
      res,
      async (statusCode) => {
        const setCookie = await engine.commit(s, statusCode);
        if (setCookie === undefined) return;
        res.appendHeader('Set-Cookie', setCookie);
        const cacheControl = engine.cacheControl(res.getHeader('Cache-Control'));
        if (cacheControl !== undefined) res.setHeader('Cache-Control', cacheControl);
      },
      // The store failed: the framework's error path answers (Express: 503 from err.status).
      (err) => next(err),
    );
  }

  function attach(req: SessionRequest, res: ServerResponse, next: (err?: unknown) => void, s: Session): void {
    req.session = s;
    s.carrier = { res, next, armed: false } satisfies Carrier;
    if (engine.needsCommit(s)) arm(s);
    next();
  }

  return function latchkeySession(req, res, next) {
    let begun: Session | Promise<Session>;
    try {
      begun = engine.begin(req.headers.cookie, req.secure ?? (req.socket as TLSSocket).encrypted === true);
    } catch (err) {
      next(err);
      return;
    }
    if (begun instanceof Session) attach(req, res, next, begun);
    else begun.then((s) => attach(req, res, next, s), next);
  };
}

export type { SessionOptions };
// From '../index' (not '../engine/session'), so a program that imports only this entry point
// also loads latchkey's main declaration file: `declare module 'latchkey' { … }` needs it in the program.
export type { Session, SessionData } from '../index';
