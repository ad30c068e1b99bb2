/**
 * The commit on a Koa context, shared by the Koa adapters: finish the session after the chain
 * settled and add the headers the engine hands back; when the commit fails, the error carries the
 * headers its response must send (Koa's default handler sets `err.headers`; they are set here too
 * for an app's own error middleware).
 */
import type Koa from 'koa';
import type { OpenSession, SessionEngine } from '../adapter';

export async function finishOnContext(engine: SessionEngine, open: OpenSession, ctx: Koa.Context): Promise<void> {
  const finished = engine.finish(open, { status: ctx.status, cacheControl: ctx.response.get('Cache-Control'), headSent: ctx.headerSent });
  if (finished === null) return; // nothing to commit: no extra await
  let headers;
  try {
    headers = await finished;
  } catch (err) {
    const carried = (err as { headers?: Record<string, string> }).headers;
    if (carried) apply(ctx, carried);
    throw err;
  }
  if (headers !== null) apply(ctx, { 'Set-Cookie': headers.setCookie, ...headers.set });
}

function apply(ctx: Koa.Context, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'set-cookie') ctx.append('Set-Cookie', value);
    else ctx.set(name, value);
  }
}
