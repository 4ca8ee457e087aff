import type { UserPrincipal } from "../auth/principal.ts";
import { type BudgetHold, budgetAccountOf, hasSpendLimit } from "../budget/budget-service.ts";
import { reservationOf } from "../domain/budget.ts";
import { type Dec, formatDec, mulDec, sumDec, ZERO } from "../domain/decimal.ts";
import {
  billableQuantities,
  costOfQuantities,
  type MeterPrices,
  type Quantities,
  quantityInUnit,
  tokensOf,
} from "../domain/meters.ts";
import { priceAt } from "../domain/pricing.ts";
import type { LimitStatus } from "../domain/rate-limits.ts";
import { presentedSecret } from "../http/auth.ts";
import { readAccountPlan } from "../manage/account-plan.ts";
import type { Services } from "../services.ts";
import type { Account, Plan, Upstream } from "../store/store.ts";
import type {
  AdmissionContext,
  Admitted,
  Authenticated,
  GatewayDeps,
  GatewayRefusal,
  GatewayRequest,
  SettleContext,
  Settlement,
} from "./gateway-deps.ts";

/** What admission hands back to itself through the gateway. */
interface Caller {
  principal: UserPrincipal;
  account: Account;
}

/** What admission keeps for settling: the budget hold, if the account has a limit. */
interface Hold {
  budget: BudgetHold | null;
}

export interface CoreGatewayOptions {
  /** where an upstream's secret is read from, at request time (default: process.env via config) */
  env: Readonly<Record<string, string | undefined>>;
  /** how long a remembered upstream record is trusted */
  upstreamTtlMs?: number;
}

/**
 * How long a settled request's event may wait for others to share its durable commit (decision
 * 0013). Each SQLite commit blocks the event loop for its fsync; at 5 ms the commits still cost a
 * gateway request 1.4x the CPU of 25 ms at 50 connections and 1.5x at one (paired A/B runs).
 */
const SETTLE_COMMIT_LINGER_MS = 25;

/**
 * The core behind the gateway (gateway-deps.ts): keys through services.auth, models and prices
 * through the catalog, licenses, plan lists and rate limits through the same LimitService check as
 * `POST /v1/limits/check` (one rule in one place), and each answered request recorded through
 * IngestService as one event, marked admitted so the rate windows count it once.
 */
