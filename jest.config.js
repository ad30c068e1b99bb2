/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleNameMapper: {
    '^latchkey$': '<rootDir>/src/index.ts',
    '^latchkey/express$': '<rootDir>/src/middleware/express.ts',
    '^latchkey/koa$': '<rootDir>/src/middleware/koa.ts',
    '^latchkey/express-session$': '<rootDir>/src/middleware/express-session.ts',
    '^latchkey/koa-session$': '<rootDir>/src/middleware/koa-session.ts',
    '^latchkey/fastify$': '<rootDir>/src/middleware/fastify.ts',
    '^latchkey/redis$': '<rootDir>/src/store/redis.ts',
    '^latchkey/postgres$': '<rootDir>/src/store/postgres.ts',
    '^latchkey/testing$': '<rootDir>/src/store/conformance.ts',
    '^latchkey/adapter$': '<rootDir>/src/adapter.ts',
  },
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
