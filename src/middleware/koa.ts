/**
 * `latchkey/koa`: the Koa adapter (Koa 3, and Koa 2 unchanged), on `latchkey/adapter` alone. It
 * puts the session on `ctx.session` and finishes it after the downstream middleware returns,
 * before Koa writes the response: Koa sends nothing until the whole chain has settled, so no
 * head needs holding, whatever the body (string, Buffer, JSON, stream, empty, redirect, HEAD).
 */
import type Koa from 'koa';
import { checkOptionsObject, type Session, SessionEngine, type SessionOptions } from '../adapter';
import { ConfigError } from '../errors';
import { finishOnContext } from './koa-response';

// Both: DefaultContext (whose `[key]: any` index would otherwise make `ctx.session` any on a
// plain `new Koa()`), and ExtendableContext, which every context type includes, so an app built
// as `new Koa<State, CustomContext>()` (or a router's context) sees `ctx.session` too.
declare module 'koa' {
  interface DefaultContext {
    /**
     * The request's session (latchkey). Values are typed by `SessionData`, which you augment:
     * `declare module 'latchkey' { interface SessionData { userId: string } }`.
     */
    session: Session;
  }
  interface ExtendableContext {
    /** The request's session (latchkey). */
    session: Session;
  }
}

/** The Koa application, as far as the adapter reads it: `app.keys`. */
export interface KoaKeysHolder {
  keys?: unknown;
}

/**
 * Session middleware for Koa 3 and Koa 2.
 *
 * `secret` defaults to `app.keys` (each key at least 32 characters; the first signs, all
 * verify, so `app.keys = [newKey, oldKey]` rotates). Pass the app as the second argument to
 * have missing or short keys reported when the middleware is created; without it they are
 * read once, on the first request. `cookie.secure: 'auto'` (the default) follows `ctx.secure`,
 * which honours `app.proxy`. A store failure is thrown with `status` 503 and `expose: false`.
 * An error thrown downstream propagates unchanged, and nothing is committed for that request.
 *
 * @example
 * ```ts
 * const app = new Koa();
 * app.keys = [process.env.SESSION_SECRET!];
 * app.use(session({}, app));
 * app.use((ctx) => {
 *   const visits = ((ctx.session.get('visits') as number | undefined) ?? 0) + 1;
 *   ctx.session.set('visits', visits);
 *   ctx.body = `visit ${visits}`;
 * });
 * ```
 * @throws ConfigError for invalid options: at once, or on the first request when `app.keys` is read then.
 */
export function session(options: SessionOptions = {}, app?: KoaKeysHolder): Koa.Middleware {
  checkOptionsObject(options);
  // With neither a secret nor the app at hand, the keys are only known from ctx.app.
  let engine = options.secret !== undefined || app !== undefined ? engineFor(options, app) : undefined;

  return async function latchkeySession(ctx, next) {
    const e = (engine ??= engineFor(options, ctx.app));
    const opened = e.open(ctx.req.headers.cookie, ctx.secure);
    // No cookie (or none that verifies) opens at once: no extra await on that path.
    const open = opened instanceof Promise ? await opened : opened;
    ctx.session = open.session;
    if (open.cacheControl !== undefined) ctx.set('Cache-Control', open.cacheControl);
    // A throw propagates unchanged past this point, and the failed request commits nothing.
    await next();
    await finishOnContext(e, open, ctx);
  };
}

function engineFor(options: SessionOptions, app: KoaKeysHolder | undefined): SessionEngine {
  if (options.secret !== undefined) return new SessionEngine(options);
  const keys = app?.keys;
  if (keys == null || (Array.isArray(keys) && keys.length === 0)) {
    throw new ConfigError('latchkey/koa needs a secret: pass session({ secret }) or set app.keys (each key at least 32 characters)', { option: 'secret' });
  }
  if (!Array.isArray(keys) || !keys.every((k): k is string => typeof k === 'string')) {
    // A Keygrip (or Buffer keys) cannot be read back as secrets.
    throw new ConfigError('app.keys must be an array of strings to serve as session secrets (for a Keygrip, pass session({ secret }))', { option: 'secret' });
  }
  try {
    return new SessionEngine({ ...options, secret: keys });
  } catch (err) {
    if (err instanceof ConfigError && err.option === 'secret') throw new ConfigError(`app.keys, used as the session secret: ${err.message}`, { cause: err, option: 'secret' });
    throw err;
  }
}

export type { SessionOptions };
// From '../index' (not '../engine/session'), so a program that imports only this entry point
// also loads latchkey's main declaration file: `declare module 'latchkey' { … }` needs it in the program.
export type { Session, SessionData } from '../index';
