// A whole adapter for plain node:http on latchkey/adapter alone (ARCHITECTURE.md shows this file).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { type Session, SessionEngine, type SessionOptions } from 'latchkey/adapter';

/** What a handler answers; the adapter writes it once the session is committed. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export function withSession(options: SessionOptions, handler: (session: Session, req: IncomingMessage) => Promise<Reply>, onError: (err: unknown) => Reply) {
  const engine = new SessionEngine(options);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let reply: Reply;
    try {
      const open = await engine.open(req.headers.cookie, (req.socket as TLSSocket).encrypted === true);
      reply = await handler(open.session, req);
      const cacheControl = reply.headers?.['cache-control'] ?? open.cacheControl;
      const headers = await engine.finish(open, { status: reply.status, cacheControl });
      if (headers) res.setHeader('Set-Cookie', headers.setCookie);
      reply.headers = { ...(cacheControl && { 'cache-control': cacheControl }), ...reply.headers, ...headers?.set };
    } catch (err) {
      reply = onError(err); // a handler that threw, or a store that failed: nothing was committed
      reply.headers = { ...reply.headers, ...(err as { headers?: Record<string, string> }).headers }; // a cookie to keep
    }
    res.writeHead(reply.status, reply.headers).end(reply.body);
  };
}
