// The reference for test/compat/fastify-passport.test.ts: the same @fastify/passport app on
// @fastify/session (+ @fastify/cookie), in its own Node process (jest cannot load @fastify/cookie,
// see child-server.ts). `node test/support/fastify-session-reference.js [authenticatorOptionsJson]`
// prints `listening <port>` and serves on 127.0.0.1 until SIGTERM.
'use strict';
const Fastify = require('fastify');
const fastifyCookie = require('@fastify/cookie');
const fastifySession = require('@fastify/session');
const { passportApp } = require('./fastify-passport-app');

const SECRET = 'a-test-secret-that-is-long-enough-0001';
const authenticatorOptions = process.argv[2] ? JSON.parse(process.argv[2]) : undefined;

const app = passportApp(
  Fastify,
  (a) => {
    a.register(fastifyCookie);
    // secure: false for plain HTTP (its default, true, never sets the cookie there); saveUninitialized: false as latchkey.
    a.register(fastifySession, { secret: SECRET, cookie: { secure: false }, saveUninitialized: false });
  },
  authenticatorOptions,
);
app.listen({ port: 0, host: '127.0.0.1' }).then(
  () => process.stdout.write(`listening ${app.server.address().port}\n`),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
