/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  moduleNameMapper: {
    '^latchkey$': '<rootDir>/src/index.ts',
    '^latchkey/express$': '<rootDir>/src/middleware/express.ts',
    '^latchkey/testing$': '<rootDir>/src/store/conformance.ts',
  },
  testTimeout: 30000,
};
