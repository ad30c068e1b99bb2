/**
 * `latchkey/koa-session`: a drop-in for koa-session on latchkey's engine, on `latchkey/adapter`
 * alone. `session(options, app)` as koa-session's; `ctx.session` is koa-session-shaped
 * (`ctx.session = null` logs out, `ctx.session = {…}` replaces the values).
 */
import type Koa from 'koa';
import { checkOptionsObject, type OpenSession, SessionEngine } from '../adapter';
import { type KoaSessionObject, type KoaSessionOptions, koaSessionView, translateOptions } from '../compat/koa-session';
import type { Properties } from '../compat/properties';
import { finishOnContext } from './koa-response';

const STATE = Symbol('latchkey/koa-session');

/** One request's session as `ctx.session` shows it: the view, or null once it was set to null. */
interface Holder {
  open: OpenSession;
  view: KoaSessionObject;
  props: Properties;
  removed: boolean;
}
type Ctx = Koa.Context & { [STATE]?: Holder };

/**
 * Session middleware for Koa with koa-session's `ctx.session`. `secret` defaults to `app.keys`.
 *
 * @example
 * ```ts
 * import session from 'latchkey/koa-session';
 * app.keys = [process.env.SESSION_SECRET!];
 * app.use(session({ maxAge: 86_400_000 }, app));
 * app.use((ctx) => {
 *   ctx.session.views = (ctx.session.views ?? 0) + 1;
 *   ctx.body = `views: ${ctx.session.views}`;
 * });
 * ```
 * @throws ConfigError for koa-session options with no meaning here, and unknown ones.
 */
export function session(options: KoaSessionOptions = {}, app?: Koa): Koa.Middleware {
  checkOptionsObject(options);
  const { latchkey, autoCommit } = translateOptions(options);
  const engineFor = (keys: unknown) => new SessionEngine(latchkey.secret === undefined ? { ...latchkey, secret: keys as string[] } : latchkey);
  let engine = app ? engineFor(app.keys) : undefined;
  if (app) defineSession(app.context);

  return async function latchkeyKoaSession(ctx: Ctx, next) {
    const e = (engine ??= engineFor(ctx.app.keys));
    defineSession(Object.getPrototypeOf(ctx) as object);
    const opened = e.open(ctx.req.headers.cookie, ctx.secure);
    const open = opened instanceof Promise ? await opened : opened;
    const commit = async (): Promise<void> => {
      h.props.flush();
      await finishOnContext(e, open, ctx);
    };
    const made = koaSessionView({ engine: e, open, use: () => {}, commit });
    const h: Holder = { open, view: made.session, props: made.props, removed: false };
    ctx[STATE] = h;
    if (open.cacheControl !== undefined) ctx.set('Cache-Control', open.cacheControl);
    // A throw propagates unchanged past this point, and the failed request commits nothing.
    await next();
    if (autoCommit) await commit();
    else e.discard(open); // autoCommit: false: only manuallyCommit() commits
  };
}

const defined = new WeakSet<object>();
/** `ctx.session` on the app's context prototype, once: a getter for the view, a setter for null and objects. */
function defineSession(proto: object): void {
  if (defined.has(proto)) return;
  defined.add(proto);
  Object.defineProperty(proto, 'session', {
    configurable: true,
    get(this: Ctx) {
      const h = this[STATE];
      return h === undefined || h.removed ? (h ? null : undefined) : h.view;
    },
    set(this: Ctx, value: unknown) {
      const h = this[STATE];
      if (h === undefined) throw new TypeError('ctx.session is set up by latchkey/koa-session: app.use(session()) must come first');
      if (value === null) {
        h.open.session.purge();
        h.removed = true;
      } else if (typeof value === 'object') {
        // Replace the values; after `= null` the old session stays deleted and these start a new one.
        if (!h.removed) h.open.session.clear();
        h.removed = false;
        h.props.reset();
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) h.props.set(k, v);
      } else {
        throw new TypeError('ctx.session can only be set to null or an object');
      }
    },
  });
}

export default session;
export type { KoaSessionObject, KoaSessionOptions };
// From '../index', so `declare module 'latchkey' { … }` resolves in a program importing only this entry point.
export type { SessionData } from '../index';
