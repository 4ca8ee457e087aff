import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { UNLIMITED } from "../../domain/constants.ts";
import { DomainError } from "../../domain/errors.ts";
import { formatUtc } from "../../domain/time.ts";
import {
  KEY_STATS_SECTIONS,
  type KeyStats,
  type KeyStatsSection,
  queryKeyStats,
  UNLIMITED_DAYS,
} from "../../query/key-stats.ts";
import type { Services } from "../../services.ts";
import { presentedSecret, principalOf, requireKey } from "../auth.ts";
import { dec } from "../json.ts";
import { sendA4fError, sendA4fNotFound } from "./errors.ts";

/**
 * Key usage statistics (seed 003): `GET /v1/usage?section=a,b`. A translator: the core verb
 * `queryKeyStats` computes, this file names the seed's fields and its unlimited markers.
 */
export function a4fRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.setErrorHandler((err, request, reply) => sendA4fError(err, request, reply));
    app.setNotFoundHandler((request, reply) => sendA4fNotFound(request, reply));
    app.addHook("onRequest", requireKey(services));

    const schema = {
      tags: ["a4f"],
      summary: "Usage statistics of the presenting API key and its account (seed 003)",
      description:
        `\`section\`: comma-separated, any of ${KEY_STATS_SECTIONS.join(", ")}; all when omitted. ` +
        `Unlimited numbers are ${UNLIMITED} and an unlimited remaining count is the string \`unlimited\`. ` +
        "Errors: `{error: {message, type, param, request_id}}`. This call consumes no request.",
      querystring: Type.Object({
        section: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
      }),
    };
    const handler = async (request: FastifyRequest<{ Querystring: typeof schema.querystring.static }>) => {
      const sections = readSections(request.query.section);
      const stats = await queryKeyStats(services, principalOf(request), sections);
      // the key's own secret is shown back to it as presented, never kept on the principal
      return statsJson(stats, presentedSecret(request));
    };
    // documented without the trailing slash; the slash form answers the same
    app.get("", { schema }, handler);
    app.get("/", { prefixTrailingSlash: "slash", schema: { ...schema, hide: true } }, handler);
  };
}

/** `a,b` (or the parameter repeated) -> the sections asked for; none given means all. */
export function readSections(value: string | string[] | undefined): KeyStatsSection[] {
  const names = (Array.isArray(value) ? value : [value ?? ""])
    .flatMap((v) => v.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) return [...KEY_STATS_SECTIONS];
  const unknown = names.filter((n) => !(KEY_STATS_SECTIONS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw DomainError.validation(
      ["query", "section"],
      `unknown section ${unknown.join(", ")}; valid sections are: ${KEY_STATS_SECTIONS.join(", ")}`,
    );
  }
  return KEY_STATS_SECTIONS.filter((s) => names.includes(s));
}

const list = (models: string[] | null) => (models ? { models } : "none");

function statsJson(s: KeyStats, secret: string | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (s.account) {
    out.account_information = {
      username: s.account.username,
      current_plan: s.account.planId ?? "none",
      is_enabled: s.account.isEnabled,
      api_key: secret,
      node_id: s.account.nodeId,
    };
  }
  if (s.subscription) {
    out.subscription_details = {
      creation_date: formatUtc(s.subscription.keyCreatedAt),
      total_validity_days: s.subscription.validityDays ?? 0,
      effective_days_remaining:
        s.subscription.daysRemaining === UNLIMITED_DAYS ? UNLIMITED : s.subscription.daysRemaining,
      plan_activation_history: s.subscription.history.map((h) => ({
        plan_id: h.planId,
        activated_at: formatUtc(h.activatedAt),
      })),
    };
  }
  if (s.billing) {
    out.billing_information = {
      payment_transactions: s.billing.payments.map(dec),
      total_amount_paid_usd: dec(s.billing.totalPaid),
      cumulative_cost_usd: dec(s.billing.cumulativeCost),
    };
  }
  if (s.limits) {
    const { minute, day } = s.limits.status;
    out.rate_limits_and_restrictions = {
      requests_per_minute_limit: minute.limit ?? UNLIMITED,
      requests_per_minute_remaining: minute.remaining ?? "unlimited",
      requests_per_minute_reset: formatUtc(minute.resetAt),
      requests_per_day_limit: day.limit ?? UNLIMITED,
      requests_per_day_remaining: day.remaining ?? "unlimited",
      requests_per_day_reset: formatUtc(day.resetAt),
      model_whitelist: list(s.limits.modelWhitelist),
      model_blacklist: list(s.limits.modelBlacklist),
    };
  }
  if (s.usage) {
    const { requests, tokens, images } = s.usage;
    out.usage_statistics = {
      overall_request_counts: { total: requests.total, ...requests.byKind },
      token_consumption: {
        total: tokens.total,
        prompt: tokens.prompt,
        completion: tokens.completion,
        ...tokens.byKind,
      },
      image_consumption: {
        total: dec(images.total),
        // a model named "total" would hide the total: the total wins
        ...Object.fromEntries(
          Object.entries(images.byModel)
            .filter(([m]) => m !== "total")
            .map(([m, q]) => [m, dec(q)]),
        ),
      },
    };
  }
  if (s.models) {
    out.model_specific_usage = Object.fromEntries(
      Object.entries(s.models).map(([modelId, m]) => [
        modelId,
        {
          requests: m.requests,
          quantity: dec(m.quantity),
          unit: m.unit,
          tokens: m.tokens,
          cost_usd: dec(m.costUsd),
          ...(m.meters
            ? {
                meters: Object.fromEntries(
                  Object.entries(m.meters).map(([meter, x]) => [
                    meter,
                    { quantity: dec(x.quantity), cost_usd: dec(x.costUsd) },
                  ]),
                ),
              }
            : {}),
        },
      ]),
    );
  }
  return out;
}
