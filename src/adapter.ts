/**
 * `latchkey/adapter`: what a framework adapter uses of the engine, and nothing else. The
 * Express, Koa and Fastify adapters are written on it alone.
 *
 * An adapter does three things per request:
 * 1. `engine.open(cookieHeader, https, onChange?)`: the session for the request (synchronous
 *    when there is nothing to load); put `open.session` where handlers find it.
 * 2. Before the response head goes out, `engine.finish(open, { status, cacheControl })`: null when
 *    nothing is to be committed, else a promise of the headers to add (`Set-Cookie`, and
 *    `Cache-Control` when it must change). A rejection is a `SessionError` with `status` (503 for
 *    an unavailable store): answer with it through the framework's error path.
 * 3. If the head went out without step 2 (the handler wrote it itself), `finish(open, { status,
 *    headSent: true })`: what the request changed is saved as a late change, without a cookie.
 *
 * `onChange` is for adapters that must prepare the response before the handler writes it (Node's
 * `res.end` does not wait): it is called when the session first needs a commit, so a request
 * that never touches its session prepares nothing. `holdHead` is that preparation for a Node
 * `ServerResponse`.
 *
 * @example
 * ```ts
 * import { SessionEngine } from 'latchkey/adapter';
 * const engine = new SessionEngine({ secret });
 * const open = await engine.open(req.headers.cookie, false);
 * const result = await handler(open.session);            // the handler returns its response
 * const headers = await engine.finish(open, { status: result.status });
 * if (headers) res.setHeader('Set-Cookie', headers.setCookie);
 * ```
 */
export { SessionEngine, type CookieAttributes, type FinishHeaders, type OnChange, type OpenSession, type ResponseInfo } from './engine/engine';
export { checkOptionsObject, type SessionOptions } from './engine/options';
// From './index', so a program importing only latchkey/adapter loads the main declaration file (augmentations of 'latchkey').
export type { Session, SessionData } from './index';
export { holdHead, type BeforeHead } from './middleware/hold-head';
