// The @fastify/passport app of test/compat/fastify-passport.test.ts: passport-local, user "ada",
// password "secret". Plain JavaScript, so that the same code runs in jest on latchkey/fastify and,
// for the reference (@fastify/session, which jest cannot load: see child-server.ts), in a child
// process (fastify-session-reference.js). Routes read and write the session through get() and set(),
// which latchkey's handle and @fastify/session's object both have.
'use strict';
const { Authenticator } = require('@fastify/passport');
const { Strategy: LocalStrategy } = require('passport-local');

/**
 * @param {typeof import('fastify').default} Fastify
 * @param {(app: import('fastify').FastifyInstance) => void} registerSession puts a session plugin on the app
 * @param {object} [authenticatorOptions] options of new Authenticator()
 */
function passportApp(Fastify, registerSession, authenticatorOptions) {
  const app = Fastify();
  registerSession(app);
  const passport = new Authenticator(authenticatorOptions);
  passport.use(
    'local',
    new LocalStrategy((username, password, done) => (password === 'secret' ? done(null, { id: 7, name: username }) : done(null, false, { message: 'bad credentials' }))),
  );
  passport.registerUserSerializer(async (user) => user.id);
  passport.registerUserDeserializer(async (id) => ({ id, name: 'ada' }));
  app.register(passport.initialize());
  app.register(passport.secureSession());

  app.get('/me', async (request) => ({ user: request.user ?? null }));
  app.get('/protected', async (request, reply) => {
    if (request.user) return 'the secret page';
    request.session.set('returnTo', request.url);
    return reply.redirect('/login');
  });
  app.get('/set', async (request) => {
    request.session.set('cart', ['tea']);
    return 'ok';
  });
  app.get('/dump', async (request) => ({ cart: request.session.get('cart') ?? null, messages: request.session.get('messages') ?? null }));
  // As @fastify/passport's README has it: authenticate in preValidation, a handler that sends nothing.
  app.post('/login', {
    preValidation: (request, reply) =>
      passport.authenticate('local', {
        failureMessage: true,
        failureRedirect: '/login',
        successReturnToOrRedirect: '/home',
        keepSessionInfo: request.query.keep === '1',
      })(request, reply),
    handler: () => {},
  });
  app.post('/login-flash', {
    // A string: with `true`, passport-local's challenge ({ message }) has no type, and nothing is flashed.
    preValidation: passport.authenticate('local', { failureFlash: 'try again', failureRedirect: '/flash' }),
    handler: () => {},
  });
  app.get('/flash', async (_request, reply) => reply.flash('error'));
  app.post('/logout', async (request, reply) => {
    await request.logout();
    return reply.redirect('/');
  });
  return app;
}

module.exports = { passportApp };
