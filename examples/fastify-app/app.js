// The Fastify example: a visit counter and a small cart in the session, log in (renew) and out
// (purge), on latchkey/fastify's handle (request.session.get/set/remove), as the Koa one does.
// Built against the package as users install it: `latchkey` resolves to this repo's dist/.
// What the three examples share (the store, the secret, the pages) is in ../shared/site.js.
'use strict';
const Fastify = require('fastify');
const { session } = require('latchkey/fastify');
const site = require('../shared/site');

const FRAMEWORK = 'Fastify';
const HOW = { who: "request.session.get('user')", logout: 'request.session.purge()' };

/**
 * Errors: a store that is away is latchkey's status 503 (a friendly page that says so); anything
 * else is a plain page. Never a stack trace in the browser (Fastify's error handler, for the
 * session plugin's failures too).
 */
function errors(err, request, reply) {
  const status = site.errorStatus(err);
  console.error(`${request.method} ${request.url}: ${status}:`, status === 503 ? err.message : err);
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name); // e.g. the Location of a redirect whose commit failed
  return reply.code(status).headers(site.errorHeaders(err, status)).type('text/html; charset=utf-8').send(site.errorPage(FRAMEWORK, status));
}

function createApp(options = {}) {
  const secret = site.sessionSecret('fastify-app'); // first: in production without SESSION_SECRET, stop before opening any connection
  const store = site.makeStore();
  const render = (request, reply, content) =>
    reply.type('text/html; charset=utf-8').send(site.page({ framework: FRAMEWORK, store, user: request.session.get('user'), how: HOW, ...content }));
  const app = Fastify();
  // HTML forms post urlencoded bodies: Fastify's own content-type parser hook, so the example needs no @fastify/formbody.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body)));
  });
  app.setErrorHandler(errors);
  app.setNotFoundHandler((_request, reply) => reply.code(404).type('text/html; charset=utf-8').send(site.errorPage(FRAMEWORK, 404)));
  // Browsers ask for /favicon.ico on pages without an icon link: a 204, no session, no 404.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
  app.register(session, { secret, store: store.store, ...options });

  app.get('/', async (request, reply) => {
    const visits = (request.session.get('visits') || 0) + 1;
    request.session.set('visits', visits);
    return render(request, reply, {
      title: 'Hello',
      about: 'The visit counter lives in the session: each reload adds one, and it survives logging in.',
      body: site.bodies.home(
        visits,
        `This example uses latchkey's handle on Fastify (<code>request.session.get/set</code>, <code>renew()</code>, <code>purge()</code>);
the Express example uses <code>latchkey/express-session</code>, the drop-in for express-session, with passport.`,
      ),
    });
  });

  app.get('/login', async (request, reply) => {
    const message = request.session.get('message');
    request.session.remove('message'); // shown once
    return render(request, reply, {
      title: 'Log in',
      about: 'Logging in calls request.session.renew(): the session gets a new key, the cookie you had before stops working at once; your counter and cart come along.',
      body: site.bodies.login(message),
    });
  });

  app.post('/login', async (request, reply) => {
    const body = request.body || {};
    const user = site.checkLogin(body.user, body.password);
    if (!user) {
      request.session.set('message', site.WRONG_PASSWORD);
      return reply.redirect('/login');
    }
    request.session.set('user', user);
    // A new key after a privilege change: a cookie planted before login is worthless (OWASP, session fixation).
    request.session.renew();
    return reply.redirect('/');
  });

  app.get('/cart', async (request, reply) =>
    render(request, reply, {
      title: 'Cart',
      about: "The cart lives in the session (request.session.get('cart')): reload or come back later and it is still here; logging out deletes it.",
      body: site.bodies.cart(request.session.get('cart') || []),
    }),
  );

  app.post('/cart', async (request, reply) => {
    request.session.set('cart', site.addToCart(request.session.get('cart'), (request.body || {}).item));
    return reply.redirect('/cart');
  });

  app.post('/cart/clear', async (request, reply) => {
    request.session.remove('cart');
    return reply.redirect('/cart');
  });

  app.post('/logout', async (request, reply) => {
    // Deleted from the store, the cookie expired, and Clear-Site-Data: "cache" on this response.
    request.session.purge();
    return reply.redirect('/');
  });
  return app;
}

module.exports = { createApp, sessionSecret: (env) => site.sessionSecret('fastify-app', env), DEV_SECRET: site.DEV_SECRET };
