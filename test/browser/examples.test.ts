/**
 * Every example walked in a real browser: Debian's Chromium (/usr/bin/chromium, which .ci/run
 * installs) driven by playwright-core, against `node examples/<dir>/server.js` started in a child
 * process on a free 127.0.0.1 port, once on MemoryStore and once on RedisStore (REDIS_URL, under
 * a key prefix of this run's own, removed afterwards).
 *
 * The walk: the counter on reload; the cookie's attributes as the browser stored them
 * (`context.cookies()`) and `document.cookie` not showing it (HttpOnly); a wrong password, then a
 * login; the cart, kept over a reload; log out; the back button, which must show "Not signed in."
 * and an empty cart, whether Chromium would restore the page from the back/forward cache (the walk's
 * browser has it on, as users do: playwright turns it off by default) or, in a second browser
 * without it, from the HTTP cache; two users in two browser contexts with carts of their own; no response of 400 or more (no favicon
 * 404) and no script error on any page. A control shows that the back-button check can fail: with
 * latchkey's old caching (`cacheControl: 'cookie'`) Chromium shows the signed-in cart after logout.
 *
 * A failed step leaves a screenshot and the page's HTML in test-results/browser/
 * (`<example>-<store>-<step>.png` and `.html`); the failure message names them. Without
 * /usr/bin/chromium every test here fails, saying how to install it: never skipped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { REDIS_URL } from '../support/redis-server';

const root = join(__dirname, '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(root, 'test-results', 'browser');
/**
 * The flags this machine's Chromium needs (the machine notes): without the background-networking
 * ones it keeps trying to reach Google's hosts. playwright adds --headless (headless: true) and
 * --no-sandbox (chromiumSandbox: false), and a fresh --user-data-dir for every launch, removed at close.
 */
const FLAGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The examples, as in test/examples.test.ts; each one's session cookie name. */
const examples: { dir: string; cookie: string }[] = [
  { dir: 'express-app', cookie: 'connect.sid' },
  { dir: 'koa-app', cookie: 'sid' },
  { dir: 'fastify-app', cookie: 'sid' },
];
const stores = ['MemoryStore', 'RedisStore'] as const;
type StoreName = (typeof stores)[number];

/** Chromium as users have it, back/forward cache on. */
let browser: Browser | undefined;
/** Chromium with playwright's default flags, back/forward cache off: the back button goes to the HTTP cache. */
let noBfcache: Browser | undefined;
let redis: Redis | undefined;
let failures = 0;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser walk needs Debian's Chromium. .ci/run installs it (apt-get install chromium); by hand: apt-get install -y chromium`);
  }
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  rmSync(ARTIFACTS, { recursive: true, force: true });
  // ignoreDefaultArgs: playwright passes --disable-back-forward-cache; a user's browser has it on.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, ignoreDefaultArgs: ['--disable-back-forward-cache'], timeout: 30_000 });
  noBfcache = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, timeout: 30_000 });
  redis = new Redis(REDIS_URL, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
}, 40_000);

afterAll(async () => {
  await browser?.close();
  await noBfcache?.close();
  redis?.disconnect();
  if (failures > 0) console.log(`browser walk: screenshots and HTML of the failed steps are in ${ARTIFACTS}`);
});

/** A fresh context (its own cookies and caches) with bounded waits. */
async function newContext(which = browser): Promise<BrowserContext> {
  if (!which) throw new Error('Chromium did not start (see the first failure)');
  const context = await which.newContext();
  context.setDefaultTimeout(5_000);
  context.setDefaultNavigationTimeout(10_000);
  return context;
}

/** What a page showed that it should not: responses of 400 or more, requests for /favicon.ico, script errors. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`${res.status()} ${res.request().method()} ${res.url()}`);
  });
  page.on('request', (req) => {
    if (new URL(req.url()).pathname === '/favicon.ico') problems.push(`requested ${req.url()}`);
  });
  page.on('pageerror', (err) => problems.push(`script error: ${err.message}`));
  return problems;
}

/** Runs one step; on failure writes `<label>.png` and `<label>.html` of the page and names them in the error. */
async function step<T>(page: Page, label: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    failures++;
    mkdirSync(ARTIFACTS, { recursive: true });
    const base = join(ARTIFACTS, label.replace(/[^\w.-]+/g, '-'));
    await page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 5_000 }).catch(() => {});
    writeFileSync(`${base}.html`, await page.content().catch((e: Error) => `(no page content: ${e.message})`));
    if (err instanceof Error) err.message = `step "${label}" failed (screenshot and HTML: ${base}.png, ${base}.html)\n${err.message}`;
    throw err;
  }
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();
const items = (page: Page) => page.locator('#cart li').allInnerTexts();

