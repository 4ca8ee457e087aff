import { describe, expect, it } from "vitest";
import { sealSecret } from "../../src/notify/secret-box.ts";
import { StoreOutbox } from "../../src/notify/store-outbox.ts";
import { outboxContract } from "../support/outbox-contract.ts";
import { storeKinds } from "../support/stores.ts";

/**
 * The outbox over the real tables, on each store: the same contract as the worker's test double.
 * On PostgreSQL the concurrent-claims case is the real test of FOR UPDATE SKIP LOCKED. Secrets
 * are sealed with a key, as TALLY_SECRETS_KEY would, so opening them is on the path too.
 */
const KEY = Buffer.alloc(32, 7);

for (const kind of storeKinds()) {
  describe(kind.name, () => {
    outboxContract(`store (${kind.name})`, async () => {
      const t = await kind.create();
      const store = t.store;
      const accounts = new Set<string>();
      return {
        outbox: new StoreOutbox(store, KEY),
        async addEndpoint({ id, url, secrets, accountId }) {
          if (accountId !== null && !accounts.has(accountId)) {
            await store.createAccount({
              id: accountId,
              name: accountId,
              isEnabled: true,
              planId: null,
              createdAt: 0,
              billingTimezone: "UTC",
              billingMode: "postpaid",
            });
            accounts.add(accountId);
          }
          await store.createWebhookEndpoint({
            id,
            accountId,
            url,
            events: ["webhook.test"],
            secret: sealSecret(secrets.current, id, KEY),
            previousSecret: secrets.previous === null ? null : sealSecret(secrets.previous, id, KEY),
            previousSecretExpiresAt: secrets.previousExpiresAt,
            disabledAt: null,
            disabledReason: null,
            failingSince: null,
            createdAt: 0,
          });
        },
        async enqueue(m, now) {
          await store.enqueueMessages([
            {
              id: m.id,
              endpointId: m.endpointId,
              accountId: null,
              type: "webhook.test",
              body: new TextDecoder().decode(m.body),
              createdAt: now,
            },
          ]);
        },
        async readMessage(id) {
          const m = (await store.getOutboxMessage(id))!;
          return {
            status: m.status,
            nextAttemptAt: m.nextAttemptAt,
            scheduleStep: m.scheduleStep,
            attemptCount: m.attemptCount,
          };
        },
        async readEndpoint(id) {
          const e = (await store.getWebhookEndpoint(id))!;
          return { disabledAt: e.disabledAt, failingSince: e.failingSince };
        },
        attempts: (id) => store.attemptsOf(id),
        close: () => t.cleanup(),
      };
    });
  });
}

describe.each(storeKinds())("endpoints hearing a message ($name)", (kind) => {
  it("an account's message: its own enabled endpoints and the operator's; no account's: the operator's", async () => {
    const t = await kind.create();
    try {
      const { store } = t;
      for (const id of ["acc_a", "acc_b"])
        await store.createAccount({
          id,
          name: id,
          isEnabled: true,
          planId: null,
          createdAt: 0,
          billingTimezone: "UTC",
          billingMode: "postpaid",
        });
      const endpoint = async (id: string, accountId: string | null, disabledAt: number | null = null) =>
        store.createWebhookEndpoint({
          id,
          accountId,
          url: `https://hooks.example/${id}`,
          events: ["invoice.finalized"],
          secret: "sealed",
          previousSecret: null,
          previousSecretExpiresAt: null,
          disabledAt,
          disabledReason: disabledAt === null ? null : "failing",
          failingSince: null,
          createdAt: 0,
        });
      await endpoint("wh_operator", null);
      await endpoint("wh_a", "acc_a");
      await endpoint("wh_a_off", "acc_a", 5);
      await endpoint("wh_b", "acc_b");
      const ids = async (accountId: string | null) =>
        (await store.listWebhookEndpointsHearing(accountId)).map((e) => e.id).sort();
      expect(await ids("acc_a")).toEqual(["wh_a", "wh_operator"]);
      expect(await ids("acc_b")).toEqual(["wh_b", "wh_operator"]);
      expect(await ids(null)).toEqual(["wh_operator"]);
    } finally {
      await t.cleanup();
    }
  });
});
