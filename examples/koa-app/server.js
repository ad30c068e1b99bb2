'use strict';
const { createApp } = require('./app');
const { serve } = require('../shared/site');

serve('Koa', 3001, createApp, (app, port) => new Promise((resolve, reject) => {
  app.silent = true; // errors are logged by the app's own error page middleware (without the stack for a store outage)
  const server = app.listen(port, '127.0.0.1', () => resolve(server.address().port)).on('error', reject);
}));
