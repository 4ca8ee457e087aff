import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { DomainError } from "../../domain/errors.ts";
import type { WindowStatus } from "../../domain/rate-limits.ts";
import { formatUtc } from "../../domain/time.ts";
import type { CheckInput } from "../../limits/limit-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";

const WindowBody = Type.Object({
  limit: Type.Union([Type.Integer(), Type.Null()]),
  remaining: Type.Union([Type.Integer(), Type.Null()]),
  reset: Type.String(),
});

const windowJson = (w: WindowStatus) => ({
  limit: w.limit,
  remaining: w.remaining,
  reset: formatUtc(w.resetAt),
});

function readCheckBody(body: unknown): CheckInput {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body))
    throw DomainError.validation(["body"], "must be an object");
  const { model_id, account_id, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra) throw DomainError.validation(["body", extra], "unknown field");
  for (const [name, v] of [
    ["model_id", model_id],
    ["account_id", account_id],
  ] as const) {
    if (v !== undefined && (typeof v !== "string" || v.length < 1 || v.length > 200))
      throw DomainError.validation(["body", name], "must be a string of 1 to 200 characters");
  }
  return { model_id: model_id as string | undefined, account_id: account_id as string | undefined };
}

/**
 * `POST /v1/limits/check`: may the key's account make one more request now? A refusal is data
 * (200 with `allowed: false` and a `reason`), never a 429, so a gateway reads it like any answer.
 * `limit`, `remaining` and `reset` are the tighter window's (fewer remaining; on a tie the one
 * resetting later); both windows are in `windows`. null limits are unlimited.
 */
export function limitsCheckRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/limits/check",
      {
        schema: {
          tags: ["limits"],
          summary: "Admit one request for the key's account (consumes one when allowed, nothing when not)",
          description:
            "Body (optional): `{model_id?, account_id?}`; `account_id` only with the root key. With " +
            "`model_id`, a license in force and the plan's allow and block lists decide too. " +
            "`reason` is null when allowed, else one of rate_limited, not_licensed, plan_blocked, " +
            "unknown_model, account_disabled, budget_exceeded (a hard monthly budget is used up: " +
            "`budget` says by how much), insufficient_credit (a prepaid account's payments are " +
            "spent). Each recorded usage event also counts one request " +
            "in the UTC minute and day of its timestamp.",
          response: {
            200: Type.Object({
              allowed: Type.Boolean(),
              reason: Type.Union([Type.String(), Type.Null()]),
              account_id: Type.String(),
              window: Type.Union([Type.Literal("minute"), Type.Literal("day"), Type.Null()]),
              limit: Type.Union([Type.Integer(), Type.Null()]),
              remaining: Type.Union([Type.Integer(), Type.Null()]),
              reset: Type.Union([Type.String(), Type.Null()]),
              windows: Type.Object({ minute: WindowBody, day: WindowBody }),
              budget: Type.Optional(
                Type.Object({
                  limit: Type.String(),
                  spent: Type.String(),
                  held: Type.String(),
                  available: Type.String(),
                }),
              ),
            }),
          },
        },
      },
      async (request) => {
        const r = await services.limits.check(principalOf(request), readCheckBody(request.body));
        const { binding, minute, day } = r.status;
        return {
          allowed: r.allowed,
          reason: r.reason,
          account_id: r.accountId,
          window: binding?.window ?? null,
          limit: binding?.limit ?? null,
          remaining: binding?.remaining ?? null,
          reset: binding ? formatUtc(binding.resetAt) : null,
          windows: { minute: windowJson(minute), day: windowJson(day) },
          ...(r.budget
            ? {
                budget: {
                  limit: r.budget.limit,
                  spent: r.budget.spent,
                  held: r.budget.held,
                  available: r.budget.available,
                },
              }
            : {}),
        };
      },
    );
  };
}
