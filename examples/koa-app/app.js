// The Koa example: a visit counter and a small cart in the session, log in (renew) and out
// (purge), on latchkey/koa's own handle (ctx.session.get/set/remove).
// Built against the package as users install it: `latchkey` resolves to this repo's dist/.
// What the three examples share (the store, the secret, the pages) is in ../shared/site.js.
'use strict';
const Koa = require('koa');
const { session } = require('latchkey/koa');
const site = require('../shared/site');

const FRAMEWORK = 'Koa';
const HOW = { who: "ctx.session.get('user')", logout: 'ctx.session.purge()' };

/** A tiny urlencoded form reader (at most 4 KiB), so the example needs no body-parser. */
async function form(ctx) {
  let raw = '';
  for await (const chunk of ctx.req) {
    raw += chunk;
    if (raw.length > 4096) ctx.throw(413);
  }
  return new URLSearchParams(raw);
}

/**
 * Errors: a store that is away is latchkey's status 503 (a friendly page that says so); anything
 * else is a plain page. Never a stack trace in the browser. First, so it also catches the
 * session middleware's own failures (loading before the handler, committing after it).
 */
async function errors(ctx, next) {
  try {
    await next();
  } catch (err) {
    const status = site.errorStatus(err);
    console.error(`${ctx.method} ${ctx.url}: ${status}:`, status === 503 ? err.message : err);
    for (const name of ctx.res.getHeaderNames()) ctx.res.removeHeader(name); // e.g. the Location of a redirect whose commit failed
    ctx.status = status;
    ctx.set(site.errorHeaders(err, status));
    ctx.type = 'html';
    ctx.body = site.errorPage(FRAMEWORK, status);
  }
}

function createApp(options = {}) {
  const secret = site.sessionSecret('koa-app'); // first: in production without SESSION_SECRET, stop before opening any connection
  const store = site.makeStore();
  const render = (ctx, content) => {
    ctx.type = 'html';
    ctx.body = site.page({ framework: FRAMEWORK, store, user: ctx.session.get('user'), how: HOW, ...content });
  };
  const app = new Koa();
  app.keys = [secret];
  app.use(errors);
  // Browsers ask for /favicon.ico on pages without an icon link: no session, no 404.
  app.use(async (ctx, next) => {
    if (ctx.path !== '/favicon.ico') return next();
    ctx.status = 204;
  });
  app.use(session({ store: store.store, ...options }, app));

  app.use(async (ctx) => {
    switch (`${ctx.method} ${ctx.path}`) {
      case 'GET /': {
        const visits = (ctx.session.get('visits') || 0) + 1;
        ctx.session.set('visits', visits);
        return render(ctx, {
          title: 'Hello',
          about: 'The visit counter lives in the session: each reload adds one, and it survives logging in.',
          body: site.bodies.home(
            visits,
            `This example uses latchkey's own handle (<code>ctx.session.get/set</code>, <code>renew()</code>, <code>purge()</code>);
the Express example uses <code>latchkey/express-session</code>, the drop-in for express-session, with passport.`,
          ),
        });
      }
      case 'GET /login': {
        const message = ctx.session.get('message');
        ctx.session.remove('message'); // shown once
        return render(ctx, {
          title: 'Log in',
          about: 'Logging in calls ctx.session.renew(): the session gets a new key, the cookie you had before stops working at once; your counter and cart come along.',
          body: site.bodies.login(message),
        });
      }
      case 'POST /login': {
        const body = await form(ctx);
        const user = site.checkLogin(body.get('user'), body.get('password'));
        if (!user) {
          ctx.session.set('message', site.WRONG_PASSWORD);
          return ctx.redirect('/login');
        }
        ctx.session.set('user', user);
        // A new key after a privilege change: a cookie planted before login is worthless (OWASP, session fixation).
        ctx.session.renew();
        return ctx.redirect('/');
      }
      case 'GET /cart':
        return render(ctx, {
          title: 'Cart',
          about: "The cart lives in the session (ctx.session.get('cart')): reload or come back later and it is still here; logging out deletes it.",
          body: site.bodies.cart(ctx.session.get('cart') || []),
        });
      case 'POST /cart':
        ctx.session.set('cart', site.addToCart(ctx.session.get('cart'), (await form(ctx)).get('item')));
        return ctx.redirect('/cart');
      case 'POST /cart/clear':
        ctx.session.remove('cart');
        return ctx.redirect('/cart');
      case 'POST /logout':
        // Deleted from the store, the cookie expired, and Clear-Site-Data: "cache" on this response.
        ctx.session.purge();
        return ctx.redirect('/');
      default:
        ctx.status = 404;
        ctx.type = 'html';
        ctx.body = site.errorPage(FRAMEWORK, 404);
    }
  });
  return app;
}

module.exports = { createApp, sessionSecret: (env) => site.sessionSecret('koa-app', env), DEV_SECRET: site.DEV_SECRET };
