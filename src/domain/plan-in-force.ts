/** A plan's activation as the rule below needs it: when it began and, if ended, when it ended. */
export interface Activation {
  activatedAt: number;
  /** null or absent: it runs on */
  endsAt?: number | null;
}

/**
 * The activation in force at `at`: of those activated at or before `at` and not ended by then
 * (`endsAt` is exclusive), the latest activated; of two activated at one instant, the later in
 * the list (the store lists subscriptions by activation, then creation). Null when none is:
 * before the first activation, or once every one that began has ended. A later activation
 * replaces an earlier one while it runs; if it is ended, an earlier one still running is in
 * force again (decision 0018, "The plan in force").
 */
export function activationInForce<T extends Activation>(activations: readonly T[], at: number): T | null {
  let found: T | null = null;
  for (const a of activations) {
    const running = a.activatedAt <= at && (a.endsAt === undefined || a.endsAt === null || a.endsAt > at);
    if (running && (found === null || a.activatedAt >= found.activatedAt)) found = a;
  }
  return found;
}
