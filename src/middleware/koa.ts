/**
 * `latchkey/koa`: the Koa adapter. It reads the Cookie header, puts the session on
 * `ctx.session`, and commits after the downstream middleware returns, before Koa writes the
 * response (Koa writes only once the whole middleware chain has settled). Everything else is
 * the engine's.
 */
import type Koa from 'koa';
import { SessionEngine } from '../engine/engine';
import type { SessionOptions } from '../engine/options';
import { Session } from '../engine/session';
import { ConfigError } from '../errors';

declare module 'koa' {
  interface DefaultContext {
    /** The request's session (latchkey). */
    session: Session;
  }
}

/** The Koa application, as far as the adapter needs it. */
interface KoaApp {
  keys?: unknown;
}

/**
 * Session middleware for Koa 3 (and Koa 2).
 *
 * `secret` defaults to `app.keys`: pass the app as the second argument to have missing or
 * short keys reported when the middleware is created; otherwise they are read on the first request.
 * `cookie.secure: 'auto'` follows `ctx.secure`, which honours `app.proxy`.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { session } from 'latchkey/koa';
 *
 * const app = new Koa();
 * app.keys = [process.env.SESSION_SECRET!];
 * app.use(session({}, app));
 * app.use((ctx) => {
 *   const visits = ((ctx.session.get('visits') as number | undefined) ?? 0) + 1;
 *   ctx.session.set('visits', visits);
 *   ctx.body = `visit ${visits}`;
 * });
 * ```
 * @throws ConfigError for invalid options (at once, or on the first request when app.keys is read then).
 */
export function session(options: SessionOptions = {}, app?: KoaApp): Koa.Middleware {
  let engine: SessionEngine | undefined =
    options.secret !== undefined || app !== undefined ? new SessionEngine(withKeys(options, app)) : undefined;

  return async function latchkeySession(ctx, next) {
    const e = (engine ??= new SessionEngine(withKeys(options, ctx.app)));
    const begun = e.begin(ctx.get('Cookie') || undefined, ctx.secure);
    const s = begun instanceof Session ? begun : await begun;
    ctx.session = s;
    // An error thrown downstream propagates unchanged and nothing is committed.
    await next();
    if ((s.status === 'unchanged' && !e.needsCommit(s)) || ctx.headerSent) {
      // Nothing to write now; a change made later (or after a hand-written head) is saved as a late one.
      e.afterHead(s);
      return;
    }
    const setCookie = await e.commit(s, ctx.status);
    if (setCookie === undefined) return;
    ctx.append('Set-Cookie', setCookie);
    const cacheControl = e.cacheControl(ctx.response.get('Cache-Control'));
    if (cacheControl !== undefined) ctx.set('Cache-Control', cacheControl);
  };
}

function withKeys(options: SessionOptions, app: KoaApp | undefined): SessionOptions {
  if (options.secret !== undefined) return options;
  const keys = app?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new ConfigError('latchkey/koa needs a secret: pass session({ secret }) or set app.keys (each at least 32 characters)');
  }
  if (!keys.every((k): k is string => typeof k === 'string')) {
    throw new ConfigError('app.keys must be a list of strings to be used as session secrets (a Keygrip is not supported: pass secret)');
  }
  return { ...options, secret: keys };
}

export type { SessionOptions };
