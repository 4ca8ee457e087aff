import { WINDOW_MS } from "../domain/rate-limits.ts";
import type { QueryService, UsageLine } from "../query/usage-query.ts";
import type { CountSeed } from "./memory-rate-limiter.ts";

/**
 * The requests the store already holds in an account's current minute and day windows (read
 * from the rollups): where per-instance counters start, and what Redis's windows are rebuilt to.
 */
export function storeCounts(query: QueryService): CountSeed {
  return async (accountId, windows) => {
    const [minute, day] = await query.series({
      accountId,
      buckets: [
        { start: windows.minute, end: windows.minute + WINDOW_MS.minute },
        { start: windows.day, end: windows.day + WINDOW_MS.day },
      ],
    });
    const requests = (lines: UsageLine[]) => lines.reduce((n, l) => n + l.requests, 0);
    return { minute: requests(minute), day: requests(day) };
  };
}
