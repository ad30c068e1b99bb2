'use strict';
const { createApp } = require('./app');

const port = Number(process.env.PORT || 3001);
createApp().listen(port, '127.0.0.1', () => {
  console.log(`latchkey Koa example on http://127.0.0.1:${port} (${process.env.DATABASE_URL ? 'PostgresStore' : process.env.REDIS_URL ? 'RedisStore' : 'MemoryStore'})`);
});
