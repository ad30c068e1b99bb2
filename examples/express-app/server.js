'use strict';
const { createApp } = require('./app');

const store = process.env.DATABASE_URL ? 'PostgresStore' : process.env.REDIS_URL ? 'RedisStore' : 'MemoryStore';
let app;
try {
  app = createApp();
} catch (err) {
  // No SESSION_SECRET in production, or a secret latchkey refuses (shorter than 32 characters): say why, exit 1.
  if (err.code !== 'EXAMPLE_NO_SECRET' && err.code !== 'LATCHKEY_CONFIG') throw err;
  console.error(`latchkey Express example: ${err.message}`);
  process.exit(1);
}
if (!process.env.SESSION_SECRET) {
  console.warn('latchkey Express example: SESSION_SECRET is not set, so cookies are signed with the built-in development secret (with NODE_ENV=production the example refuses to start).');
}

const port = Number(process.env.PORT || 3000); // PORT=0: any free port (the line below says which)
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`latchkey Express example on http://127.0.0.1:${server.address().port} (${store})`);
});
server.on('error', (err) => {
  console.error(`latchkey Express example: cannot listen on 127.0.0.1:${port}: ${err.message} (set PORT to another port)`);
  process.exit(1);
});