export function coreGatewayDeps(services: Services, options: CoreGatewayOptions): GatewayDeps {
  const upstreams = new Map<string, { upstream: Upstream | null; until: number }>();
  const upstreamTtlMs = options.upstreamTtlMs ?? 1000;

  async function upstreamOf(id: string): Promise<Upstream | null> {
    const at = Date.now();
    const hit = upstreams.get(id);
    if (hit && hit.until > at) return hit.upstream;
    const upstream = await services.store.getUpstream(id);
    upstreams.set(id, { upstream, until: at + upstreamTtlMs });
    return upstream;
  }

  return {
    async authenticate(request: GatewayRequest): Promise<Authenticated | GatewayRefusal> {
      const secret = presentedSecret(request);
      if (!secret) return refusal(401, "invalid_api_key", "Missing API key.");
      const principal = await services.auth.authenticate(secret);
      if (!principal) return refusal(401, "invalid_api_key", "Invalid or revoked API key.");
      if (principal.kind !== "user")
        return refusal(
          403,
          "account_key_required",
          "The gateway meters an account's use: call it with an account's key.",
        );
      const { account, plan } = await readAccountPlan(services.store, principal.accountId, services.now());
      if (!account?.isEnabled) return refusal(401, "account_disabled", "The key's account is disabled.");
      const caller: Caller = { principal, account };
      return { ok: true, caller, rateHeaders: currentRateHeaders(services, account.id, plan) };
    },

    async admit(ctx: AdmissionContext): Promise<Admitted | GatewayRefusal> {
      const { principal, account } = ctx.caller as Caller;
      const entry = await services.catalog.get(ctx.model);
      const upstream = entry?.model.upstreamId ? await upstreamOf(entry.model.upstreamId) : null;
      if (!entry || !upstream)
        return refusal(
          404,
          "model_not_found",
          `The model \`${ctx.model}\` does not exist or is not served here.`,
          "model",
        );
      const at = services.now();
      const price = priceAt(entry.prices, at);
      if (!price)
        return refusal(400, "model_not_priced", `The model \`${ctx.model}\` has no price in force.`, "model");
      if (!price.meters && quantityInUnit(entry.model.unit, {}) === null)
        return refusal(
          400,
          "model_not_priced",
          `The model \`${ctx.model}\` is priced per ${entry.model.unit}, which the gateway cannot measure.`,
          "model",
        );
      const check = await services.limits.check(principal, { model_id: ctx.model });
      const headers = rateHeaders(check.status, at);
      switch (check.reason) {
        case null:
          break;
        case "rate_limited": {
          const waitMs = (check.status.binding?.resetAt ?? at + 1000) - at;
          return withHeaders(
            refusal(
              429,
              "rate_limit_exceeded",
              "Rate limit reached for requests; retry after the window resets.",
            ),
            Object.assign({}, headers, { "retry-after": String(Math.max(1, Math.ceil(waitMs / 1000))) }),
          );
        }
        case "not_licensed":
          return withHeaders(
            refusal(
              403,
              "model_not_licensed",
              `The account holds no license in force for \`${ctx.model}\`.`,
              "model",
            ),
            headers,
          );
        case "plan_blocked":
          return withHeaders(
            refusal(403, "model_not_allowed", `The account's plan does not allow \`${ctx.model}\`.`, "model"),
            headers,
          );
        case "account_disabled":
          return withHeaders(refusal(401, "account_disabled", "The key's account is disabled."), headers);
        case "unknown_model":
          return withHeaders(
            refusal(404, "model_not_found", `The model \`${ctx.model}\` does not exist.`, "model"),
            headers,
          );
        // nothing left at all under a hard limit; a request that does not fit what is left is
        // refused by the reservation below, with the same 402
        case "budget_exceeded":
        case "insufficient_credit":
          return withHeaders(
            refusal(402, check.reason, check.budget?.message ?? "The spending limit is reached."),
            headers,
          );
      }
      const budgetAccount = budgetAccountOf(account);
      let budget: BudgetHold | null = null;
      if (hasSpendLimit(budgetAccount)) {
        const amount = price.meters
          ? await meteredReservationFor(ctx, price.meters)
          : await reservationFor(ctx, entry.model.unit, price.unitPrice);
        const reserved = await services.budget.reserve(budgetAccount, amount);
        if (!reserved.ok)
          return withHeaders(refusal(402, reserved.refusal.code, reserved.refusal.message), headers);
        budget = reserved.hold;
      }
      const hold: Hold = { budget };
      return {
        ok: true,
        headers,
        hold,
        route: {
          baseUrl: upstream.baseUrl,
          apiKey: upstream.apiKeyEnv ? (options.env[upstream.apiKeyEnv] ?? null) : null,
          upstreamModel: entry.model.upstreamModel ?? entry.model.id,
          timeoutMs: upstream.timeoutMs,
        },
      };
    },

    async settle(ctx: SettleContext, settlement: Settlement): Promise<void> {
      const { principal } = ctx.caller as Caller;
      const entry = await services.catalog.get(ctx.model);
      const unit = entry?.model.unit ?? "token";
      const at = services.now();
      // a model priced per meter is billed per meter; otherwise in its one unit
      const meters = entry ? (priceAt(entry.prices, at)?.meters ?? null) : null;
      const quantities = meters ? billableQuantities(settlement.quantities, meters) : null;
      const quantity = quantities
        ? sumDec(Object.values(quantities))
        : quantityInUnit(unit, settlement.quantities);
      const tokens = tokensOf(settlement.quantities);
      const hold = ctx.admission.hold as Hold;
      // no object here starts with a spread: on Node 20 each later field of such an object takes
      // V8's slow path and a hidden class of its own (decision 0021, "Spreads")
      const event = await services.ingest.price(
        {
          quantities: quantities ?? undefined,
          eventId: ctx.requestId,
          accountId: principal.accountId,
          ts: at,
          userId: principal.userId,
          keyId: principal.keyId,
          modelId: ctx.model,
          apiName: ctx.model,
          endpoint: ctx.endpoint,
          quantity: quantity ?? 0n,
          tokensPrompt: tokens.prompt,
          tokensCompletion: tokens.completion,
          // the settlement's metadata as is (it states usage_source and status itself), plus the
          // measured quantities
          metadata: {
            usage_source: settlement.usageSource,
            status: settlement.status,
            quantities: quantitiesJson(settlement.quantities),
            ...settlement.metadata,
          },
          apiKeyUsed: principal.keyPrefix,
          admitted: true,
        },
        ["body"],
      );
      // the hold shrinks to the real cost, the event commits, then the hold is released
      await services.budget.finish(hold.budget, event.cost, async () => {
        // the client has its answer: the event may wait a moment to share a durable commit
        await services.ingest.append([event], SETTLE_COMMIT_LINGER_MS);
      });
    },
  };
}

