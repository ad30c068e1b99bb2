'use strict';
const { createApp } = require('./app');

const port = Number(process.env.PORT || 3002);
createApp()
  .listen({ port, host: '127.0.0.1' })
  .then(() => {
    console.log(`latchkey Fastify example on http://127.0.0.1:${port} (${process.env.DATABASE_URL ? 'PostgresStore' : process.env.REDIS_URL ? 'RedisStore' : 'MemoryStore'})`);
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
