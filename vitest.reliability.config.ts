import { defineConfig } from "vitest/config";

/**
 * `npm run test:reliability`: real processes, stores the suite starts itself, and fuzzed routes.
 * One file at a time: the checks time answers and stop servers, and two cores are all there is.
 */
export default defineConfig({
  test: {
    include: ["test/reliability/**/*.test.ts", "test/fuzz/**/*.test.ts"],
    setupFiles: ["test/support/fast-check-seed.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    env: { TALLY_RELIABILITY: "1" },
    testTimeout: 240_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: false,
    maxWorkers: 1,
  },
});