/** Submits the form holding `selector` and waits for the page it leads to (a redirect followed). */
async function submit(page: Page, selector: string): Promise<void> {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.locator(selector).click()]);
}

async function logIn(page: Page, user: string, password: string): Promise<void> {
  await page.locator('input[name=user]').fill(user);
  await page.locator('input[name=password]').fill(password);
  await submit(page, 'form[action="/login"] button');
}

async function addItem(page: Page, item: string): Promise<void> {
  await page.locator('input[name=item]').fill(item);
  await submit(page, 'form[action="/cart"] button');
}

// The code run in the page is given as text: this project's TypeScript has no DOM types.

/**
 * Goes back one page and returns what it shows, and how it came: restored from the back/forward
 * cache (`pageshow` persisted), or loaded (the navigation entry's transferSize is 0 when the
 * HTTP cache served it). A restore fires no load event, so this waits for the commit only.
 */
async function back(page: Page): Promise<{ who: string; cart: string[]; how: string }> {
  await page.goBack({ waitUntil: 'commit' });
  await page.waitForFunction("document.readyState === 'complete'", null, { timeout: 5_000 });
  const how = await page.evaluate<string>(`(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return window.restored ? 'from the back/forward cache' : nav && nav.transferSize === 0 ? 'from the HTTP cache' : 'from the server';
  })()`);
  return { who: await text(page, '#who'), cart: await items(page), how };
}

/** Signs in as ada, adds tea, opens the cart again (a read-only page: no Set-Cookie), logs out and goes back to it. */
async function logOutAndBack(page: Page, base: string): Promise<{ who: string; cart: string[]; how: string }> {
  await page.goto(`${base}/login`);
  await logIn(page, 'ada', 'demo');
  await page.goto(`${base}/cart`);
  await addItem(page, 'tea');
  await page.goto(`${base}/`);
  await page.goto(`${base}/cart`);
  expect(await items(page)).toEqual(['tea']);
  await submit(page, 'form[action="/logout"] button');
  return back(page);
}

/** Records, on every page of the context, whether it was restored from the back/forward cache. */
async function noteRestores(context: BrowserContext): Promise<void> {
  await context.addInitScript("addEventListener('pageshow', (e) => { window.restored = e.persisted; })");
}

/** A running example: its child process and base URL. */
interface Running {
  child: ChildProcess;
  base: string;
  output: () => string;
}

/** Starts `node examples/<dir>/server.js` on a free port (PORT=0) and waits (10 s at most) for the line saying where. */
async function start(dir: string, store: StoreName, prefix: string): Promise<Running> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', NODE_ENV: 'production', SESSION_SECRET: randomBytes(32).toString('base64url') };
  delete env.REDIS_URL;
  delete env.DATABASE_URL;
  delete env.REDIS_PREFIX;
  if (store === 'RedisStore') Object.assign(env, { REDIS_URL, REDIS_PREFIX: prefix });
  const child = spawn(process.execPath, [join(root, 'examples', dir, 'server.js')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`examples/${dir} did not say where it listens within 10 s:\n${out}`)), 10_000);
    const seen = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /on (http:\/\/127\.0\.0\.1:\d+) \((\w+)\)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      if (m[2] !== store) reject(new Error(`examples/${dir} started on ${m[2]}, expected ${store}:\n${out}`));
      else resolve(m[1]!);
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`examples/${dir} exited (${code ?? signal}) before listening:\n${out}`));
    });
  }).catch(async (err: Error) => {
    await stop(child);
    throw err;
  });
  return { child, base, output: () => out };
}

