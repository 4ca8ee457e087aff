import { checkEntitlement, type Entitlement } from "../domain/entitlements.ts";
import type { Account, Plan, Store } from "../store/store.ts";

/**
 * Reads an account and its current plan: the one place every verb that enforces or shows plan
 * rules (license report, limits check, key statistics, workspace usage) gets them from.
 */
export async function readAccountPlan(
  store: Store,
  accountId: string,
): Promise<{ account: Account | null; plan: Plan | null }> {
  const account = await store.getAccount(accountId);
  const plan = account?.planId ? await store.getPlan(account.planId) : null;
  return { account, plan };
}

/** May the account use `modelId` at `at`: its licenses for the model, under its current plan. */
export async function entitlementAt(
  store: Store,
  accountId: string,
  plan: Plan | null,
  modelId: string,
  at: number,
): Promise<Entitlement> {
  return checkEntitlement(await store.listLicenses(accountId, modelId), plan, modelId, at);
}
