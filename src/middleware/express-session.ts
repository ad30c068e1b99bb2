/**
 * `latchkey/express-session`: a drop-in for express-session on latchkey's engine, on
 * `latchkey/adapter` alone. `import session from 'latchkey/express-session'` replaces
 * `import session from 'express-session'` line for line; `req.session` is express-session-shaped
 * (see `compat/express-session.ts`), with latchkey's guarantees underneath.
 */
import { IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { type OpenSession, SessionEngine } from '../adapter';
import { type ExpressSessionObject, type ExpressSessionOptions, expressSessionView, translateOptions } from '../compat/express-session';
import type { Properties } from '../compat/properties';
import { commitBeforeHead } from './node-response';

// No global typing of req.session here: it would clash with latchkey/express's. The object has
// express-session's shape, so @types/express-session types it (README, "Migrating").
type Req = IncomingMessage & { secure?: boolean; session?: unknown; sessionID?: string };
type Next = (err?: unknown) => void;

/**
 * Session middleware for Express 4 and 5 with express-session's `req.session`.
 *
 * @example
 * ```ts
 * import session from 'latchkey/express-session';
 * app.use(session({ secret: process.env.SESSION_SECRET, cookie: { maxAge: 86_400_000 } }));
 * app.get('/', (req, res) => {
 *   req.session.views = (req.session.views ?? 0) + 1;
 *   res.send(`views: ${req.session.views}`);
 * });
 * ```
 * @throws ConfigError for express-session options with no meaning here, and unknown ones.
 */
export function session(options: ExpressSessionOptions = {}): (req: Req, res: ServerResponse, next: Next) => void {
  const { latchkey, proxy } = translateOptions(options);
  const engine = new SessionEngine(latchkey);

  return function latchkeyExpressSession(req, res, next) {
    let props: Properties | undefined;
    const arm = commitBeforeHead(engine, res, next, () => props?.flush()); // in-place changes to objects the handler read
    const attach = (open: OpenSession): void => {
      const host = { engine, open, use: () => arm(open), replace: (view: ExpressSessionObject | undefined, p: Properties | undefined) => ((req.session = view), (props = p)) };
      const made = expressSessionView(host);
      host.replace(made.session, made.props);
      exposeSessionID(req);
      if (open.cacheControl !== undefined) res.setHeader('Cache-Control', open.cacheControl);
      next();
    };
    let opened;
    try {
      opened = engine.open(req.headers.cookie, isHttps(req, proxy), arm);
    } catch (err) {
      return next(err);
    }
    if (opened instanceof Promise) opened.then(attach, next);
    else attach(opened);
  };
}

/** express-session's `proxy`: true trusts X-Forwarded-Proto, false only the socket, unset Express's trust proxy. */
function isHttps(req: Req, proxy: boolean | undefined): boolean {
  const tls = (req.socket as TLSSocket).encrypted === true;
  if (proxy === undefined) return req.secure ?? tls;
  if (!proxy) return tls;
  const forwarded = req.headers['x-forwarded-proto'];
  return tls || (typeof forwarded === 'string' && forwarded.split(',')[0]!.trim().toLowerCase() === 'https');
}

const withSessionID = new WeakSet<object>();
/** `req.sessionID` as a getter of `req.session.id`, on the framework's request prototype once (no own property per request). */
function exposeSessionID(req: Req): void {
  const proto = Object.getPrototypeOf(req) as object;
  const target = proto === IncomingMessage.prototype ? req : proto;
  if (withSessionID.has(target)) return;
  Object.defineProperty(target, 'sessionID', {
    configurable: true,
    get(this: Req) {
      return (this.session as { id?: string } | undefined)?.id;
    },
  });
  withSessionID.add(target);
}

export default session;
export type { ExpressSessionObject, ExpressSessionOptions };
// From '../index', so `declare module 'latchkey' { … }` resolves in a program importing only this entry point.
export type { SessionData } from '../index';
