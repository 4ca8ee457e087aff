import { describe, expect, it } from "vitest";
import type { AttemptRecord, ClaimedMessage } from "./outbox.ts";
import { DISABLE_AFTER_FAILING_MS, LAST_STEP, planAfterAttempt, RETRY_DELAYS_MS } from "./retry-policy.ts";

const claim = (scheduleStep: number, failingSince: number | null = null): ClaimedMessage => ({
  id: "msg_1",
  endpoint: {
    id: "ep_1",
    url: "https://example.com",
    secrets: { current: "whsec_AA==", previous: null, previousExpiresAt: null },
    failingSince,
  },
  body: new Uint8Array(),
  attemptCount: scheduleStep,
  scheduleStep,
  leaseToken: "t",
});
const attempt = (statusCode: number | null, attemptedAt = 1_000_000): AttemptRecord => ({
  messageId: "msg_1",
  endpointId: "ep_1",
  attemptNumber: 1,
  attemptedAt,
  statusCode,
  latencyMs: 0,
  responseExcerpt: "",
  error: statusCode === null ? "timeout" : null,
  succeeded: statusCode !== null && statusCode < 300 && statusCode >= 200,
});

describe("planAfterAttempt", () => {
  it("is DESIGN.md's schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then failed", () => {
    expect(RETRY_DELAYS_MS).toEqual([5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 36e6]);
    const now = 1_000_000;
    for (let step = 0; step < LAST_STEP; step++) {
      expect(planAfterAttempt(claim(step), attempt(500, now), now + 40).message).toEqual({
        status: "pending",
        nextAttemptAt: now + 40 + RETRY_DELAYS_MS[step],
        scheduleStep: step + 1,
      });
    }
    expect(planAfterAttempt(claim(LAST_STEP), attempt(500), 2_000_000)).toEqual({
      message: { status: "failed" },
      endpoint: { kind: "failed", at: 1_000_000 },
    });
  });

  it("a 2xx succeeds and clears the endpoint's failure run; 3xx, 4xx and no answer are failures", () => {
    expect(planAfterAttempt(claim(3, 5), attempt(204), 9)).toEqual({
      message: { status: "succeeded" },
      endpoint: { kind: "succeeded" },
    });
    for (const code of [301, 400, 404, 429, 500, null]) {
      expect(planAfterAttempt(claim(0), attempt(code), 1_000_000).message.status).toBe("pending");
    }
  });

  it("a 410 fails the message and disables the endpoint at once", () => {
    expect(planAfterAttempt(claim(0), attempt(410), 1_000_100)).toEqual({
      message: { status: "failed" },
      endpoint: { kind: "disable", at: 1_000_100, reason: "the receiver answered 410 Gone" },
    });
  });

  it("disables an endpoint whose failures have lasted 5 days, not a millisecond earlier", () => {
    const since = 1_000_000;
    const almost = planAfterAttempt(
      claim(2, since),
      attempt(500, since + 1),
      since + DISABLE_AFTER_FAILING_MS - 1,
    );
    expect(almost.endpoint).toEqual({ kind: "failed", at: since + 1 });
    const five = planAfterAttempt(claim(2, since), attempt(500, since + 1), since + DISABLE_AFTER_FAILING_MS);
    expect(five).toEqual({
      message: { status: "failed" },
      endpoint: {
        kind: "disable",
        at: since + DISABLE_AFTER_FAILING_MS,
        reason: "every attempt failed for 5 days",
      },
    });
  });
});
