'use strict';
const { createApp } = require('./app');

const store = process.env.DATABASE_URL ? 'PostgresStore' : process.env.REDIS_URL ? 'RedisStore' : 'MemoryStore';
let app;
try {
  app = createApp();
} catch (err) {
  // No SESSION_SECRET in production, or a secret latchkey refuses (shorter than 32 characters): say why, exit 1.
  if (err.code !== 'EXAMPLE_NO_SECRET' && err.code !== 'LATCHKEY_CONFIG') throw err;
  console.error(`latchkey Fastify example: ${err.message}`);
  process.exit(1);
}
if (!process.env.SESSION_SECRET) {
  console.warn('latchkey Fastify example: SESSION_SECRET is not set, so cookies are signed with the built-in development secret (with NODE_ENV=production the example refuses to start).');
}
const port = Number(process.env.PORT || 3002); // PORT=0: any free port (the line below says which)
app.listen({ port, host: '127.0.0.1' }).then(
  () => console.log(`latchkey Fastify example on http://127.0.0.1:${app.server.address().port} (${store})`),
  (err) => {
    console.error(`latchkey Fastify example: ${err.code === 'EADDRINUSE' ? `cannot listen on 127.0.0.1:${port}: ${err.message} (set PORT to another port)` : err.message}`);
    process.exit(1);
  },
);
