import { checkEntitlement, type Entitlement } from "../domain/entitlements.ts";
import { activationInForce } from "../domain/plan-in-force.ts";
import type { Account, Plan, Store, Subscription } from "../store/store.ts";

/**
 * Reads an account and the plan in force at `at`: the one place every verb that enforces or
 * shows plan rules (license report, limits check, key statistics, workspace usage, gateway
 * admission) gets them from. The plan comes from the subscription history (the latest
 * subscription begun and not ended at `at`), not from `account.planId`, which only records the
 * plan of the last subscription made; with none in force there is no plan, as for an account
 * that never subscribed. All three reads are reference rows the store remembers.
 */
export async function readAccountPlan(
  store: Store,
  accountId: string,
  at: number,
): Promise<{ account: Account | null; plan: Plan | null; subscription: Subscription | null }> {
  const account = await store.getAccount(accountId);
  if (!account) return { account, plan: null, subscription: null };
  const subscription = activationInForce(await store.listSubscriptions(accountId), at);
  const plan = subscription ? await store.getPlan(subscription.planId) : null;
  return { account, plan, subscription };
}

/**
 * The account as an answer shows it: `planId` is the plan in force at `at` (the stored one only
 * records the last subscription made, which may have ended or not begun).
 */
export async function withPlanInForce(store: Store, account: Account, at: number): Promise<Account> {
  const subscription = activationInForce(await store.listSubscriptions(account.id), at);
  return { ...account, planId: subscription?.planId ?? null };
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
