import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from "fastify";
import { registerDashboard } from "../dashboard/register-dashboard.ts";
import type { Services } from "../services.ts";
import { sendNativeError } from "./errors.ts";
import { serializeJson } from "./json.ts";
import { nativeRoutes } from "./native/routes.ts";
import { refuseNul } from "./nul-guard.ts";
import { SURFACES } from "./surfaces.ts";
import { validatorCompiler } from "./validation.ts";

export const MIB = 1024 * 1024;

export interface AppOptions {
  logger?: FastifyServerOptions["logger"];
}

export type App = FastifyInstance;

/** Never log a secret: keys travel in these headers. */
export const REDACT = ["req.headers.authorization", 'req.headers["x-key"]', "req.headers.cookie"];

/**
 * The HTTP application: one Fastify instance, one folder per API surface, each a thin
 * translator over the same services. Each surface maps errors to its own wire format.
 */
export async function buildApp(services: Services, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: MIB,
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    // one line per failed request instead of two per request: logging must not cost the hot path
    logController: new LogController({ requestIdLogLabel: "request_id", disableRequestLogging: true }),
    ajv: { customOptions: { strict: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  // every response, with or without a schema, goes through the exact-decimal serializer
  app.setSerializerCompiler(() => serializeJson);
  app.setReplySerializer(serializeJson);

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  // after each surface's key check (onRequest), before any route's own validation: one rule for
  // every surface (see nul-guard.ts)
  app.addHook("preValidation", async (request) => refuseNul(request));
  app.addHook("onResponse", async (request, reply) => {
    if (reply.statusCode >= 500) {
      request.log.error(
        { method: request.method, url: request.url, status: reply.statusCode },
        "request failed",
      );
    } else {
      request.log.debug(
        { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime },
        "request",
      );
    }
  });

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

  app.get("/healthz", { schema: { hide: true } }, async (_request, reply) => {
    try {
      await services.store.ping();
      return { status: "ok", store: services.store.dialect };
    } catch {
      return reply.status(503).send({ status: "unavailable", store: services.store.dialect });
    }
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  // ---- dashboard (issue 18): pages at /dashboard and its session cookie, which every surface's
  // key check accepts (src/dashboard/session-auth.ts); registered before the surfaces ----
  await registerDashboard(app as unknown as FastifyInstance, {
    authenticate: (secret) => services.auth.authenticate(secret),
    principalOfKey: (keyId) => services.auth.principalOfKey(keyId),
    now: services.now,
  });
  // ---- end dashboard ----

  await app.register(nativeRoutes(services));
  for (const surface of SURFACES) await app.register(surface.plugin(services), { prefix: surface.prefix });

  await app.ready();
  return app;
}
