// Unit specs sit beside the code; end-to-end specs run against the real RabbitMQ.
// The broker-restart suite restarts a RabbitMQ node of its own; it runs on its own (`npm run test:restart`).
// Browser specs drive Debian's Chromium (/usr/bin/chromium) through playwright-core.
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }],
};

// Suites the stream project leaves out, each for its reason.
const STREAM_MODE_EXCLUDED = [
  // They choose their mode themselves and already run the replay log.
  'replay',
  'demo',
  'replay-storm',
  // Faults of the per-node queues and their on-demand bindings (refused binds, deleted queues,
  // exchanges declared with other flags, binding replay after a reconnect).
  'broker-faults',
  'broker-down',
  // MAX_BROKER_KEYS_PER_ACCOUNT limits on-demand bindings; the replay log makes none.
  'broker-limits',
];

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
      // The same suites with the product's default, the replay log on: live delivery reads a
      // RabbitMQ stream of each gateway's own (test/e2e-stream/setup.ts), deleted when it closes.
      displayName: 'e2e-stream',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      testPathIgnorePatterns: STREAM_MODE_EXCLUDED.map((name) => `/test/e2e/${name}\\.e2e-spec\\.ts$`),
      setupFilesAfterEnv: ['<rootDir>/test/e2e-stream/setup.ts'],
      globalSetup: '<rootDir>/test/e2e-stream/global-setup.ts',
      globalTeardown: '<rootDir>/test/e2e-stream/global-teardown.ts',
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
