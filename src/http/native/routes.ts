import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { DomainError } from "../../domain/errors.ts";
import { formatUtc } from "../../domain/time.ts";
import { EventInput, MODEL_KIND } from "../../ingest/event-input.ts";
import { MAX_BATCH } from "../../ingest/ingest-service.ts";
import type { Services } from "../../services.ts";
import type { Account, License, Payment, Plan, Subscription, User } from "../../store/store.ts";
import { authenticate } from "../auth.ts";
import { dec } from "../json.ts";
import { auditRoutes } from "./audit-routes.ts";
import { limitsCheckRoutes } from "./limits-check.ts";

const MIB = 1024 * 1024;

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const Instant = Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })], {
  description: "ISO 8601 date-time with offset, or epoch milliseconds",
});
const DecimalValue = Type.Unsafe<number | string>({
  type: ["number", "string"],
  description: "Exact non-negative decimal, as a JSON number or a decimal string",
});
const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    issues: Type.Optional(Type.Array(Type.Unknown())),
    request_id: Type.String(),
  }),
});
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

export const accountJson = (a: Account) => ({
  id: a.id,
  name: a.name,
  is_enabled: a.isEnabled,
  plan_id: a.planId,
  created_at: formatUtc(a.createdAt),
});
export const userJson = (u: User) => ({
  id: u.id,
  account_id: u.accountId,
  username: u.username,
  role: u.role,
  node_id: u.nodeId,
  created_at: formatUtc(u.createdAt),
});
const licenseJson = (l: License) => ({
  id: l.id,
  account_id: l.accountId,
  model_id: l.modelId,
  starts_at: formatUtc(l.startsAt),
  ends_at: l.endsAt === null ? null : formatUtc(l.endsAt),
  created_at: formatUtc(l.createdAt),
});
const planJson = (p: Plan) => ({
  id: p.id,
  requests_per_minute: p.requestsPerMinute,
  requests_per_day: p.requestsPerDay,
  validity_days: p.validityDays,
  model_whitelist: p.modelWhitelist,
  model_blacklist: p.modelBlacklist,
  included: Object.fromEntries(Object.entries(p.included).map(([k, v]) => [k, dec(v)])),
  created_at: formatUtc(p.createdAt),
  updated_at: formatUtc(p.updatedAt),
});
const subscriptionJson = (s: Subscription) => ({
  id: s.id,
  account_id: s.accountId,
  plan_id: s.planId,
  activated_at: formatUtc(s.activatedAt),
  created_at: formatUtc(s.createdAt),
});
const paymentJson = (p: Payment) => ({
  id: p.id,
  account_id: p.accountId,
  amount_usd: dec(p.amountUsd),
  paid_at: formatUtc(p.paidAt),
  reference: p.reference,
  created_at: formatUtc(p.createdAt),
});

function readKeyBody(body: unknown): { label?: string } {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body))
    throw DomainError.validation(["body"], "must be an object");
  const { label, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra) throw DomainError.validation(["body", extra], "unknown field");
  if (label === undefined) return {};
  if (typeof label !== "string" || label.length < 1 || label.length > 100) {
    throw DomainError.validation(["body", "label"], "must be a string of 1 to 100 characters");
  }
  return { label };
}

