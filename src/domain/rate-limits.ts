import { DAY_MS, MINUTE_MS } from "./time.ts";

/**
 * Per-account rate limits over fixed UTC windows: the minute and the day containing an instant.
 * A limit of null is unlimited and never refuses. Pure: the counters live in src/limits/.
 */
export type RateWindow = "minute" | "day";

export const RATE_WINDOWS: readonly RateWindow[] = ["minute", "day"];
export const WINDOW_MS: Record<RateWindow, number> = { minute: MINUTE_MS, day: DAY_MS };

export interface RateLimits {
  perMinute: number | null;
  perDay: number | null;
}

/** Requests counted in the minute and the day windows containing some instant. */
export interface WindowUse {
  minute: number;
  day: number;
}

export const UNLIMITED_LIMITS: RateLimits = { perMinute: null, perDay: null };

/** Start of the UTC window containing `at`; epoch milliseconds have no leap seconds, so days align. */
export function windowStart(at: number, window: RateWindow): number {
  const size = WINDOW_MS[window];
  return Math.floor(at / size) * size;
}

export function windowEnd(at: number, window: RateWindow): number {
  return windowStart(at, window) + WINDOW_MS[window];
}

export function limitOf(limits: RateLimits, window: RateWindow): number | null {
  return window === "minute" ? limits.perMinute : limits.perDay;
}

/** May one more request be taken? Both windows must be under their limits. */
export function hasRoom(limits: RateLimits, used: WindowUse): boolean {
  return RATE_WINDOWS.every((w) => {
    const limit = limitOf(limits, w);
    return limit === null || used[w] < limit;
  });
}

export interface WindowStatus {
  window: RateWindow;
  limit: number | null;
  used: number;
  /** null when unlimited; never below 0 (reports are never refused, so use can exceed a limit) */
  remaining: number | null;
  resetAt: number;
}

export interface LimitStatus {
  minute: WindowStatus;
  day: WindowStatus;
  /**
   * The tighter window: the limited one with fewer requests remaining; on a tie the one that resets
   * later, since that is how long a caller at zero must wait. null when both are unlimited.
   */
  binding: WindowStatus | null;
}

export function limitStatus(limits: RateLimits, used: WindowUse, at: number): LimitStatus {
  const minute = windowStatus(limits, used, at, "minute");
  const day = windowStatus(limits, used, at, "day");
  let binding: WindowStatus | null = null;
  for (const w of [day, minute]) {
    if (w.remaining === null) continue;
    if (binding === null || w.remaining < (binding.remaining as number)) binding = w;
  }
  return { minute, day, binding };
}

// a module function, not a closure made per call: this runs on every admitted request
function windowStatus(limits: RateLimits, used: WindowUse, at: number, window: RateWindow): WindowStatus {
  const limit = limitOf(limits, window);
  return {
    window,
    limit,
    used: used[window],
    remaining: limit === null ? null : Math.max(0, limit - used[window]),
    resetAt: windowEnd(at, window),
  };
}
