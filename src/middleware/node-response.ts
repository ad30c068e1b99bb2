/**
 * The commit on a Node response, shared by the Express adapters: hold the head (once, when the
 * session first needs a commit), finish the session with the status the head will carry, and add
 * the headers the engine hands back, to the response or, when the commit fails, to the error
 * response the framework's error path writes.
 */
import type { ServerResponse } from 'node:http';
import { holdHead, type OpenSession, type SessionEngine } from '../adapter';

type Next = (err?: unknown) => void;

/** Returns the `onChange` to give `engine.open`: it arms `res` the first time it is called. `beforeFinish` runs first (a view's flush). */
export function commitBeforeHead(engine: SessionEngine, res: ServerResponse, next: Next, beforeFinish?: () => void): (open: OpenSession) => void {
  let armed = false;
  return (open) => {
    if (armed) return;
    armed = true;
    // Changed after the head left unarmed: saved under the key the client holds, nothing sent.
    if (res.headersSent) return void engine.finish(open, { status: res.statusCode, headSent: true });
    holdHead(
      res,
      async (status) => {
        beforeFinish?.();
        const headers = await engine.finish(open, { status, cacheControl: res.getHeader('Cache-Control') });
        if (headers !== null) apply(res, { 'Set-Cookie': headers.setCookie, ...headers.set });
      },
      // The store failed: the framework's error path answers (503 from err.status), with the headers the error carries.
      (err) => {
        const carried = (err as { headers?: Record<string, string> }).headers;
        if (carried) apply(res, carried);
        next(err);
      },
    );
  };
}

function apply(res: ServerResponse, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'set-cookie') res.appendHeader('Set-Cookie', value);
    else res.setHeader(name, value);
  }
}
