import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type {
  AttemptOutcome,
  AttemptRecord,
  ClaimedMessage,
  MessageStatus,
  Outbox,
} from "../../src/notify/outbox.ts";
import { LAST_STEP } from "../../src/notify/retry-policy.ts";
import type { EndpointSecrets } from "../../src/notify/signing.ts";

/**
 * The Outbox contract: every implementation (the memory test double now; SQLite and PostgreSQL
 * when the store step adds the tables) runs this suite through a fixture that can seed and read
 * its rows. Times are plain numbers chosen by the tests, never the wall clock.
 */
export interface OutboxFixture {
  outbox: Outbox;
  addEndpoint(e: {
    id: string;
    url: string;
    secrets: EndpointSecrets;
    accountId: string | null;
  }): Promise<void>;
  enqueue(m: { id: string; endpointId: string; body: Uint8Array }, now: number): Promise<void>;
  readMessage(id: string): Promise<{
    status: MessageStatus;
    nextAttemptAt: number;
    scheduleStep: number;
    attemptCount: number;
  }>;
  readEndpoint(id: string): Promise<{ disabledAt: number | null; failingSince: number | null }>;
  attempts(messageId: string): Promise<AttemptRecord[]>;
  close(): Promise<void>;
}

const T = 1_800_000_000_000;
const LEASE = 60_000;
const secrets: EndpointSecrets = {
  current: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  previous: null,
  previousExpiresAt: null,
};
const bytes = (s: string) => new TextEncoder().encode(s);

function attempt(claim: ClaimedMessage, at: number, statusCode: number | null): AttemptRecord {
  return {
    messageId: claim.id,
    endpointId: claim.endpoint.id,
    attemptNumber: claim.attemptCount + 1,
    attemptedAt: at,
    statusCode,
    latencyMs: 12,
    responseExcerpt: statusCode === null ? "" : `status ${statusCode}`,
    error: statusCode === null ? "timeout" : null,
    succeeded: statusCode !== null && statusCode < 300,
  };
}

const failedOutcome = (claim: ClaimedMessage, at: number, next: number): AttemptOutcome => ({
  attempt: attempt(claim, at, 500),
  message: { status: "pending", nextAttemptAt: next, scheduleStep: claim.scheduleStep + 1 },
  endpoint: { kind: "failed", at },
});

