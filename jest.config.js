// Unit specs sit beside the code; end-to-end specs run against the real RabbitMQ.
// The broker-restart suite restarts a RabbitMQ node of its own; it runs on its own (`npm run test:restart`).
// Browser specs drive Debian's Chromium (/usr/bin/chromium) through playwright-core.
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }],
};

/** @type {import('jest').Config} */
module.exports = {
  // Broker round trips and rabbitmqctl calls take seconds; per-file overrides use jest.setTimeout.
  testTimeout: 30000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/src/**/*.spec.ts'],
      transform,
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      transform,
    },
    {
      // Property-based fuzzing of every protocol (`npm run fuzz` for 100,000 frames each).
      displayName: 'fuzz',
      testEnvironment: '<rootDir>/test/fuzz/fuzz.environment.js',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/fuzz/**/*.fuzz-spec.ts'],
      transform,
    },
    {
      displayName: 'restart',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/restart/**/*.e2e-spec.ts'],
      transform,
    },
    {
      displayName: 'browser',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/browser/**/*.browser-spec.ts'],
      transform,
    },
  ],
};
