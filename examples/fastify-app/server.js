'use strict';
const { createApp } = require('./app');
const { serve } = require('../shared/site');

serve('Fastify', 3002, createApp, async (app, port) => {
  await app.listen({ port, host: '127.0.0.1' });
  return app.server.address().port;
});
