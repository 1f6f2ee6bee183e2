/** Tests run on the compiled output (npm test builds first), so the worker bundles plain JavaScript. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  globalSetup: '<rootDir>/dist/test/support/globalSetup.js',
  globalTeardown: '<rootDir>/dist/test/support/globalTeardown.js',
  testTimeout: 180000,
  maxWorkers: 1,
};
