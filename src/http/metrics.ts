import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { DomainError } from "../domain/errors.ts";
import { digestsEqual, hashSecret } from "../domain/keys.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { Services } from "../services.ts";
import { presentedSecret } from "./auth.ts";

/**
 * Prometheus metrics over HTTP: one histogram observation per answered request, labelled by the
 * route's pattern (`/v1/accounts/:id`, never the raw URL) so the label set stays bounded, and
 * `GET /metrics` for the root key or the bearer token TALLY_METRICS_TOKEN.
 */
export function observeRequests(app: FastifyInstance, metrics: Metrics): void {
  // hooks in callback style: each runs on every request, and an async hook costs a promise and a
  // microtask more (docs/decisions/0015, "Measured")
  const closed = (): void => {
    metrics.inFlight--;
  };
  // in flight from the first hook until the response closes: sent in full, or its client gone
  app.addHook("onRequest", (_request, reply, done) => {
    metrics.inFlight++;
    reply.raw.on("close", closed);
    done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    metrics.observeRequest(
      request.method,
      request.routeOptions.url ?? "unmatched",
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  });
  // a request the store could not serve (answered 503 by each surface's error handler)
  app.addHook("onError", (_request, _reply, err, done) => {
    if (err instanceof DomainError && err.code === "UNAVAILABLE") metrics.storeErrors.inc({ op: "request" });
    done();
  });
}

/** `GET /metrics`, registered after the error handler so a refusal gets the native 401. */
export function metricsRoute(app: FastifyInstance, services: Services, metricsToken: string | null): void {
  const { metrics } = services;
  const tokenDigest = metricsToken ? hashSecret(metricsToken) : null;
  const allowed = async (request: FastifyRequest): Promise<boolean> => {
    const secret = presentedSecret(request);
    if (!secret) return false;
    if (tokenDigest && digestsEqual(hashSecret(secret), tokenDigest)) return true;
    const principal = await services.auth.authenticate(secret).catch(() => null);
    return principal?.kind === "root";
  };
  app.get("/metrics", { schema: { hide: true } }, async (request: FastifyRequest, reply: FastifyReply) => {
    if (!(await allowed(request)))
      throw new DomainError("UNAUTHORIZED", "The root key or the metrics token is required");
    return reply.type(metrics.contentType).send(await metrics.text());
  });
}
