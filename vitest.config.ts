import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // CLI tests spawn the built binary; a cold start on a busy 2-core box can take a few seconds.
    testTimeout: 20_000,
  },
});