/** The native API: operator setup and event ingestion (DESIGN.md, "Native API"). */
export function nativeRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    app.addHook("onRequest", async (request) => {
      await authenticate(request, services);
    });
    await app.register(auditRoutes(services));
    await app.register(limitsCheckRoutes(services));

    app.post(
      "/v1/accounts",
      {
        schema: {
          tags: ["operator"],
          summary: "Create an account",
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 200 }),
              plan_id: Type.Optional(Type.String({ minLength: 1 })),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({
              id: Type.String(),
              name: Type.String(),
              is_enabled: Type.Boolean(),
              created_at: Type.String(),
            }),
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const account = await services.manage.createAccount(
          request.principal!,
          request.body as { name: string; plan_id?: string },
        );
        return reply.status(201).send(accountJson(account));
      },
    );

    app.get(
      "/v1/accounts/:id",
      { schema: { tags: ["operator"], summary: "Read an account", params: Id } },
      async (request) => {
        const { id } = request.params as { id: string };
        return accountJson(await services.manage.getAccount(request.principal!, id));
      },
    );

    app.post(
      "/v1/accounts/:id/users",
      {
        schema: {
          tags: ["operator"],
          summary: "Create a user in an account",
          params: Id,
          body: Type.Object(
            {
              username: Type.String({ minLength: 1, maxLength: 200 }),
              role: Type.Union([Type.Literal("admin"), Type.Literal("member")]),
              node_id: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({
              id: Type.String(),
              account_id: Type.String(),
              username: Type.String(),
              role: Type.String(),
              node_id: Type.Union([Type.String(), Type.Null()]),
              created_at: Type.String(),
            }),
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        const user = await services.manage.createUser(request.principal!, id, request.body as never);
        return reply.status(201).send(userJson(user));
      },
    );

    app.post(
      "/v1/users/:id/keys",
      {
        schema: {
          tags: ["operator"],
          summary: "Issue an API key (the secret is shown only in this answer)",
          params: Id,
          description: "Body (optional): `{label?: string}` of 1 to 100 characters; the default is `Key N`.",
          response: {
            201: Type.Object({
              id: Type.String(),
              user_id: Type.String(),
              account_id: Type.String(),
              label: Type.String(),
              prefix: Type.String(),
              key: Type.String(),
              created_at: Type.String(),
            }),
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        const key = await services.manage.createKey(request.principal!, id, readKeyBody(request.body));
        return reply.status(201).send({
          id: key.id,
          user_id: key.userId,
          account_id: key.accountId,
          label: key.label,
          prefix: key.prefix,
          key: key.secret,
          created_at: formatUtc(key.createdAt),
        });
      },
    );

    app.delete(
      "/v1/keys/:id",
      { schema: { tags: ["operator"], summary: "Revoke an API key", params: Id } },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        await services.manage.revokeKey(request.principal!, id);
        return reply.status(204).send();
      },
    );

    app.post(
      "/v1/models",
      {
        schema: {
          tags: ["operator"],
          summary: "Create or update a model; a new unit_price adds a price version from effective_from",
          body: Type.Object(
            {
              id: Type.String({ minLength: 1, maxLength: 200 }),
              unit: Type.String({ minLength: 1, maxLength: 50 }),
              kind: MODEL_KIND,
              unit_price: DecimalValue,
              currency: Type.Optional(Type.String({ pattern: "^[A-Z]{3}$" })),
              reporting_enabled: Type.Optional(Type.Boolean()),
              effective_from: Type.Optional(Instant),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const r = await services.manage.upsertModel(request.principal!, request.body as never);
        return reply.status(r.created ? 201 : 200).send({
          id: r.model.id,
          unit: r.model.unit,
          kind: r.model.kind,
          unit_price: dec(r.unitPrice),
          currency: r.currency,
          reporting_enabled: r.model.reportingEnabled,
          effective_from: formatUtc(r.effectiveFrom),
          created_at: formatUtc(r.model.createdAt),
          updated_at: formatUtc(r.model.updatedAt),
        });
      },
    );

    app.get(
      "/v1/models",
      { schema: { tags: ["operator"], summary: "List models with their price versions" } },
      async () => {
        const [models, prices] = await Promise.all([
          services.store.listModels(),
          services.store.listPrices(),
        ]);
        return models.map((m) => ({
          id: m.id,
          unit: m.unit,
          kind: m.kind,
          reporting_enabled: m.reportingEnabled,
          prices: prices
            .filter((p) => p.modelId === m.id)
            .map((p) => ({
              unit_price: dec(p.unitPrice),
              currency: p.currency,
              effective_from: formatUtc(p.effectiveFrom),
            })),
        }));
      },
    );

    app.post(
      "/v1/accounts/:id/licenses",
      {
        schema: {
          tags: ["operator"],
          summary: "License a model to an account from starts_at until ends_at",
          params: Id,
          body: Type.Object(
            {
              model_id: Type.String({ minLength: 1 }),
              starts_at: Type.Optional(Instant),
              ends_at: Type.Optional(Type.Union([Instant, Type.Null()])),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        return reply
          .status(201)
          .send(
            licenseJson(await services.manage.createLicense(request.principal!, id, request.body as never)),
          );
      },
    );

    const Limit = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]);
    app.post(
      "/v1/plans",
      {
        schema: {
          tags: ["operator"],
          summary: "Create or update a plan (null limits are unlimited; validity_days -999999 is unlimited)",
          body: Type.Object(
            {
              id: Type.String({ minLength: 1, maxLength: 100 }),
              requests_per_minute: Limit,
              requests_per_day: Limit,
              validity_days: Type.Integer(),
              model_whitelist: Type.Optional(
                Type.Union([Type.Array(Type.String({ minLength: 1 })), Type.Null()]),
              ),
              model_blacklist: Type.Optional(
                Type.Union([Type.Array(Type.String({ minLength: 1 })), Type.Null()]),
              ),
              included: Type.Optional(Type.Record(Type.String(), DecimalValue)),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const r = await services.manage.upsertPlan(request.principal!, request.body as never);
        return reply.status(r.created ? 201 : 200).send(planJson(r.plan));
      },
    );

    app.post(
      "/v1/accounts/:id/subscriptions",
      {
        schema: {
          tags: ["operator"],
          summary: "Activate a plan for an account (history kept)",
          params: Id,
          body: Type.Object(
            { plan_id: Type.String({ minLength: 1 }), activated_at: Type.Optional(Instant) },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        return reply
          .status(201)
          .send(
            subscriptionJson(
              await services.manage.createSubscription(request.principal!, id, request.body as never),
            ),
          );
      },
    );

    app.post(
      "/v1/accounts/:id/payments",
      {
        schema: {
          tags: ["operator"],
          summary: "Record a payment",
          params: Id,
          body: Type.Object(
            {
              amount_usd: DecimalValue,
              paid_at: Type.Optional(Instant),
              reference: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        return reply
          .status(201)
          .send(
            paymentJson(await services.manage.createPayment(request.principal!, id, request.body as never)),
          );
      },
    );

    app.post(
      "/v1/events",
      {
        bodyLimit: 16 * MIB,
        // the body schema documents the events; the ingest path validates each one on its own,
        // so one bad item is a `rejected` entry rather than a 400 for the whole batch
        validatorCompiler: () => () => true,
        schema: {
          tags: ["ingest"],
          summary: `Record usage events: one event, or {events: [...]} with up to ${MAX_BATCH}`,
          description:
            "Each event is validated on its own: bad items are listed in `rejected` and the rest are " +
            "stored. `id` is the idempotency key (unique per account): a retry counts as a duplicate. " +
            "The answer comes after the events are durably committed.",
          body: Type.Union([
            EventInput,
            Type.Object({
              account_id: Type.Optional(
                Type.String({ description: "Root key only: the account of every event" }),
              ),
              events: Type.Array(EventInput, { maxItems: MAX_BATCH }),
            }),
          ]),
          response: {
            200: Type.Object({
              accepted: Type.Integer(),
              duplicates: Type.Integer(),
              rejected: Type.Array(
                Type.Object({
                  index: Type.Integer(),
                  error: Type.String(),
                  field: Type.Optional(Type.String()),
                }),
              ),
              results: Type.Array(
                Type.Object({
                  index: Type.Integer(),
                  id: Type.String(),
                  usage_id: Type.String(),
                  status: Type.String(),
                }),
              ),
            }),
            ...errors,
          },
        },
      },
      async (request) => services.ingest.recordBatch(request.principal!, request.body),
    );
  };
}