/** Stops a child by its pid: SIGTERM, then SIGKILL after 5 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5_000);
  await exited;
  clearTimeout(killer);
}

/** The Redis keys under `prefix` (SCAN, bounded by Redis' own pace). */
async function keysUnder(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis!.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

describe.each(examples.flatMap((e) => stores.map((store) => ({ ...e, store }))))('examples/$dir on $store, in Chromium', ({ dir, cookie, store }) => {
  const prefix = `latchkey-browser:${dir}:${process.pid}:`;
  let app: Running | undefined;
  beforeAll(async () => {
    if (!browser) return; // the file's beforeAll failed and said why
    app = await start(dir, store, prefix);
  }, 15_000);
  afterAll(async () => {
    if (app) await stop(app.child);
    if (store === 'RedisStore' && redis) {
      const keys = await keysUnder(prefix);
      if (keys.length) await redis.del(...keys);
    }
  });
  const label = (s: string) => `${dir}-${store}-${s}`;
  const running = (): Running => {
    if (!app) throw new Error('the example did not start (see the first failure)');
    return app;
  };

  it('counts, keeps an HttpOnly cookie, logs in, keeps the cart over a reload, logs out, and the back button shows nothing signed in', async () => {
    const { base } = running();
    const context = await newContext();
    try {
      await noteRestores(context);
      const page = await context.newPage();
      const problems = watch(page);

      await step(page, label('counter'), async () => {
        await page.goto(`${base}/`);
        expect(await text(page, '#visits')).toBe('1');
        await page.reload();
        expect(await text(page, '#visits')).toBe('2');
        expect(await text(page, '#store')).toBe(store);
        expect(await text(page, '#who')).toBe('Not signed in.');
      });

      const anonymous = await step(page, label('cookie'), async () => {
        const jar = await context.cookies(base);
        expect(jar.map((c) => c.name)).toEqual([cookie]);
        const c = jar[0]!;
        expect({ httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path, secure: c.secure, domain: c.domain }).toEqual({ httpOnly: true, sameSite: 'Lax', path: '/', secure: false, domain: '127.0.0.1' });
        // A persistent cookie of one day (both examples' TTL), not a browser-session one (expires -1).
        const left = c.expires - Date.now() / 1000;
        expect(left).toBeGreaterThan(86_400 - 120);
        expect(left).toBeLessThanOrEqual(86_400 + 5);
        // HttpOnly: the page's scripts cannot read it.
        expect(await page.evaluate<string>('document.cookie')).not.toContain(`${cookie}=`);
        return c.value;
      });

      await step(page, label('wrong-password'), async () => {
        await submit(page, 'nav a[href="/login"]');
        expect(await page.locator('main').innerText()).toContain('the password demo');
        await logIn(page, 'ada', 'not-the-password');
        expect(new URL(page.url()).pathname).toBe('/login');
        expect(await text(page, '#message')).toContain('"demo"');
        expect(await text(page, '#who')).toBe('Not signed in.');
      });

      const signedIn = await step(page, label('log-in'), async () => {
        await logIn(page, 'ada', 'demo');
        expect(new URL(page.url()).pathname).toBe('/');
        expect(await text(page, '#who')).toContain('Signed in as ada');
        expect(await text(page, '#visits')).toBe('3'); // the counter came along through the new key
        const [c] = await context.cookies(base);
        expect(c?.value).not.toBe(anonymous); // a new key at login
        return c!.value;
      });

      await step(page, label('cart'), async () => {
        await submit(page, 'nav a[href="/cart"]');
        expect(await items(page)).toEqual(['(empty)']);
        await addItem(page, 'tea');
        await addItem(page, 'milk');
        expect(await items(page)).toEqual(['tea', 'milk']);
        await page.reload();
        expect(await items(page)).toEqual(['tea', 'milk']);
        expect(await text(page, '#who')).toContain('Signed in as ada');
        if (store === 'RedisStore') expect((await keysUnder(prefix)).length).toBeGreaterThan(0); // really in Redis
      });

      await step(page, label('log-out'), async () => {
        const [res] = await Promise.all([page.waitForResponse((r) => new URL(r.url()).pathname === '/logout'), submit(page, 'form[action="/logout"] button')]);
        expect(res.status()).toBe(302);
        expect((await res.allHeaders())['clear-site-data']).toBe('"cache"');
        expect(new URL(page.url()).pathname).toBe('/');
        expect(await text(page, '#who')).toBe('Not signed in.');
        expect(await text(page, '#visits')).toBe('1'); // a new, anonymous session
        const jar = await context.cookies(base);
        expect(jar.map((c) => c.value)).not.toContain(signedIn);
      });

      // Twice back: the cart after the reload, then the cart after adding tea. Each must come from
      // the server (a signed-in page restored from the back/forward cache or the HTTP cache fails here).
      for (const n of [1, 2]) {
        await step(page, label(`back-${n}`), async () => {
          const shown = await back(page);
          expect(new URL(page.url()).pathname).toBe('/cart');
          expect({ who: shown.who, cart: shown.cart, how: shown.how }).toEqual({ who: 'Not signed in.', cart: ['(empty)'], how: 'from the server' });
        });
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 45_000);

  it('two users in two browser contexts keep carts of their own', async () => {
    const { base } = running();
    const [a, b] = [await newContext(), await newContext()];
    try {
      const pages = [await a.newPage(), await b.newPage()];
      const problems = pages.flatMap((p) => watch(p));
      const users = [
        { page: pages[0]!, name: 'ada', item: 'tea' },
        { page: pages[1]!, name: 'bob', item: 'coffee' },
      ];
      for (const u of users) {
        await step(u.page, label(`two-users-${u.name}`), async () => {
          await u.page.goto(`${base}/login`);
          await logIn(u.page, u.name, 'demo');
          await u.page.goto(`${base}/cart`);
          await addItem(u.page, u.item);
        });
      }
      for (const u of users) {
        await step(u.page, label(`two-users-${u.name}-again`), async () => {
          await u.page.reload();
          expect(await text(u.page, '#who')).toContain(`Signed in as ${u.name}`);
          expect(await items(u.page)).toEqual([u.item]);
        });
      }
      const [ca, cb] = [await a.cookies(base), await b.cookies(base)];
      expect(ca[0]?.value).not.toBe(cb[0]?.value);
      expect(problems).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  }, 30_000);

  it('without the back/forward cache, the back button after logout does not get the signed-in cart from the HTTP cache', async () => {
    const { base } = running();
    const context = await newContext(noBfcache);
    try {
      await noteRestores(context);
      const page = await context.newPage();
      const problems = watch(page);
      await step(page, label('back-http-cache'), async () => {
        expect(await logOutAndBack(page, base)).toEqual({ who: 'Not signed in.', cart: ['(empty)'], how: 'from the server' });
      });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 30_000);
});

describe('the control: the back-button check sees the bug it guards against', () => {
  it("with latchkey's old caching (no-store only on responses that set the cookie), Chromium shows the signed-in cart after logout", async () => {
    // In this process (the example's createApp, its options passed to the session middleware),
    // so the example itself needs no switch for it.
    if (!browser) throw new Error('Chromium did not start (see the first failure)');
    const saved = { REDIS_URL: process.env.REDIS_URL, DATABASE_URL: process.env.DATABASE_URL };
    delete process.env.REDIS_URL;
    delete process.env.DATABASE_URL;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createApp } = require('../../examples/koa-app/app') as { createApp(o: object): { listen(port: number, host: string): import('node:http').Server } };
    const server = createApp({ cacheControl: 'cookie' }).listen(0, '127.0.0.1');
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
    const context = await newContext();
    try {
      if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await noteRestores(context);
      const page = await context.newPage();
      await step(page, 'control-koa-app-cacheControl-cookie', async () => {
        // The second look at the cart sets no cookie, so in the old mode it carries no no-store.
        const shown = await logOutAndBack(page, base);
        if (shown.who === 'Not signed in.') {
          throw new Error(
            'the control no longer reproduces the stale signed-in page: Chromium now evicts such pages by itself, so the walk above no longer proves that latchkey\'s no-store is what protects the back button; revisit the walk',
          );
        }
        expect(shown).toEqual({ who: expect.stringContaining('Signed in as ada'), cart: ['tea'], how: 'from the back/forward cache' });
      });
    } finally {
      await context.close();
      await new Promise((resolve) => server.close(resolve));
    }
  }, 30_000);
});
