import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
  LogController,
} from "fastify";
import { UPSTREAM_SECRETS } from "../config.ts";
import { registerDashboard } from "../dashboard/register-dashboard.ts";
import { BODY_LIMIT } from "../domain/constants.ts";
import { coreGatewayDeps } from "../gateway/core-deps.ts";
import { registerGateway } from "../gateway/register-gateway.ts";
import type { Services } from "../services.ts";
import { decoratePrincipal } from "./auth.ts";
import { RETRY_AFTER_SECONDS, sendNativeError } from "./errors.ts";
import { guardedJsonParser, serializeJson } from "./json.ts";
import { metricsRoute, observeRequests } from "./metrics.ts";
import { nativeRoutes } from "./native/routes.ts";
import { refuseUnsafeText } from "./nul-guard.ts";
import { SURFACES, surfaceOf } from "./surfaces.ts";
import { validatorCompiler } from "./validation.ts";

export interface AppOptions {
  logger?: FastifyServerOptions["logger"];
  /** the process's own pino logger (main.ts), instead of `logger` options */
  loggerInstance?: FastifyBaseLogger;
  /** a bearer token that may read `GET /metrics` besides the root key (TALLY_METRICS_TOKEN) */
  metricsToken?: string | null;
  /** where upstreams' secrets are read from by `api_key_env` name (default: the process environment) */
  upstreamSecrets?: Readonly<Record<string, string | undefined>>;
}

/** Never log a secret: keys travel in these headers. */
export const REDACT = ["req.headers.authorization", 'req.headers["x-key"]', "req.headers.cookie"];

/**
 * The HTTP application: one Fastify instance, one folder per API surface, each a thin
 * translator over the same services. Each surface maps errors to its own wire format.
 */
export async function buildApp(services: Services, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.loggerInstance
      ? { loggerInstance: options.loggerInstance }
      : { logger: options.logger ?? false }),
    bodyLimit: BODY_LIMIT,
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    // one line per failed request instead of two per request: logging must not cost the hot path
    logController: new LogController({ requestIdLogLabel: "request_id", disableRequestLogging: true }),
    ajv: { customOptions: { strict: false } },
    // errors the router raises before any hook runs (an over-long path parameter: 414, a bad
    // percent-encoding: 400) still carry x-request-id and the surface's error format
    frameworkErrors: (err, request, reply) => {
      reply.header("x-request-id", request.id);
      return surfaceOf(request.url).sendError(err, request, reply);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  // every response, with or without a schema, goes through the exact-decimal serializer
  app.setSerializerCompiler(() => serializeJson);
  app.setReplySerializer(serializeJson);

  // every surface's JSON bodies: valid UTF-8, bounded nesting, well-formed strings (json.ts)
  const parseJsonText = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, guardedJsonParser(parseJsonText));
  // no route of these surfaces reads plain text: a text/plain body is refused like any other
  // type but JSON, instead of being decoded unchecked and ignored
  app.removeContentTypeParser("text/plain");

  decoratePrincipal(app);
  // the hooks every request passes, in callback style: an async hook costs a promise and a
  // microtask more on each request (docs/decisions/0015, "Measured")
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  // after each surface's key check (onRequest), before any route's own validation: one rule for
  // every surface (see nul-guard.ts)
  app.addHook("preValidation", (request, _reply, done) => {
    try {
      refuseUnsafeText(request);
    } catch (err) {
      return done(err as Error);
    }
    done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    if (reply.statusCode >= 500) {
      request.log.error(
        { method: request.method, url: request.url, status: reply.statusCode },
        "request failed",
      );
    } else if (request.log.level === "debug" || request.log.level === "trace") {
      // the line's object is built only when it is written
      request.log.debug(
        { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime },
        "request",
      );
    }
    done();
  });

  observeRequests(app, services.metrics);

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Tally",
        version: "0.1.0",
        description:
          "Usage metering, licensing and billing for AI model APIs. Every route takes a key as " +
          "`Authorization: Bearer <key>`, `Authorization: Key <key>` or `x-key: <key>`.",
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer" },
          xKey: { type: "apiKey", in: "header", name: "x-key" },
        },
      },
      security: [{ bearer: [] }, { xKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  app.setErrorHandler((err, request, reply) => sendNativeError(err, request, reply));
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: {
        code: "NOT_FOUND",
        message: `Route ${request.method} ${request.url.split("?")[0]} not found`,
        request_id: request.id,
      },
    }),
  );

  app.get(
    "/healthz",
    {
      schema: {
        tags: ["operations"],
        summary: "Whether the store answers: 200 ok, or 503 unavailable (no key needed)",
        security: [],
      },
    },
    async (_request, reply) => {
      const health = await services.health();
      if (health.ok) return { status: "ok", store: health.store };
      reply.header("retry-after", String(RETRY_AFTER_SECONDS));
      return reply.status(503).send({ status: "unavailable", store: health.store });
    },
  );
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  metricsRoute(app, services, options.metricsToken ?? null);

  // ---- dashboard (issue 18): pages at /dashboard and its session cookie, which requireKey accepts
  // (src/dashboard/session-auth.ts); registered before the surfaces ----
  await registerDashboard(app as unknown as FastifyInstance, {
    authenticate: (secret) => services.auth.authenticate(secret),
    principalOfKey: (keyId) => services.auth.principalOfKey(keyId),
    principalOfPortal: (accountId, userId, openedAt) =>
      services.auth.principalOfPortal(accountId, userId, openedAt),
    consumePortalLink: (token) => services.portal.consume(token),
    sessions: services.sessions,
    now: services.now,
  });
  // ---- end dashboard ----

  await app.register(nativeRoutes(services));
  for (const surface of SURFACES) await app.register(surface.plugin(services), { prefix: surface.prefix });
  await registerGateway(app, coreGatewayDeps(services, { env: options.upstreamSecrets ?? UPSTREAM_SECRETS }));

  await app.ready();
  return app;
}
