/** @type {import('jest').Config} */
module.exports = {
  // The node environment, plus closing what a failed set-up left open (test/support/environment.ts).
  testEnvironment: '<rootDir>/test/support/environment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 60000,
  // Tests start real redis-server and gateway processes; a leaked one must never hang CI.
  forceExit: false,
  detectOpenHandles: false,
};
