import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyRequest, FastifySchemaCompiler } from "fastify";
import { MAX_LICENSE_IDEMPOTENCY_KEY_LENGTH } from "../../domain/constants.ts";
import { DomainError, type FieldIssue } from "../../domain/errors.ts";
import {
  type LicenseUsageOutcome,
  MAX_GENERATIONS_PER_REPORT,
  readNumberOfGenerations,
  reportLicenseUsage,
} from "../../ingest/report-license-usage.ts";
import type { Services } from "../../services.ts";
import { principalOf, requireKey } from "../auth.ts";
import {
  INVALID_JSON,
  MISSING_BODY,
  NOT_AN_OBJECT,
  sendFastApiError,
  sendFastApiNotFound,
} from "../fastapi-errors.ts";
import { validatorCompiler } from "../validation.ts";

export const REPORT_USAGE_PATH = "/v1/licenses/models/{model_slug}/usage";
export const NOT_SUPPORTED = (slug: string) => `Model slug ${slug} is not supported for usage reporting`;
/** The seed's text, word for word. */
export const NOT_LICENSED =
  "You have not licensed this model. If you recently changed your subscription, please wait 15mins and then try again.";
/** A plan list refusal says so, so that a licensee with a license in force knows where to look. */
export const PLAN_BLOCKED = (slug: string) =>
  `Your current plan does not allow usage reporting for model ${slug}.`;

/** The seed's `Usage` schema, with the maximum Tally enforces. */
const Usage = Type.Object(
  {
    number_of_generations: Type.Optional(
      Type.Integer({
        exclusiveMinimum: 0,
        maximum: MAX_GENERATIONS_PER_REPORT,
        title: "Number Of Generations",
        description: `Number of generations to report (must be a positive integer, at most ${MAX_GENERATIONS_PER_REPORT.toLocaleString("en-US")} per report)`,
        default: 1,
      }),
    ),
  },
  { title: "Usage" },
);

const Detail = (description: string, example: string) =>
  Type.Object({ detail: Type.String() }, { description, examples: [{ detail: example }] });
const ValidationDetail = Type.Object(
  {
    detail: Type.Array(
      Type.Object({
        loc: Type.Array(Type.Union([Type.String(), Type.Integer()])),
        msg: Type.String(),
        type: Type.String(),
      }),
    ),
  },
  {
    description: "Validation Error - Invalid request body or parameters",
    examples: [
      {
        detail: [
          {
            loc: ["body", "number_of_generations"],
            msg: "Input should be greater than 0",
            type: "greater_than",
          },
        ],
      },
    ],
  },
);

/** A body that no JSON parser took: kept as text so the handler can answer 422, never 415. */
class RawBody {
  constructor(
    readonly text: string,
    readonly contentType: string | null,
  ) {}
}

/**
 * The body and the Idempotency-Key are read by the handler, not by the schema validator, so each
 * bad one gets the FastAPI-shaped 422 and the checks keep their order; the path goes through the
 * shared compiler.
 */
const bodyReadByHandler: FastifySchemaCompiler<unknown> = (route) =>
  route.httpPart === "body" || route.httpPart === "headers" ? () => true : validatorCompiler(route);

function invalid(issue: FieldIssue): DomainError {
  return new DomainError("VALIDATION", issue.msg, [issue]);
}

/** `number_of_generations` from whatever arrived; FastAPI reads a body without content type as JSON. */
function readUsageBody(raw: unknown): number {
  let body = raw;
  if (body instanceof RawBody) {
    if (body.contentType !== null) throw invalid(NOT_AN_OBJECT);
    if (body.text.trim() === "") throw invalid(MISSING_BODY);
    try {
      body = JSON.parse(body.text);
    } catch {
      throw invalid(INVALID_JSON);
    }
  }
  if (body === undefined || body === null) throw invalid(MISSING_BODY);
  if (typeof body !== "object" || Array.isArray(body)) throw invalid(NOT_AN_OBJECT);
  return readNumberOfGenerations((body as Record<string, unknown>).number_of_generations, [
    "body",
    "number_of_generations",
  ]);
}

