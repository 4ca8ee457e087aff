import { createHash, randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Principal } from "../auth/principal.ts";
import type { DashboardSession, SessionStore } from "./session-store.ts";

export const SESSION_COOKIE = "tally_session";

/** What the dashboard needs from the core to turn a session into a principal. */
export interface SessionDeps {
  sessions: SessionStore;
  /** the live principal of a stored key by id; null when revoked or gone */
  principalOfKey(keyId: string): Promise<Principal | null>;
  /** a portal session's principal (its account, and its user if it names one) */
  principalOfPortal(accountId: string, userId: string | null, openedAt: number): Promise<Principal | null>;
  now: () => number;
}

declare module "fastify" {
  interface FastifyInstance {
    /** set by registerDashboard on the root instance, inherited by every surface */
    dashboardSessions?: SessionDeps;
  }
}

/** 256 random bits, URL-safe: the cookie's value. Only its digest is stored. */
export function newSessionToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** The session token the request's Cookie header carries, if any. */
export function sessionToken(request: FastifyRequest): string | null {
  const header = request.headers.cookie;
  if (typeof header !== "string") return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    // a token is 43 base64url characters; anything else is not ours
    return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : null;
  }
  return null;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * CSRF defense for cookie-authenticated requests: the browser must say the request comes from
 * this origin. SameSite=Strict already keeps the cookie off cross-site requests; this also refuses
 * same-site-but-other-origin ones. Any request a browser marks cross-site or same-site is refused;
 * unsafe methods need `Sec-Fetch-Site: same-origin` (which a page cannot forge) or, from browsers
 * that do not send it, an Origin equal to this server's. Behind a TLS proxy without trustProxy the
 * Origin comparison fails closed; current browsers pass on Sec-Fetch-Site.
 */
export function isSameOrigin(request: FastifyRequest): boolean {
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return false;
  if (SAFE_METHODS.has(request.method) || site === "same-origin") return true;
  const origin = request.headers.origin;
  return typeof origin === "string" && origin === `${request.protocol}://${request.host}`;
}

const resolved = new WeakMap<FastifyRequest, Promise<Principal | null>>();

/**
 * The principal of a dashboard session cookie, for a same-origin request that presents no key;
 * null otherwise. API surfaces call it where they authenticate (src/http/auth.ts), so the
 * dashboard's browser code uses the same JSON routes as every client. Resolved once per request.
 */
export function principalFromSession(request: FastifyRequest): Promise<Principal | null> {
  let p = resolved.get(request);
  if (!p) {
    p = resolve(request);
    resolved.set(request, p);
  }
  return p;
}

async function resolve(request: FastifyRequest): Promise<Principal | null> {
  const deps = request.server.dashboardSessions;
  if (!deps) return null;
  const token = sessionToken(request);
  if (!token || !isSameOrigin(request)) return null;
  const session = await deps.sessions.find(hashToken(token), deps.now());
  if (!session) return null;
  // a portal session for a whole account (no user) reads only
  if (session.accountId !== null && session.userId === null && !SAFE_METHODS.has(request.method)) return null;
  return principalOfSession(session, deps);
}

export async function principalOfSession(
  session: DashboardSession,
  deps: SessionDeps,
): Promise<Principal | null> {
  if (session.keyId === null && session.accountId !== null) {
    return deps.principalOfPortal(session.accountId, session.userId, session.createdAt);
  }
  if (session.keyId === null) return session.isRoot ? { kind: "root", keyId: null } : null;
  return deps.principalOfKey(session.keyId);
}

/** Hooks the resolver onto the root instance; call before the API surfaces are registered. */
export function installSessionAuth(app: FastifyInstance, deps: SessionDeps): void {
  app.decorate("dashboardSessions", deps);
}

export function setSessionCookie(
  reply: FastifyReply,
  request: FastifyRequest,
  token: string,
  maxAgeS: number,
) {
  reply.header("set-cookie", cookie(request, token, maxAgeS));
}

export function clearSessionCookie(reply: FastifyReply, request: FastifyRequest) {
  reply.header("set-cookie", cookie(request, "", 0));
}

function cookie(request: FastifyRequest, value: string, maxAgeS: number): string {
  const secure = request.protocol === "https" ? "; Secure" : "";
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure}`;
}
