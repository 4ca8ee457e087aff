import type { AttemptRecord, ClaimedMessage, EndpointUpdate, MessageUpdate } from "./outbox.ts";

/**
 * What happens after an attempt: the retry schedule of DESIGN.md, and when an endpoint is given up.
 * Pure, so that the schedule is one table and the rules are tested without a network.
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Delay before retry n (after the n-th failed attempt): 8 attempts in all, about 27.6 h. */
export const RETRY_DELAYS_MS: readonly number[] = [
  5 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
  5 * HOUR,
  10 * HOUR,
  10 * HOUR,
];

/** The step of a message with no retries left: a manual retry sets it, for exactly one attempt. */
export const LAST_STEP = RETRY_DELAYS_MS.length;

/** An endpoint failing without a single success for this long is disabled. */
export const DISABLE_AFTER_FAILING_MS = 5 * 24 * HOUR;

export interface AttemptPlan {
  message: MessageUpdate;
  endpoint: EndpointUpdate;
}

/**
 * `finishedAt` is when the attempt ended: the next retry is measured from there, so a 15 s timeout
 * never makes the 5 s retry due before the attempt that preceded it is over.
 */
export function planAfterAttempt(
  claim: ClaimedMessage,
  attempt: AttemptRecord,
  finishedAt: number,
): AttemptPlan {
  if (attempt.succeeded) return { message: { status: "succeeded" }, endpoint: { kind: "succeeded" } };
  if (attempt.statusCode === 410) {
    // Gone: the receiver says the endpoint no longer exists; retrying would only be noise
    return {
      message: { status: "failed" },
      endpoint: { kind: "disable", at: finishedAt, reason: "the receiver answered 410 Gone" },
    };
  }
  const failingSince = claim.endpoint.failingSince ?? attempt.attemptedAt;
  if (finishedAt - failingSince >= DISABLE_AFTER_FAILING_MS) {
    return {
      message: { status: "failed" },
      endpoint: { kind: "disable", at: finishedAt, reason: "every attempt failed for 5 days" },
    };
  }
  const endpoint: EndpointUpdate = { kind: "failed", at: attempt.attemptedAt };
  if (claim.scheduleStep >= LAST_STEP) return { message: { status: "failed" }, endpoint };
  return {
    message: {
      status: "pending",
      nextAttemptAt: finishedAt + RETRY_DELAYS_MS[claim.scheduleStep],
      scheduleStep: claim.scheduleStep + 1,
    },
    endpoint,
  };
}
