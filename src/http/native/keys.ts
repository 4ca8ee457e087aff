import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { DomainError } from "../../domain/errors.ts";
import { formatUtc } from "../../domain/time.ts";
import type { ApiKey } from "../../manage/operator-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { Id, ListQuery, listJson } from "./schemas.ts";

const at = (v: number | null | undefined) => (v === null || v === undefined ? null : formatUtc(v));

/** A key on the wire, never its secret or digest: every route that answers one answers this. */
const keyJson = (k: ApiKey) => ({
  id: k.id,
  user_id: k.userId,
  account_id: k.accountId,
  label: k.label,
  prefix: k.prefix,
  created_at: formatUtc(k.createdAt),
  last_used_at: at(k.lastUsedAt),
  revoked_at: at(k.revokedAt),
});

/** A key with the secret just issued for it (`key`), shown only in this answer. */
const issuedKeyJson = (k: ApiKey & { secret: string }) => ({
  ...keyJson(k),
  key: k.secret,
  previous_key_expires_at: at(k.previousExpiresAt),
});

/** The rotation's optional body, read here like the create's (any content type, or none). */
function readRotateBody(body: unknown): { grace_seconds?: number } {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body))
    throw DomainError.validation(["body"], "must be an object");
  const { grace_seconds, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra) throw DomainError.validation(["body", extra], "unknown field");
  if (grace_seconds === undefined) return {};
  if (typeof grace_seconds !== "number")
    throw DomainError.validation(["body", "grace_seconds"], "must be a whole number of seconds");
  return { grace_seconds };
}

/** The body is optional (any content type, or none), so it is read here rather than by a schema. */
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

/**
 * `POST /v1/users/{id}/keys`, `PATCH`/`DELETE /v1/keys/{id}` and `POST /v1/keys/{id}/rotate` (root
 * or the account's admin); `GET /v1/users/{id}/keys`, `GET /v1/accounts/{id}/keys` and
 * `GET /v1/keys/{id}` (admins their account, members their own keys).
 */
export function keyRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/users/:id/keys",
      {
        schema: {
          tags: ["operator"],
          summary: "Issue an API key (the secret is shown only in this answer)",
          params: Id,
          description: "Body (optional): `{label?: string}` of 1 to 100 characters; the default is `Key N`.",
        },
      },
      async (request, reply) => {
        const key = await services.manage.createKey(
          principalOf(request),
          request.params.id,
          readKeyBody(request.body),
        );
        return reply.status(201).send(issuedKeyJson(key));
      },
    );

    app.get(
      "/v1/users/:id/keys",
      {
        schema: {
          tags: ["operator"],
          summary: "List a user's keys in creation order (never a secret)",
          params: Id,
          querystring: Type.Object(ListQuery, { additionalProperties: false }),
        },
      },
      async (request) =>
        listJson(
          await services.operator.listUserKeys(principalOf(request), request.params.id, request.query),
          keyJson,
        ),
    );

    app.get(
      "/v1/accounts/:id/keys",
      {
        schema: {
          tags: ["operator"],
          summary: "List an account's keys in creation order, optionally one user's (never a secret)",
          params: Id,
          querystring: Type.Object(
            { ...ListQuery, user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) =>
        listJson(
          await services.operator.listAccountKeys(principalOf(request), request.params.id, request.query),
          keyJson,
        ),
    );

    app.get(
      "/v1/keys/:id",
      { schema: { tags: ["operator"], summary: "Read a key (never its secret)", params: Id } },
      async (request) => keyJson(await services.operator.getKey(principalOf(request), request.params.id)),
    );

    app.patch(
      "/v1/keys/:id",
      {
        schema: {
          tags: ["operator"],
          summary: "Relabel a key",
          params: Id,
          body: Type.Object(
            { label: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) },
            { additionalProperties: false, minProperties: 1 },
          ),
        },
      },
      async (request) =>
        keyJson(await services.operator.updateKey(principalOf(request), request.params.id, request.body)),
    );

    app.post(
      "/v1/keys/:id/rotate",
      {
        schema: {
          tags: ["operator"],
          summary: "Issue a new secret for the same key; the old one stops at once or after grace_seconds",
          params: Id,
          description: "Body (optional): `{grace_seconds?: integer}`, 0 (the default) to 2592000 (30 days).",
        },
      },
      async (request) =>
        issuedKeyJson(
          await services.operator.rotateKey(
            principalOf(request),
            request.params.id,
            readRotateBody(request.body),
          ),
        ),
    );

    app.delete(
      "/v1/keys/:id",
      { schema: { tags: ["operator"], summary: "Revoke an API key", params: Id } },
      async (request, reply) => {
        await services.manage.revokeKey(principalOf(request), request.params.id);
        return reply.status(204).send();
      },
    );
  };
}
