'use strict';
const { createApp } = require('./app');

const store = process.env.DATABASE_URL ? 'PostgresStore' : process.env.REDIS_URL ? 'RedisStore' : 'MemoryStore';
let app;
try {
  app = createApp();
} catch (err) {
  // No SESSION_SECRET in production, or a secret latchkey refuses (shorter than 32 characters): say why, exit 1.
  if (err.code !== 'EXAMPLE_NO_SECRET' && err.code !== 'LATCHKEY_CONFIG') throw err;
  console.error(`latchkey Koa example: ${err.message}`);
  process.exit(1);
}
if (!process.env.SESSION_SECRET) {
  console.warn('latchkey Koa example: SESSION_SECRET is not set, so cookies are signed with the built-in development secret (with NODE_ENV=production the example refuses to start).');
}
// Errors are logged by the app's own error page middleware (without the stack for a store outage).
app.silent = true;

const port = Number(process.env.PORT || 3001); // PORT=0: any free port (the line below says which)
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`latchkey Koa example on http://127.0.0.1:${server.address().port} (${store})`);
});
server.on('error', (err) => {
  console.error(`latchkey Koa example: cannot listen on 127.0.0.1:${port}: ${err.message} (set PORT to another port)`);
  process.exit(1);
});
