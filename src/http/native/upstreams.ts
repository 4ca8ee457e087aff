import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { formatUtc } from "../../domain/time.ts";
import type { Upstream } from "../../manage/upstream-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";

/** An upstream as answered: the name of its secret's variable, never the secret. */
const upstreamJson = (u: Upstream) => ({
  id: u.id,
  base_url: u.baseUrl,
  api_key_env: u.apiKeyEnv,
  timeout_ms: u.timeoutMs,
  created_at: formatUtc(u.createdAt),
});

/** `POST /v1/upstreams`, `GET /v1/upstreams`, `GET /v1/upstreams/{id}` (root). */
export function upstreamRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/upstreams",
      {
        schema: {
          tags: ["operator"],
          summary:
            "Add an OpenAI-compatible upstream; its secret is read from the environment variable api_key_env",
          body: Type.Object(
            {
              id: Type.String({ minLength: 1, maxLength: 100 }),
              base_url: Type.String({ minLength: 1, maxLength: 2000 }),
              api_key_env: Type.Optional(
                Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()]),
              ),
              timeout_ms: Type.Optional(Type.Integer()),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const upstream = await services.upstreams.create(principalOf(request), request.body);
        return reply.status(201).send(upstreamJson(upstream));
      },
    );

    app.get(
      "/v1/upstreams",
      {
        schema: {
          tags: ["operator"],
          summary: "List upstreams in creation order",
          querystring: Type.Object({
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
            starting_after: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          }),
        },
      },
      async (request) => {
        const { limit = 50, starting_after } = request.query;
        const page = await services.upstreams.list(principalOf(request), limit, starting_after);
        return { data: page.data.map(upstreamJson), has_more: page.hasMore };
      },
    );

    app.get(
      "/v1/upstreams/:id",
      {
        schema: {
          tags: ["operator"],
          summary: "Read one upstream",
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        },
      },
      async (request) => upstreamJson(await services.upstreams.get(principalOf(request), request.params.id)),
    );
  };
}