export function outboxContract(name: string, makeFixture: () => Promise<OutboxFixture>): void {
  describe(`Outbox contract: ${name}`, () => {
    let f: OutboxFixture;
    beforeEach(async () => {
      f = await makeFixture();
      await f.addEndpoint({ id: "ep_a", url: "https://a.example/hook", secrets, accountId: "acc_1" });
      await f.addEndpoint({ id: "ep_b", url: "https://b.example/hook", secrets, accountId: null });
    });
    afterEach(async () => {
      await f.close();
    });

    it("claims due pending messages, oldest due first, up to the limit, with their endpoint and exact bytes", async () => {
      await f.enqueue({ id: "msg_2", endpointId: "ep_a", body: bytes('{"n":2}') }, T + 2);
      await f.enqueue({ id: "msg_1", endpointId: "ep_b", body: bytes('{"n":1}') }, T + 1);
      await f.enqueue({ id: "msg_3", endpointId: "ep_a", body: bytes('{"n":3}') }, T + 3);
      await f.enqueue({ id: "msg_future", endpointId: "ep_a", body: bytes("{}") }, T + 10_000);
      const claims = await f.outbox.claimDue(T + 5, 2, LEASE);
      expect(claims.map((c) => c.id)).toEqual(["msg_1", "msg_2"]);
      expect(claims[0]).toMatchObject({
        endpoint: { id: "ep_b", url: "https://b.example/hook", secrets, failingSince: null },
        attemptCount: 0,
        scheduleStep: 0,
      });
      expect(new TextDecoder().decode(claims[0].body)).toBe('{"n":1}');
      expect((await f.outbox.claimDue(T + 5, 10, LEASE)).map((c) => c.id)).toEqual(["msg_3"]);
    });

    it("a leased message is not claimed again until its lease runs out", async () => {
      await f.enqueue({ id: "msg_1", endpointId: "ep_a", body: bytes("{}") }, T);
      const [first] = await f.outbox.claimDue(T, 10, LEASE);
      expect(await f.outbox.claimDue(T + LEASE - 1, 10, LEASE)).toEqual([]);
      const [again] = await f.outbox.claimDue(T + LEASE, 10, LEASE);
      expect(again.id).toBe("msg_1");
      expect(again.leaseToken).not.toBe(first.leaseToken);
    });

    it("concurrent claims never hand out one message twice", async () => {
      for (let i = 0; i < 30; i++) {
        await f.enqueue(
          { id: `msg_${String(i).padStart(2, "0")}`, endpointId: "ep_a", body: bytes("{}") },
          T,
        );
      }
      const rounds = await Promise.all(Array.from({ length: 6 }, () => f.outbox.claimDue(T, 7, LEASE)));
      const ids = rounds.flat().map((c) => c.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(30);
    });

    it("a completed failure is logged and rescheduled; the lease is released", async () => {
      await f.enqueue({ id: "msg_1", endpointId: "ep_a", body: bytes("{}") }, T);
      const [c] = await f.outbox.claimDue(T, 10, LEASE);
      expect(await f.outbox.completeAttempt(c, failedOutcome(c, T, T + 5000))).toBe(true);
      expect(await f.readMessage("msg_1")).toEqual({
        status: "pending",
        nextAttemptAt: T + 5000,
        scheduleStep: 1,
        attemptCount: 1,
      });
      expect(await f.readEndpoint("ep_a")).toEqual({ disabledAt: null, failingSince: T });
      expect(await f.attempts("msg_1")).toEqual([attempt(c, T, 500)]);
      expect(await f.outbox.claimDue(T + 4999, 10, LEASE)).toEqual([]);
      const [c2] = await f.outbox.claimDue(T + 5000, 10, LEASE);
      expect(c2).toMatchObject({ attemptCount: 1, scheduleStep: 1, endpoint: { failingSince: T } });
      // a later failure keeps the start of the failure run; a success clears it
      await f.outbox.completeAttempt(c2, failedOutcome(c2, T + 5000, T + 305_000));
      expect((await f.readEndpoint("ep_a")).failingSince).toBe(T);
      const [c3] = await f.outbox.claimDue(T + 305_000, 10, LEASE);
      await f.outbox.completeAttempt(c3, {
        attempt: attempt(c3, T + 305_000, 200),
        message: { status: "succeeded" },
        endpoint: { kind: "succeeded" },
      });
      expect((await f.readMessage("msg_1")).status).toBe("succeeded");
      expect((await f.readEndpoint("ep_a")).failingSince).toBeNull();
      expect((await f.attempts("msg_1")).map((a) => [a.attemptNumber, a.statusCode])).toEqual([
        [1, 500],
        [2, 500],
        [3, 200],
      ]);
    });

    it("a completion whose lease was lost logs the attempt but changes nothing", async () => {
      await f.enqueue({ id: "msg_1", endpointId: "ep_a", body: bytes("{}") }, T);
      const [stale] = await f.outbox.claimDue(T, 10, LEASE);
      const [fresh] = await f.outbox.claimDue(T + LEASE, 10, LEASE);
      await f.outbox.completeAttempt(fresh, {
        attempt: attempt(fresh, T + LEASE, 200),
        message: { status: "succeeded" },
        endpoint: { kind: "succeeded" },
      });
      expect(await f.outbox.completeAttempt(stale, failedOutcome(stale, T, T + 5000))).toBe(false);
      expect((await f.readMessage("msg_1")).status).toBe("succeeded");
      expect(await f.attempts("msg_1")).toHaveLength(2);
    });

    it("a disabled endpoint's messages are not claimed; a manual retry re-enables it", async () => {
      await f.enqueue({ id: "msg_1", endpointId: "ep_a", body: bytes("{}") }, T);
      await f.enqueue({ id: "msg_2", endpointId: "ep_a", body: bytes("{}") }, T + 1);
      await f.enqueue({ id: "msg_b", endpointId: "ep_b", body: bytes("{}") }, T + 2);
      const [c] = await f.outbox.claimDue(T, 1, LEASE);
      await f.outbox.completeAttempt(c, {
        attempt: attempt(c, T, 410),
        message: { status: "failed" },
        endpoint: { kind: "disable", at: T, reason: "410" },
      });
      expect(await f.readEndpoint("ep_a")).toMatchObject({ disabledAt: T });
      expect((await f.outbox.claimDue(T + 10, 10, LEASE)).map((m) => m.id)).toEqual(["msg_b"]);

      expect(await f.outbox.retryMessage("msg_1", T + 100)).toEqual({
        messageId: "msg_1",
        status: "pending",
        nextAttemptAt: T + 100,
      });
      expect(await f.readEndpoint("ep_a")).toEqual({ disabledAt: null, failingSince: null });
      expect(await f.readMessage("msg_1")).toMatchObject({ status: "pending", scheduleStep: LAST_STEP });
      expect((await f.outbox.claimDue(T + 100, 10, LEASE)).map((m) => m.id).sort()).toEqual([
        "msg_1",
        "msg_2",
      ]);
    });

    it("a manual retry brings a pending message forward without touching its schedule; unknown ids are null", async () => {
      await f.enqueue({ id: "msg_1", endpointId: "ep_a", body: bytes("{}") }, T);
      const [c] = await f.outbox.claimDue(T, 10, LEASE);
      await f.outbox.completeAttempt(c, failedOutcome(c, T, T + 5000));
      await f.outbox.retryMessage("msg_1", T + 1000);
      expect(await f.readMessage("msg_1")).toEqual({
        status: "pending",
        nextAttemptAt: T + 1000,
        scheduleStep: 1,
        attemptCount: 1,
      });
      expect(await f.outbox.retryMessage("msg_nope", T)).toBeNull();
    });
  });
}
