// The Express example: a visit counter and a small cart in the session, log in and out through
// passport (passport-local) on latchkey/express-session, the drop-in for express-session.
// Built against the package as users install it: `latchkey` resolves to this repo's dist/.
// What the three examples share (the store, the secret, the pages) is in ../shared/site.js.
'use strict';
const express = require('express');
const passport = require('passport');
const { Strategy: LocalStrategy } = require('passport-local');
const { session } = require('latchkey/express-session');
const site = require('../shared/site');

const FRAMEWORK = 'Express';
/** How the pages say who is signed in, and how logging out works, here. */
const HOW = { who: 'req.user, from passport', logout: 'req.logout' };

function createApp(options = {}) {
  const secret = site.sessionSecret('express-app'); // first: in production without SESSION_SECRET, stop before opening any connection
  const store = site.makeStore();
  const render = (req, content) => site.page({ framework: FRAMEWORK, store, user: req.user && req.user.name, how: HOW, ...content });
  const app = express();
  app.disable('x-powered-by');
  // Browsers ask for /favicon.ico on pages without an icon link (Express's own 404 page): no session, no 404.
  app.get('/favicon.ico', (_req, res) => void res.status(204).end());
  app.use(express.urlencoded({ extended: false, limit: '4kb' }));
  // The drop-in: req.session is shaped like express-session's, which is what passport uses.
  app.use(
    session({
      secret,
      store: store.store,
      cookie: { maxAge: 24 * 60 * 60 * 1000 }, // a persistent cookie (express-session's default is a browser-session one)
      ...options,
    }),
  );

  // Passport, with passport-local and a fixed demo user table: any name, password "demo".
  const auth = new passport.Passport();
  auth.use(
    new LocalStrategy({ usernameField: 'user', passwordField: 'password' }, (name, password, done) => {
      const user = site.checkLogin(name, password);
      done(null, user ? { name: user } : false, user ? undefined : { message: site.WRONG_PASSWORD });
    }),
  );
  auth.serializeUser((user, done) => done(null, user.name)); // req.session.passport.user
  auth.deserializeUser((name, done) => done(null, { name })); // req.user on every request
  app.use(auth.authenticate('session'));

  app.get('/', (req, res) => {
    req.session.visits = (req.session.visits || 0) + 1;
    res.send(
      render(req, {
        title: 'Hello',
        about: 'The visit counter lives in the session: each reload adds one, and it survives logging in.',
        body: site.bodies.home(
          req.session.visits,
          `This example uses <code>latchkey/express-session</code>, the drop-in for express-session, so passport signs you in unchanged;
the Koa and Fastify examples use latchkey's own handle (<code>ctx.session.get/set</code>, <code>renew()</code>, <code>purge()</code>).`,
        ),
      }),
    );
  });

  app.get('/login', (req, res) => {
    // passport's failureMessage leaves the reason in req.session.messages: show it once.
    const messages = req.session.messages || [];
    delete req.session.messages;
    res.send(
      render(req, {
        title: 'Log in',
        about: 'Logging in (passport, on the drop-in) gives the session a new key: the cookie you had before stops working at once; your counter and cart come along.',
        body: site.bodies.login(messages[messages.length - 1]),
      }),
    );
  });

  // keepSessionInfo: passport regenerates the session (new key) and copies the counter and cart into it.
  app.post('/login', auth.authenticate('local', { successRedirect: '/', failureRedirect: '/login', failureMessage: true, keepSessionInfo: true }));

  app.get('/cart', (req, res) => {
    res.send(
      render(req, {
        title: 'Cart',
        about: 'The cart lives in the session (req.session.cart): reload or come back later and it is still here; logging out deletes it.',
        body: site.bodies.cart(req.session.cart || []),
      }),
    );
  });

  app.post('/cart', (req, res) => {
    req.session.cart = site.addToCart(req.session.cart, req.body.item);
    res.redirect('/cart');
  });

  app.post('/cart/clear', (req, res) => {
    delete req.session.cart;
    res.redirect('/cart');
  });

  // req.logout (passport) drops the user and regenerates the session with nothing in it; latchkey
  // purges an emptied session at commit: deleted from the store, the cookie expired, and the
  // response says Clear-Site-Data: "cache" so the back button cannot show a signed-in page.
  app.post('/logout', (req, res, next) => {
    req.logout((err) => (err ? next(err) : res.redirect('/')));
  });

  // Errors: a store that is away is latchkey's status 503 (a friendly page that says so); anything
  // else is a plain page. Never a stack trace in the browser.
  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    const status = site.errorStatus(err);
    console.error(`${req.method} ${req.originalUrl}: ${status}:`, status === 503 ? err.message : err);
    for (const name of res.getHeaderNames()) res.removeHeader(name); // e.g. the Location of a redirect whose commit failed
    res.status(status).set(site.errorHeaders(err, status)).type('html').send(site.errorPage(FRAMEWORK, status));
  });
  return app;
}

module.exports = { createApp, sessionSecret: (env) => site.sessionSecret('express-app', env), DEV_SECRET: site.DEV_SECRET };
