/**
 * May an account use a model right now? One rule for the license report, the limits check and
 * the gateway: a license in force at `at` (starts_at <= at < ends_at), and the plan's allow list
 * (when set) naming the model and its block list (when set) not naming it.
 */
export interface LicenseWindow {
  startsAt: number;
  endsAt: number | null;
}

export interface PlanLists {
  modelWhitelist: string[] | null;
  modelBlacklist: string[] | null;
}

export type Entitlement = { allowed: true } | { allowed: false; reason: "not_licensed" | "plan_blocked" };

export function licenseInForce(licenses: readonly LicenseWindow[], at: number): boolean {
  return licenses.some((l) => l.startsAt <= at && (l.endsAt === null || at < l.endsAt));
}

export function planAllowsModel(plan: PlanLists | null, modelId: string): boolean {
  if (!plan) return true;
  if (plan.modelWhitelist && !plan.modelWhitelist.includes(modelId)) return false;
  if (plan.modelBlacklist?.includes(modelId)) return false;
  return true;
}

export function checkEntitlement(
  licenses: readonly LicenseWindow[],
  plan: PlanLists | null,
  modelId: string,
  at: number,
): Entitlement {
  if (!licenseInForce(licenses, at)) return { allowed: false, reason: "not_licensed" };
  if (!planAllowsModel(plan, modelId)) return { allowed: false, reason: "plan_blocked" };
  return { allowed: true };
}
