'use strict';
const { createApp } = require('./app');
const { serve } = require('../shared/site');

serve('Express', 3000, createApp, (app, port) => new Promise((resolve, reject) => {
  const server = app.listen(port, '127.0.0.1', () => resolve(server.address().port)).on('error', reject);
}));
