/**
 * The reliability suite and the route fuzzing start processes and stores of their own and run for
 * minutes: they run under `npm run test:reliability` (vitest.reliability.config.ts sets
 * TALLY_RELIABILITY=1), and are skipped by the ordinary `npm test`.
 */
export const RELIABILITY = process.env.TALLY_RELIABILITY === "1";