/** The account's x-ratelimit-* trio as it stands, read when asked. */
function currentRateHeaders(
  services: Services,
  accountId: string,
  plan: Plan | null,
): () => Promise<Record<string, string>> {
  return async () => rateHeaders(await services.limits.status(accountId, plan), services.now());
}

/** The x-ratelimit-* trio of the tighter window (none while the account is unlimited). */
function rateHeaders(status: LimitStatus, at: number): Record<string, string> {
  const w = status.binding;
  if (!w || w.limit === null) return {};
  return {
    "x-ratelimit-limit-requests": String(w.limit),
    "x-ratelimit-remaining-requests": String(w.remaining ?? 0),
    "x-ratelimit-reset-requests": String(Math.max(0, Math.ceil((w.resetAt - at) / 1000))),
  };
}

/**
 * The largest cost the request can have (DESIGN "Budgets"): for a token-priced model a tokenizer
 * count of its text plus its `max_tokens`, both at the model's price (an embedding produces no
 * output); a quantity known before forwarding (speech characters, images) at its exact cost; one
 * request for a per-request model.
 */
async function reservationFor(ctx: AdmissionContext, unit: string, unitPrice: Dec): Promise<Dec> {
  const known = ctx.knownQuantities ? quantityInUnit(unit, ctx.knownQuantities) : null;
  const knownCost =
    known !== null && known > ZERO ? mulDec(known, unitPrice) : unit === "request" ? unitPrice : null;
  const tokens = unit === "token";
  return reservationOf({
    inputTokens: tokens && knownCost === null ? await ctx.countInputTokens() : 0,
    maxOutputTokens: ctx.maxOutputTokens,
    inputTokenPrice: tokens ? unitPrice : null,
    outputTokenPrice: tokens && ctx.kind === "chat" ? unitPrice : null,
    knownCost,
    defaultReservation: null,
  }).amount;
}

/**
 * The largest cost of a request to a model priced per meter: its known quantities (characters,
 * images) at their meters' prices, or its input tokens and `max_tokens` at the input and output
 * token prices.
 */
async function meteredReservationFor(ctx: AdmissionContext, meters: MeterPrices): Promise<Dec> {
  const known = ctx.knownQuantities ? billableQuantities(ctx.knownQuantities, meters) : null;
  const knownCost = known && Object.keys(known).length > 0 ? costOfQuantities(known, meters).total : null;
  const priced = meters.input_token !== undefined || meters.output_token !== undefined;
  return reservationOf({
    inputTokens: priced && knownCost === null ? await ctx.countInputTokens() : 0,
    maxOutputTokens: ctx.maxOutputTokens,
    inputTokenPrice: meters.input_token ?? null,
    outputTokenPrice: ctx.kind === "chat" ? (meters.output_token ?? null) : null,
    knownCost,
    defaultReservation: null,
  }).amount;
}

function refusal(status: number, code: string, message: string, param: string | null = null): GatewayRefusal {
  return { ok: false, status, code, message, param };
}

/**
 * A refusal with the rate-limit headers it answers with. Set on the new object, not spread into a
 * copy: on Node 20 `{ ...r, headers }` takes V8's slow path (decision 0021, "Spreads").
 */
function withHeaders(r: GatewayRefusal, headers: Record<string, string>): GatewayRefusal {
  r.headers = headers;
  return r;
}

function quantitiesJson(q: Quantities): Record<string, string> {
  return Object.fromEntries(Object.entries(q).map(([m, v]) => [m, formatDec(v)]));
}
