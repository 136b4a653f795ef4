import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites share one moto, one PostgreSQL and one Redis. Each test uses its own
    // names, so files may run in parallel, two at a time on the two-core CI machine.
    maxWorkers: 2,
    env: { AWS_EC2_METADATA_DISABLED: 'true' },
  },
});
