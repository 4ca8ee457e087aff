import type { IncomingHttpHeaders } from "node:http";
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from "fastify";
import type { Principal } from "../auth/principal.ts";
import { principalFromSession } from "../dashboard/session-auth.ts";
import { DomainError } from "../domain/errors.ts";
import type { Services } from "../services.ts";

/** The key a request presents: `Authorization: Bearer <key>`, `Authorization: Key <key>` or `x-key: <key>`. */
export function presentedSecret(request: { headers: IncomingHttpHeaders }): string | null {
  const header = request.headers.authorization;
  if (typeof header === "string") {
    const m = /^(Bearer|Key)\s+(\S+)\s*$/i.exec(header);
    if (m) return m[2];
  }
  const xKey = request.headers["x-key"];
  if (typeof xKey === "string" && xKey.trim()) return xKey.trim();
  return null;
}

/**
 * Who each request is, once its key was checked: under a module-private symbol, so no route reads
 * it raw (principalOf is the one reader). A request property and not a WeakMap: every request
 * would add an ephemeron the garbage collector has to trace, which the license report felt.
 */
const PRINCIPAL = Symbol("principal");

declare module "fastify" {
  interface FastifyRequest {
    [PRINCIPAL]: Principal | null;
  }
}

/** Gives every request the principal slot up front (Fastify keeps request objects one shape). */
export function decoratePrincipal(app: FastifyInstance): void {
  app.decorateRequest(PRINCIPAL, null);
}

export interface KeyCheckOptions {
  /** the 401 message when no key is presented (the usage log words it as FastAPI does) */
  missingKey?: string;
}

/**
 * The one way a surface authenticates: `onRequest: requireKey(services)` on a plugin or a route,
 * before the body is read, so no key and a bad body is a 401. Missing, unknown and revoked keys
 * answer UNAUTHORIZED in the surface's own format; unknown routes are left to the 404 handler.
 */
export function requireKey(services: Services, options: KeyCheckOptions = {}): onRequestAsyncHookHandler {
  const missingKey = options.missingKey ?? "Missing API key";
  return async (request) => {
    if (request[PRINCIPAL] || request.is404) return;
    const secret = presentedSecret(request);
    if (!secret) {
      // dashboard (issue 18): a same-origin browser request may present its session cookie instead
      const fromSession = await principalFromSession(request);
      if (!fromSession) throw new DomainError("UNAUTHORIZED", missingKey);
      request[PRINCIPAL] = fromSession;
      return;
    }
    const principal = await services.auth.authenticate(secret);
    if (!principal) throw new DomainError("UNAUTHORIZED", "Invalid or revoked API key");
    request[PRINCIPAL] = principal;
  };
}

/** The principal requireKey found; a route mounted without it is a programming error. */
export function principalOf(request: FastifyRequest): Principal {
  const principal = request[PRINCIPAL];
  if (!principal) throw new DomainError("INTERNAL", `No key check on ${request.routeOptions.url}`);
  return principal;
}
