/**
 * `latchkey/fastify`: the Fastify 5 adapter, on `latchkey/adapter` alone. A plugin that is not
 * encapsulated, so every route of the app, in any child plugin, sees `request.session`. The
 * session opens in `onRequest`; the commit runs in `onSend`, which Fastify awaits before it writes
 * the head, whatever the payload (string, object, Buffer, stream, empty, redirect, 304, HEAD). A
 * reply that bypasses `onSend` (`reply.hijack()`, writes to `reply.raw`) has what the request
 * changed saved at `onResponse`, under the key the client holds.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { type FinishHeaders, type OpenSession, type Session, SessionEngine, type SessionOptions } from '../adapter';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The request's session (latchkey). Values are typed by `SessionData`, which you augment:
     * `declare module 'latchkey' { interface SessionData { userId: string } }`.
     */
    session: Session;
  }
}

const kOpen = Symbol('latchkey.open');
type Held = FastifyRequest & { [kOpen]: OpenSession | null };

/**
 * A shim for @fastify/passport only, not part of the handle's API (not in its type): it calls
 * `data()` (@fastify/secure-session's) when there is no `regenerate()` (@fastify/session's), and
 * renews the session at login and logout only through `regenerate`. Both in terms of the handle.
 */
const PASSPORT: PropertyDescriptorMap = {
  regenerate: { value(this: Session, keep: string[] = []) { for (const k of this.keys()) if (!keep.includes(k)) this.remove(k); this.renew(); return Promise.resolve(); } },
  data: { value(this: Session) { return Object.fromEntries(this.entries()); } },
};

// Async, so that a ConfigError from the engine rejects `await app.register(…)` and `app.ready()`.
async function latchkeySession(app: FastifyInstance, options: SessionOptions): Promise<void> {
  const engine = new SessionEngine(options);
  app.decorateRequest('session', null as unknown as Session);
  app.decorateRequest(kOpen, null);

  app.addHook('onRequest', (request, reply, next) => {
    // `request.protocol` is 'https' behind a trusted proxy too (Fastify's trustProxy).
    const opened = engine.open(request.headers.cookie, request.protocol === 'https');
    // No cookie (or none that verifies) opens at once: no extra tick on that path.
    if (opened instanceof Promise) opened.then((open) => attach(request, reply, open, next), next);
    else attach(request, reply, opened, next);
  });

  app.addHook('onSend', (request, reply, payload, next) => {
    const open = (request as Held)[kOpen];
    const finished = open && engine.finish(open, { status: reply.statusCode, cacheControl: reply.getHeader('cache-control') });
    if (!finished) return next(null, payload);
    finished.then(
      (headers) => {
        if (headers) apply(reply, headers);
        next(null, payload);
      },
      // To Fastify's error handler (setErrorHandler), with err.statusCode 503 for an unavailable store.
      (err: Error & { headers?: Record<string, string> }) => {
        if (err.headers) reply.headers(err.headers);
        next(err);
      },
    );
  });

  // The head left without onSend (hijacked or raw): saved as a late change, nothing sent; a no-op otherwise.
  app.addHook('onResponse', (request, reply, next) => {
    const open = (request as Held)[kOpen];
    if (open) engine.finish(open, { status: reply.statusCode, headSent: true });
    next();
  });
}

function attach(request: FastifyRequest, reply: FastifyReply, open: OpenSession, next: () => void): void {
  (request as Held)[kOpen] = open;
  request.session = Object.defineProperties(open.session, PASSPORT);
  if (open.cacheControl !== undefined) reply.header('cache-control', open.cacheControl);
  next();
}

/** Our Set-Cookie is appended (the reply's other cookies stay); the other headers replace theirs. */
function apply(reply: FastifyReply, headers: FinishHeaders): void {
  reply.header('set-cookie', headers.setCookie);
  for (const [name, value] of Object.entries(headers.set)) reply.header(name, value);
}

/**
 * Session plugin for Fastify 5: `app.register(session, { secret })`. Not encapsulated (the
 * documented `skip-override`, as fastify-plugin sets it), so register it once, at the root.
 * @throws ConfigError for invalid or unknown options, when the plugin is registered.
 */
export const session: FastifyPluginAsync<SessionOptions> = Object.assign(latchkeySession, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'latchkey',
  [Symbol.for('plugin-meta')]: { name: 'latchkey' },
});
export default session;

export type { SessionOptions };
// From '../index' (not '../engine/session'), so a program that imports only this entry point
// also loads latchkey's main declaration file: `declare module 'latchkey' { … }` needs it in the program.
export type { Session, SessionData } from '../index';
