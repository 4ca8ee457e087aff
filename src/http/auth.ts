import type { FastifyRequest } from "fastify";
import type { Principal } from "../auth/principal.ts";
import { principalFromSession } from "../dashboard/session-auth.ts";
import { DomainError } from "../domain/errors.ts";
import type { Services } from "../services.ts";

/** The key a request presents: `Authorization: Bearer <key>`, `Authorization: Key <key>` or `x-key: <key>`. */
export function presentedSecret(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header === "string") {
    const m = /^(Bearer|Key)\s+(\S+)\s*$/i.exec(header);
    if (m) return m[2];
  }
  const xKey = request.headers["x-key"];
  if (typeof xKey === "string" && xKey.trim()) return xKey.trim();
  return null;
}

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** Authenticates the request or throws UNAUTHORIZED (missing, unknown and revoked keys alike). */
export async function authenticate(request: FastifyRequest, services: Services): Promise<Principal> {
  if (request.principal) return request.principal;
  const secret = presentedSecret(request);
  if (!secret) {
    // dashboard (issue 18): a same-origin browser request may present a session cookie instead
    const fromSession = await principalFromSession(request);
    if (fromSession) {
      request.principal = fromSession;
      return fromSession;
    }
    throw new DomainError("UNAUTHORIZED", "Missing API key");
  }
  const principal = await services.auth.authenticate(secret);
  if (!principal) throw new DomainError("UNAUTHORIZED", "Invalid or revoked API key");
  request.principal = principal;
  return principal;
}
