import type { Principal } from "../auth/principal.ts";
import { ONE } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { uuid7 } from "../domain/ids.ts";
import { entitlementAt, readAccountPlan } from "../manage/account-plan.ts";
import type { Store, UsageEvent } from "../store/store.ts";
import type { IngestService } from "./ingest-service.ts";
import type { ModelCatalog } from "./model-catalog.ts";

/**
 * One report may carry at most this many generations: enough for any honest bulk report, and a
 * bound that keeps an accidental 1e15 out of a licensee's invoice.
 */
export const MAX_GENERATIONS_PER_REPORT = 1_000_000;

/** What a licensee reports: `number_of_generations` images of `modelSlug`, generated just now. */
export interface LicenseUsageReport {
  modelSlug: string;
  /** a positive integer, at most MAX_GENERATIONS_PER_REPORT */
  numberOfGenerations: number;
  /** the client's Idempotency-Key: a retry with the same key counts once */
  idempotencyKey?: string | null;
  /** recorded on the event; defaults to the model slug */
  apiName?: string;
  /** recorded on the event, e.g. the route that received the report */
  endpoint?: string;
}

/**
 * Expected refusals are data; only a failure to store throws. `duplicate` means the report's
 * Idempotency-Key was seen before: nothing new was counted.
 */
export type LicenseUsageOutcome =
  | { status: "recorded"; event: UsageEvent; duplicate: boolean }
  | { status: "unsupported_model" }
  | { status: "not_licensed" }
  | { status: "plan_blocked" };

export interface LicenseUsageDeps {
  store: Store;
  catalog: ModelCatalog;
  ingest: IngestService;
  now: () => number;
}

/**
 * Event ids of license reports live in their own namespace, per model, so a client's key never
 * meets another kind of id; unkeyed reports get `license-report:<uuid>`, which has no second colon.
 */
export function licenseReportEventId(modelSlug: string, idempotencyKey: string): string {
  return `license-report:${modelSlug}:${idempotencyKey}`;
}

/**
 * Checks a report's number of generations; the issue names the field as `loc` says, in the
 * FastAPI manner (`greater_than`, `int_type`, ...).
 */
export function readNumberOfGenerations(value: unknown, loc: (string | number)[]): number {
  if (value === undefined) return 1;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw DomainError.validation(loc, "Input should be a valid integer", "int_type");
  }
  if (!Number.isInteger(value)) {
    throw DomainError.validation(
      loc,
      "Input should be a valid integer, got a number with a fractional part",
      "int_from_float",
    );
  }
  if (value <= 0) throw DomainError.validation(loc, "Input should be greater than 0", "greater_than");
  if (value > MAX_GENERATIONS_PER_REPORT) {
    throw DomainError.validation(
      loc,
      `Input should be less than or equal to ${MAX_GENERATIONS_PER_REPORT}`,
      "less_than_equal",
    );
  }
  return value;
}

/**
 * A licensee reports generations of a model (seeds 000 and 002; the gateway reuses it). The key's
 * account must hold a license in force now and its current plan must allow the model; then one
 * image event of `numberOfGenerations`, priced at the model's current price, is durably recorded
 * for the key and its user. Never refused for rate reasons: it reports what already happened.
 */
export async function reportLicenseUsage(
  deps: LicenseUsageDeps,
  principal: Principal,
  report: LicenseUsageReport,
): Promise<LicenseUsageOutcome> {
  const quantity = readNumberOfGenerations(report.numberOfGenerations, ["numberOfGenerations"]);
  const entry = await deps.catalog.get(report.modelSlug);
  if (!entry?.model.reportingEnabled) return { status: "unsupported_model" };
  // the operator's root key belongs to no account, so it holds no license
  if (principal.kind !== "user") return { status: "not_licensed" };

  const at = deps.now();
  const { plan } = await readAccountPlan(deps.store, principal.accountId, at);
  const entitlement = await entitlementAt(deps.store, principal.accountId, plan, entry.model.id, at);
  if (!entitlement.allowed) return { status: entitlement.reason };

  // priced by the ingest path, like every event: the model's unit and price in force at `at`
  const { event, outcome } = await recordPriced(deps.ingest, {
    eventId: report.idempotencyKey
      ? licenseReportEventId(entry.model.id, report.idempotencyKey)
      : `license-report:${uuid7()}`,
    accountId: principal.accountId,
    ts: at,
    userId: principal.userId,
    keyId: principal.keyId,
    modelId: entry.model.id,
    apiName: report.apiName ?? entry.model.id,
    endpoint: report.endpoint ?? null,
    kind: "image",
    quantity: BigInt(quantity) * ONE,
    tokensPrompt: 0,
    tokensCompletion: 0,
    metadata: null,
    apiKeyUsed: null,
  });
  return { status: "recorded", event, duplicate: outcome.status === "duplicate" };
}

/**
 * The report carries no price, so a pricing refusal (no price in force for a reportable model) is
 * the operator's misconfiguration, not the client's bad input: it fails as an internal error.
 */
async function recordPriced(ingest: IngestService, e: Parameters<IngestService["recordOne"]>[0]) {
  try {
    return await ingest.recordOne(e);
  } catch (err) {
    if (err instanceof DomainError && err.code === "VALIDATION") {
      throw new DomainError(
        "INTERNAL",
        `license report for ${e.modelId} could not be priced: ${err.message}`,
      );
    }
    throw err;
  }
}
