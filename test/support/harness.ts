/**
 * One app, built the same way on every framework, so a scenario table runs against each
 * adapter and a behaviour that differs between them fails a test. The routes live in one
 * framework-free function; the adapters are the only thing that differs.
 */
import type { RequestListener } from 'node:http';
import express5 from 'express';
import type { Session, SessionOptions } from 'latchkey';
import { session as expressSession } from 'latchkey/express';
import { session as koaSession } from 'latchkey/koa';
import Koa3 from 'koa';
import Fastify, { type FastifyInstance } from 'fastify';
import { session as fastifySession } from 'latchkey/fastify';
import { withSession } from './node-http-adapter';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as typeof express5;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Koa2 = require('koa2') as typeof Koa3;
// Fastify 4 at run time; typed as Fastify 5 (the routes and hooks used here are the same in both).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Fastify4 = require('fastify4') as typeof Fastify;

export interface RouteResult {
  status: number;
  body: unknown;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The routes every test app serves. */
export async function handle(s: Session, path: string, q: URLSearchParams): Promise<RouteResult> {
  const key = q.get('key') ?? 'k';
  const delay = Number(q.get('delay') ?? 0);
  if (delay > 0) await sleep(delay);
  const ok = (): RouteResult => ({ status: 200, body: { status: s.status, isNew: s.isNew, keys: s.keys() } });
  switch (path) {
    case '/anon':
      return { status: 200, body: 'anon' };
    case '/read':
      return { status: 200, body: { value: s.get(key) ?? null, isNew: s.isNew, status: s.status } };
    case '/dump':
      return { status: 200, body: Object.fromEntries(s.entries()) };
    case '/set':
      s.set(key, JSON.parse(q.get('json') ?? 'null'));
      return ok();
    case '/incr': {
      const n = (s.get(key) as number | undefined) ?? 0;
      s.set(key, n + 1);
      return { status: 200, body: n + 1 };
    }
    case '/remove':
      s.remove(key);
      return ok();
    case '/clear':
      s.clear();
      return ok();
    case '/purge':
      s.purge();
      return ok();
    case '/renew':
      s.renew();
      return ok();
    case '/login':
      s.set('user', q.get('user') ?? 'ada');
      s.renew();
      return ok();
    case '/remember':
      if (q.has('ttl')) s.ttl = Number(q.get('ttl'));
      if (q.has('persistent')) s.persistent = q.get('persistent') === '1';
      s.set('remembered', true);
      return { status: 200, body: { ttl: s.ttl, persistent: s.persistent } };
    case '/settings':
      return { status: 200, body: { ttl: s.ttl, persistent: s.persistent } };
    case '/set-then-500':
      s.set(key, 'lost');
      return { status: 500, body: 'failed' };
    case '/set-then-503':
      s.set(key, 'lost');
      return { status: 503, body: 'failed' };
    case '/set-then-throw':
      s.set(key, 'lost');
      throw new Error('handler failed');
    case '/set-bad':
      return { status: 200, body: { error: trySetBad(s, q.get('kind') ?? '') } };
    default:
      return { status: 404, body: 'no route' };
  }
}

function trySetBad(s: Session, kind: string): string | null {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const values: Record<string, unknown> = {
    function: () => 1,
    bigint: BigInt(1),
    cycle,
    symbol: Symbol('x'),
    undefined: undefined,
    'array-undefined': [undefined],
    nested: { f: () => 1 },
    nan: Number.NaN,
  };
  try {
    s.set(`bad-${kind}`, values[kind]);
    return null;
  } catch (err) {
    return err instanceof TypeError ? `TypeError: ${err.message}` : `other: ${String(err)}`;
  }
}

/** What the error path answers, alike on every framework: the error's status and code. */
export function errorBody(err: unknown): { status: number; body: { error: string } } {
  const e = err as { status?: number; code?: string; message?: string };
  return { status: typeof e.status === 'number' ? e.status : 500, body: { error: e.code ?? e.message ?? 'error' } };
}

export interface Framework {
  name: string;
  /** A request listener serving the test routes behind latchkey with `options`. */
  app(options: SessionOptions, setup?: (app: unknown) => void): RequestListener;
}

function expressFramework(name: string, lib: typeof express5): Framework {
  return {
    name,
    app(options, setup) {
      const app = lib();
      setup?.(app);
      app.use(expressSession(options));
      app.use((req, res, next) => {
        const q = new URL(req.originalUrl, 'http://x').searchParams;
        handle(req.session, req.path, q).then((r) => res.status(r.status).json(r.body), next);
      });
      app.use((err: unknown, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) => {
        const { status, body } = errorBody(err);
        res.status(status).json(body);
      });
      return app as unknown as RequestListener;
    },
  };
}

export const express5Framework = expressFramework('express 5', express5);
export const express4Framework = expressFramework('express 4', express4);

function koaFramework(name: string, Lib: typeof Koa3): Framework {
  return {
    name,
    app(options, setup) {
      const app = new Lib();
      setup?.(app);
      // Answers errors like the Express apps' error handler, so scenarios compare equal.
      app.use(async (ctx, next) => {
        try {
          await next();
        } catch (err) {
          const { status, body } = errorBody(err);
          ctx.status = status;
          ctx.body = body;
        }
      });
      app.use(koaSession(options));
      app.use(async (ctx) => {
        const r = await handle(ctx.session, ctx.path, ctx.URL.searchParams);
        ctx.status = r.status;
        ctx.body = r.body;
      });
      return app.callback();
    },
  };
}

export const koa3Framework = koaFramework('koa 3', Koa3);
export const koa2Framework = koaFramework('koa 2', Koa2);

/** Plain node:http through the 30-line adapter in ARCHITECTURE.md: proof that latchkey/adapter is enough. */
export const nodeHttpFramework: Framework = {
  name: 'node:http',
  app(options) {
    const json = (r: RouteResult) => {
      const body = JSON.stringify(r.body);
      return { status: r.status, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, body };
    };
    return withSession(
      options,
      async (s, req) => {
        const url = new URL(req.url ?? '/', 'http://x');
        return json(await handle(s, url.pathname, url.searchParams));
      },
      (err) => json(errorBody(err)),
    ) as RequestListener;
  },
};

/**
 * A Fastify app as a request listener: requests wait for `ready()` (plugins load asynchronously),
 * then go to the app's own routing. A plugin that fails to load (a ConfigError) answers 500 with it.
 */
export function fastifyListener(app: FastifyInstance): RequestListener {
  const ready = Promise.resolve(app.ready());
  ready.catch(() => {}); // reported per request below
  return (req, res) => {
    ready.then(
      () => app.routing(req, res),
      (err: Error) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message })),
    );
  };
}

/** Fastify through latchkey/fastify: the same routes, errors answered by setErrorHandler like the others' error paths. */
function fastifyFramework(name: string, lib: typeof Fastify): Framework {
  return {
    name,
    app(options, setup) {
      const app = lib();
      setup?.(app);
      app.register(fastifySession, options);
      app.setErrorHandler((err, _request, reply) => {
        const { status, body } = errorBody(err);
        return reply.code(status).send(body);
      });
      app.all('/*', async (request, reply) => {
        const url = new URL(request.url, 'http://x');
        const r = await handle(request.session, url.pathname, url.searchParams);
        return reply.code(r.status).type('application/json').send(JSON.stringify(r.body));
      });
      return fastifyListener(app);
    },
  };
}

export const fastify5Framework = fastifyFramework('fastify 5', Fastify);
export const fastify4Framework = fastifyFramework('fastify 4', Fastify4);

/** Every framework the shared scenario table runs against. */
export const frameworks: Framework[] = [express5Framework, express4Framework, koa3Framework, koa2Framework, nodeHttpFramework, fastify5Framework, fastify4Framework];

export const SECRET = 'a-test-secret-that-is-long-enough-0001';
export const OLD_SECRET = 'an-older-secret-that-is-long-enough-02';
