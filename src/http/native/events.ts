import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { EVENTS_BODY_LIMIT } from "../../domain/constants.ts";
import { EventInput } from "../../ingest/event-input.ts";
import { MAX_BATCH } from "../../ingest/ingest-service.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { errors } from "./schemas.ts";

/** `POST /v1/events`: one event or a batch, each validated on its own by the ingest path. */
export function eventRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/events",
      {
        bodyLimit: EVENTS_BODY_LIMIT,
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
            200: BatchAnswer,
            // nothing stored and something refused: the same report, as an error status
            422: BatchAnswer,
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const result = await services.ingest.recordBatch(principalOf(request), request.body);
        const refusedAll = result.accepted === 0 && result.duplicates === 0 && result.rejected.length > 0;
        return reply.status(refusedAll ? 422 : 200).send(result);
      },
    );
  };
}

const BatchAnswer = Type.Object({
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
});
