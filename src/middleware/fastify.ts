/**
 * `latchkey/fastify`: the Fastify 5 adapter (Fastify 4 unchanged), on `latchkey/adapter` alone. A
 * plugin that is not encapsulated: every route, in any child plugin, sees `request.session`. The
 * session opens in `onRequest`; the commit runs in `onSend`, which Fastify awaits before it writes
 * the head, whatever the payload (string, object, Buffer, stream, empty, redirect, 304, HEAD). What
 * a reply that bypasses `onSend` (`reply.hijack()`, `reply.raw`) changed is saved at `onResponse`.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { type OpenSession, type Session, SessionEngine, type SessionOptions } from '../adapter';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's session (latchkey), typed by `SessionData`: `declare module 'latchkey' { interface SessionData { … } }`. */
    session: Session;
  }
}

const kOpen = Symbol('latchkey.open');
type Held = FastifyRequest & { [kOpen]: OpenSession | null };

/**
 * For @fastify/passport only, not the handle's API (not in its type, not enumerable, only where it is
 * registered): it renews the session at login and logout only through @fastify/session's
 * `regenerate(keep?)`, and without it calls @fastify/secure-session's `data()`. Both on the handle's methods.
 */
const PASSPORT: PropertyDescriptorMap = {
  regenerate: {
    async value(this: Session, keep: string[] = []) {
      for (const k of this.keys()) if (!keep.includes(k)) this.remove(k);
      this.renew();
    },
  },
  data: { value: function data(this: Session) { return Object.fromEntries(this.entries()); } },
};

// Async, so that a ConfigError from the engine rejects `await app.register(…)` and `app.ready()`.
async function latchkeySession(app: FastifyInstance, options: SessionOptions): Promise<void> {
  const engine = new SessionEngine(options);
  app.decorateRequest('session', null as unknown as Session);
  app.decorateRequest(kOpen, null);

  app.addHook('onRequest', (request, reply, next) => {
    // 'https' behind a trusted proxy too (trustProxy). No cookie that verifies: opened at once, no tick.
    const opened = engine.open(request.headers.cookie, request.protocol === 'https');
    if (opened instanceof Promise) opened.then((open) => attach(request, reply, open, next), next);
    else attach(request, reply, opened, next);
  });

  app.addHook('onSend', (request, reply, payload, next) => {
    const open = (request as Held)[kOpen];
    const finished = open && engine.finish(open, { status: reply.statusCode, cacheControl: reply.getHeader('cache-control') });
    if (!finished) return next(null, payload);
    finished.then(
      (headers) => {
        // Our Set-Cookie is appended (the reply's other cookies stay); the other headers replace theirs.
        if (headers) reply.header('set-cookie', headers.setCookie).headers(headers.set);
        next(null, payload);
      },
      // To Fastify's error handler (setErrorHandler), err.statusCode 503 for an unavailable store.
      (err: Error & { headers?: Record<string, string> }) => {
        if (err.headers) reply.headers(err.headers);
        next(err);
      },
    );
  });

  // The head left without onSend (hijacked or raw): saved as a late change, nothing sent; else a no-op.
  app.addHook('onResponse', (request, reply, next) => {
    const open = (request as Held)[kOpen];
    if (open) engine.finish(open, { status: reply.statusCode, headSent: true });
    next();
  });
}

function attach(request: FastifyRequest, reply: FastifyReply, open: OpenSession, next: () => void): void {
  (request as Held)[kOpen] = open;
  // Only where @fastify/passport is registered (it decorates `request.passport`): defining them costs ~1 µs.
  request.session = 'passport' in request ? Object.defineProperties(open.session, PASSPORT) : open.session;
  if (open.cacheControl !== undefined) reply.header('cache-control', open.cacheControl);
  next();
}

/**
 * Session plugin for Fastify: `app.register(session, { secret })`, once, at the root. Not
 * encapsulated: the documented `skip-override` (what fastify-plugin sets), without the dependency.
 * @throws ConfigError for invalid or unknown options, when the plugin is registered.
 */
export const session: FastifyPluginAsync<SessionOptions> = Object.assign(latchkeySession, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'latchkey',
  [Symbol.for('plugin-meta')]: { name: 'latchkey' },
});
export default session;

export type { SessionOptions };
// From '../index', so a program importing only this entry point loads latchkey's main declaration file (augmentations).
export type { Session, SessionData } from '../index';
