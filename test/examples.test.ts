/**
 * The packaged build, as users load it: `require` and `import` of every entry point
 * (run by `npm test` after `npm run build`), and the Express example walked end to end.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { Jar } from './support/cookies';

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
      const k = require('latchkey/koa');
      console.log([typeof l.MemoryStore, typeof l.SessionError, typeof e.session, typeof t.runStoreConformance, typeof k.session].join(','));`]);
    expect(out.trim()).toBe('function,function,function,function,function');
  });

  it('loads with import, named exports included', () => {
    const out = node(['--input-type=module', '-e', `
      import { MemoryStore, ConfigError } from 'latchkey'; import { session } from 'latchkey/express';
      import { runStoreConformance } from 'latchkey/testing'; import { session as koa } from 'latchkey/koa';
      console.log([typeof MemoryStore, typeof ConfigError, typeof session, typeof runStoreConformance, typeof koa].join(','));`]);
    expect(out.trim()).toBe('function,function,function,function,function');
  });
});

describe('examples/express-app', () => {
  it('logs in, counts, fills a cart and logs out', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createApp } = require('../examples/express-app/app') as { createApp: () => import('node:http').RequestListener };
    // The MemoryStore variant: with REDIS_URL or DATABASE_URL set the example would open a client nobody closes.
    const { REDIS_URL: redisUrl, DATABASE_URL: databaseUrl } = process.env;
    delete process.env.REDIS_URL;
    delete process.env.DATABASE_URL;
    const app = createApp();
    if (redisUrl !== undefined) process.env.REDIS_URL = redisUrl;
    if (databaseUrl !== undefined) process.env.DATABASE_URL = databaseUrl;
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
    jar.take(res);
    res = await request(app).get('/cart').set('Cookie', jar.header());
    jar.take(res);
    expect(res.text).toContain('Signed in as <b>ada</b>');
    expect(res.text).toContain('<li>tea &#60;b&#62;</li>');
    // The pre-login cookie is dead (renew kills the old key at once).
    expect((await request(app).get('/cart').set('Cookie', beforeLogin)).text).toContain('Not signed in.');
    res = await request(app).post('/logout').set('Cookie', jar.header());
    jar.take(res);
    expect(jar.value).toBeUndefined();
    expect((await request(app).get('/cart')).text).toContain('(empty)');
  });
});