function readIdempotencyKey(request: FastifyRequest): string | null {
  const value = request.headers["idempotency-key"];
  if (value === undefined) return null;
  const loc = ["header", "idempotency-key"];
  const text = Array.isArray(value) ? value.join(", ") : value;
  if (text.trim() === "")
    throw DomainError.validation(loc, "String should have at least 1 character", "string_too_short");
  if (text.length > MAX_LICENSE_IDEMPOTENCY_KEY_LENGTH) {
    throw DomainError.validation(
      loc,
      `String should have at most ${MAX_LICENSE_IDEMPOTENCY_KEY_LENGTH} characters`,
      "string_too_long",
    );
  }
  return text;
}

/** The license usage report (seeds 000 and 002), mounted under `/v1/licenses`. */
export function bflRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.setErrorHandler(sendFastApiError);
    app.setNotFoundHandler(sendFastApiNotFound);
    // the key is checked before the body is even read: no key and a bad body is a 401
    app.addHook("onRequest", requireKey(services));
    // whatever the content type, the body reaches the handler, which answers 422 for non-JSON
    app.addContentTypeParser("*", { parseAs: "string" }, (request, text, done) => {
      done(null, new RawBody(String(text), request.headers["content-type"] ?? null));
    });

    app.post(
      "/models/:model_slug/usage",
      {
        validatorCompiler: bodyReadByHandler,
        schema: {
          tags: ["licenses"],
          summary: "Report Model Usage",
          operationId: "report_model_usage_v1_licenses_models__model_slug__usage_post",
          description:
            "Reports `number_of_generations` images of the model, generated just now, as one usage event " +
            "attributed to the key and its user, priced at the model's current price. The key's account " +
            "needs a license in force now, and its current plan's model allow and block lists must let " +
            "the model through. An `Idempotency-Key` header (at most " +
            `${MAX_LICENSE_IDEMPOTENCY_KEY_LENGTH} characters) makes a retried report count once; it answers 200 ` +
            "again. Reports are never refused for rate-limit reasons. Checks run in this order: key (401), " +
            "body (422), model slug (400), license and plan (403). A 403 caused by the plan's lists says " +
            `"${PLAN_BLOCKED("<slug>")}"; a missing license answers the seed's text.`,
          params: Type.Object({ model_slug: Type.String({ title: "Model Slug" }) }),
          headers: Type.Object({
            "idempotency-key": Type.Optional(
              Type.String({
                description: "Optional: a retry with the same key counts once",
                maxLength: MAX_LICENSE_IDEMPOTENCY_KEY_LENGTH,
              }),
            ),
          }),
          body: Usage,
          security: [{ xKey: [] }],
          response: {
            200: Type.Object(
              { message: Type.String() },
              {
                description: "Usage reported successfully",
                examples: [{ message: "Usage recorded successfully" }],
              },
            ),
            400: Detail("Bad Request - Model slug not supported", NOT_SUPPORTED("example-model")),
            401: Detail("Unauthorized - Missing, unknown or revoked key", "Invalid or revoked API key"),
            403: Detail("Forbidden - Model not licensed (or not allowed by the current plan)", NOT_LICENSED),
            422: ValidationDetail,
            500: Detail("Internal Server Error - Failed to process usage", "Failed to process usage."),
          },
        },
      },
      async (request, reply) => {
        const numberOfGenerations = readUsageBody(request.body);
        const idempotencyKey = readIdempotencyKey(request);
        const slug = request.params.model_slug;
        let outcome: LicenseUsageOutcome;
        try {
          outcome = await reportLicenseUsage(services, principalOf(request), {
            modelSlug: slug,
            numberOfGenerations,
            idempotencyKey,
            apiName: slug,
            endpoint: REPORT_USAGE_PATH,
          });
        } catch (err) {
          // a lost store answers 503 with Retry-After like every surface (DESIGN, "Bad input and faults")
          if (err instanceof DomainError && err.code !== "INTERNAL") throw err;
          // the event's transaction did not commit: nothing of this report was stored
          request.log.error(
            { err, cause: err instanceof Error ? err.cause : undefined },
            "license usage report failed",
          );
          return reply.status(500).send({ detail: "Failed to process usage." });
        }
        switch (outcome.status) {
          case "recorded":
            return { message: "Usage recorded successfully" };
          case "unsupported_model":
            return reply.status(400).send({ detail: NOT_SUPPORTED(slug) });
          case "not_licensed":
            return reply.status(403).send({ detail: NOT_LICENSED });
          case "plan_blocked":
            return reply.status(403).send({ detail: PLAN_BLOCKED(slug) });
        }
      },
    );
  };
}
