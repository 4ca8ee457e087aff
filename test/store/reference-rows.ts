import type { ApiKey, Plan, Store } from "../../src/store/store.ts";

/** The instant every reference row of the memo tests was created at. */
export const AT = Date.parse("2025-06-01T00:00:00Z");

/** The key the memo tests read by its digest, "digest-1". */
const key: ApiKey = {
  id: "key-1",
  userId: "user-1",
  accountId: "acct",
  isRoot: false,
  label: "ci",
  prefix: "tly_abcd",
  hash: "digest-1",
  createdAt: AT,
  lastUsedAt: null,
  revokedAt: null,
};

/** Account "acct", its admin "user-1" and the user's key. */
export async function createReferenceRows(store: Store): Promise<void> {
  await store.createAccount({ id: "acct", name: "A", isEnabled: true, planId: null, createdAt: AT });
  await store.createUser({
    id: "user-1",
    accountId: "acct",
    username: "u",
    role: "admin",
    nodeId: null,
    createdAt: AT,
  });
  await store.createKey(key);
}

/** A plan with a per-minute limit and nothing else. */
export function plan(id: string, requestsPerMinute: number): Plan {
  return {
    id,
    requestsPerMinute,
    requestsPerDay: null,
    validityDays: 30,
    modelWhitelist: null,
    modelBlacklist: null,
    included: {},
    createdAt: AT,
    updatedAt: AT,
  };
}
