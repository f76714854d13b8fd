import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // A bound for a hung test, not a speed target: a test that runs several CLI commands against real servers
    // can take over a minute on a busy two-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real servers; two cores in CI: keep parallelism modest.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
    // As bin/run.js: tykdr supports Node 20, and the AWS SDK loaded in a test worker warned at every load that its 2027
    // releases need Node 22 (ten warnings in a CI log).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
