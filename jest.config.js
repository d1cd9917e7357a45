// Unit specs sit beside the code; end-to-end specs run against the real RabbitMQ.
// The broker-restart suite stops RabbitMQ, so it runs alone (`npm run test:restart`).
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true, diagnostics: false }],
};

/** @type {import('jest').Config} */
module.exports = {
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
      testTimeout: 30000,
    },
    {
      displayName: 'restart',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/restart/**/*.e2e-spec.ts'],
      transform,
      testTimeout: 120000,
    },
  ],
};
