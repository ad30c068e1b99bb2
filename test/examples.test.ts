/**
 * The packaged build, as users load it: `require` and `import` of every entry point
 * (run by `npm test` after `npm run build`), and every example walked end to end.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestListener } from 'node:http';
import type { FastifyInstance } from 'fastify';
import request from 'supertest';
import { Jar } from './support/cookies';
import { fastifyListener } from './support/harness';

const root = join(__dirname, '..');
const built = existsSync(join(root, 'dist', 'index.js'));

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
}

describe('the built package', () => {
  beforeAll(() => {
    if (!built) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  });

  it('loads with require', () => {
    const out = node(['-e', `
      const l = require('latchkey'); const e = require('latchkey/express'); const t = require('latchkey/testing');
      const k = require('latchkey/koa'); const f = require('latchkey/fastify');
      console.log([typeof l.MemoryStore, typeof l.SessionError, typeof e.session, typeof t.runStoreConformance, typeof k.session, typeof f.session].join(','));`]);
    expect(out.trim()).toBe('function,function,function,function,function,function');
  });

  it('loads with import, named exports included', () => {
    const out = node(['--input-type=module', '-e', `
      import { MemoryStore, ConfigError } from 'latchkey'; import { session } from 'latchkey/express';
      import { runStoreConformance } from 'latchkey/testing'; import { session as koa } from 'latchkey/koa';
      import fastify, { session as fastifyNamed } from 'latchkey/fastify';
      console.log([typeof MemoryStore, typeof ConfigError, typeof session, typeof runStoreConformance, typeof koa, fastify === fastifyNamed && typeof fastify].join(','));`]);
    expect(out.trim()).toBe('function,function,function,function,function,function');
  });
});

/** Each example's app, as the example builds it, on the MemoryStore default. */
const examples: [string, () => RequestListener][] = [
  ['examples/express-app', () => (require('../examples/express-app/app') as { createApp: () => RequestListener }).createApp()],
  ['examples/koa-app', () => (require('../examples/koa-app/app') as { createApp: () => { callback(): RequestListener } }).createApp().callback()],
  ['examples/fastify-app', () => fastifyListener((require('../examples/fastify-app/app') as { createApp: () => FastifyInstance }).createApp())],
];

/** Builds an app with REDIS_URL and DATABASE_URL unset: with them, the example would open a client nobody closes. */
function withoutRedis(make: () => RequestListener): RequestListener {
  const saved = { REDIS_URL: process.env.REDIS_URL, DATABASE_URL: process.env.DATABASE_URL };
  delete process.env.REDIS_URL;
  delete process.env.DATABASE_URL;
  try {
    return make();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  }
}

describe.each(examples)('%s', (_name, make) => {
  it('logs in, counts, fills a cart and logs out', async () => {
    const app = withoutRedis(make);
    const jar = new Jar();
    let res = await request(app).get('/');
    jar.take(res);
    expect(res.text).toContain('<b id="visits">1</b>');
    res = await request(app).get('/').set('Cookie', jar.header());
    jar.take(res);
    expect(res.text).toContain('<b id="visits">2</b>');
    const beforeLogin = jar.header();
    res = await request(app).post('/login').type('form').send({ user: 'ada' }).set('Cookie', jar.header());
    jar.take(res);
    expect(res.status).toBe(302);
    expect(jar.header()).not.toBe(beforeLogin);
    res = await request(app).post('/cart').type('form').send({ item: 'tea <b>' }).set('Cookie', jar.header());
    expect(res.status).toBe(302);
    jar.take(res);
    res = await request(app).get('/cart').set('Cookie', jar.header());
    jar.take(res);
    expect(res.text).toContain('Signed in as <b>ada</b>');
    expect(res.text).toContain('<li>tea &#60;b&#62;</li>');
    // The pre-login cookie is dead (renew kills the old key at once).
    expect((await request(app).get('/cart').set('Cookie', beforeLogin)).text).toContain('Not signed in.');
    const loggedIn = jar.header();
    res = await request(app).post('/logout').set('Cookie', jar.header());
    expect(res.status).toBe(302);
    jar.take(res);
    expect(jar.value).toBeUndefined();
    // The logged-out cookie is dead too, and a fresh visitor sees an empty cart.
    expect((await request(app).get('/cart').set('Cookie', loggedIn)).text).toContain('(empty)');
    expect((await request(app).get('/cart')).text).toContain('(empty)');
  });
});
