import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // real outages, signals and fuzzing: `npm run test:reliability` (run by .ci/run)
    exclude: ["**/node_modules/**", "test/reliability/**", "test/fuzz/**"],
    setupFiles: ["test/support/fast-check-seed.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // two cores: more workers only thrash
    maxWorkers: 2,
  },
});
