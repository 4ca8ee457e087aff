import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { extname, join } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Principal } from "../auth/principal.ts";
import { DomainError } from "../domain/errors.ts";
import { formatUtc } from "../domain/time.ts";
import { sendNativeError } from "../http/errors.ts";
import { EVENT_TYPES } from "../notify/messages.ts";
import {
  clearSessionCookie,
  hashToken,
  installSessionAuth,
  isSameOrigin,
  newSessionToken,
  principalFromSession,
  type SessionDeps,
  sessionToken,
  setSessionCookie,
} from "./session-auth.ts";
import { MemorySessionStore, type SessionStore } from "./session-store.ts";

export const DEFAULT_SESSION_TTL_MS = 8 * 60 * 60 * 1000;

export interface DashboardDeps {
  /** a presented API key -> its principal, or null (unknown, revoked) */
  authenticate(secret: string): Promise<Principal | null>;
  principalOfKey(keyId: string): Promise<Principal | null>;
  principalOfPortal(accountId: string, userId: string | null, openedAt: number): Promise<Principal | null>;
  /** a portal link's token -> its account, user and session length, taken once; null otherwise */
  consumePortalLink(
    token: string,
  ): Promise<{ accountId: string; userId: string | null; sessionTtlMs: number } | null>;
  now: () => number;
  /** default: in this process's memory (lost on restart, not shared between instances) */
  sessions?: SessionStore;
  sessionTtlMs?: number;
}

/**
 * Every dashboard response: scripts, styles and data only from this origin, nothing inline, no
 * framing. uPlot sets element styles through the CSSOM, which style-src does not govern.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** The pages the browser code routes between; each is index.html, the script draws the page. */
const PAGES = ["", "usage", "log", "keys", "invoices", "alerts", "webhooks", "sign-in"];

const STATIC_DIR = join(import.meta.dirname, "static");
const ASSETS = [
  "app.js",
  "api.js",
  "format.js",
  "csv.js",
  "chart.js",
  "dialog.js",
  "overview.js",
  "usage.js",
  "log.js",
  "keys.js",
  "invoices.js",
  "alerts.js",
  "webhooks.js",
  "style.css",
];

/** Files served under /dashboard/assets/, read once: a handful of small files and uPlot. */
function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const name of ASSETS) {
    assets.set(name, { body: readFileSync(join(STATIC_DIR, name)), type: TYPES[extname(name)] });
  }
  // the server's own list, so the page offers exactly the types the API accepts
  assets.set("event-types.js", {
    body: Buffer.from(`export const EVENT_TYPES = ${JSON.stringify(EVENT_TYPES)};\n`),
    type: TYPES[".js"],
  });
  const require = createRequire(import.meta.url);
  // the minified build as a classic script (a global `uPlot`): 50 KB instead of the 145 KB module
  assets.set("uplot.js", {
    body: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js")),
    type: TYPES[".js"],
  });
  assets.set("uplot.css", {
    body: readFileSync(require.resolve("uplot/dist/uPlot.min.css")),
    type: TYPES[".css"],
  });
  return assets;
}

const PORTAL_ENTER = `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/dashboard/">
<title>Tally</title><p><a href="/dashboard/">Open the dashboard</a></p>`;
const PORTAL_GONE = `<!doctype html><meta charset="utf-8"><title>Tally</title>
<p>This sign-in link has been used already or has expired. Ask for a new one where you found it.</p>`;

function sessionJson(p: Principal, expiresAt: number) {
  const base = { expires_at: formatUtc(expiresAt) };
  if (p.kind === "root") return { ...base, kind: "root", role: "root" };
  return {
    ...base,
    kind: "user",
    account_id: p.accountId,
    user_id: p.userId,
    username: p.username,
    role: p.role,
    key_id: p.keyId,
    key_label: p.keyLabel,
    key_prefix: p.keyPrefix,
  };
}

function readSecret(body: unknown): string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw DomainError.validation(["body"], "must be an object with the API key in `key`");
  }
  const key = (body as Record<string, unknown>).key;
  if (typeof key !== "string" || key.trim().length < 1 || key.length > 512) {
    throw DomainError.validation(["body", "key"], "must be an API key (1 to 512 characters)");
  }
  return key.trim();
}

/**
 * The dashboard: static pages at /dashboard and its sign-in. The session cookie it sets is accepted
 * by every API surface (principalFromSession), so the pages read the same JSON routes as any
 * client, with the same access rules. Call on the root instance before the API surfaces.
 * Its session routes are hidden from /openapi.json: they are the browser's, not a client API (a
 * key is sent to them, not checked by them as on every documented route).
 */
export async function registerDashboard(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  const sessions = deps.sessions ?? new MemorySessionStore();
  const ttlMs = deps.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const sessionDeps: SessionDeps = {
    sessions,
    principalOfKey: deps.principalOfKey,
    principalOfPortal: deps.principalOfPortal,
    now: deps.now,
  };
  installSessionAuth(app, sessionDeps);
  const assets = loadAssets();
  const index = readFileSync(join(STATIC_DIR, "index.html"));

  await app.register(
    async (dash) => {
      dash.setErrorHandler((err, request, reply) => sendNativeError(err, request, reply));
      dash.addHook("onSend", async (_request, reply) => {
        reply.header("content-security-policy", CSP);
        reply.header("x-content-type-options", "nosniff");
        reply.header("referrer-policy", "no-referrer");
        reply.header("cross-origin-opener-policy", "same-origin");
      });

      const page = async (_request: FastifyRequest, reply: FastifyReply) =>
        reply.header("cache-control", "no-cache").type(TYPES[".html"]).send(index);
      for (const name of PAGES) dash.get(`/${name}`, { schema: { hide: true } }, page);

      dash.get("/assets/:name", { schema: { hide: true } }, async (request, reply) => {
        const asset = assets.get((request.params as { name: string }).name);
        if (!asset) throw DomainError.notFound("asset");
        return reply.header("cache-control", "no-cache").type(asset.type).send(asset.body);
      });

      dash.post(
        "/api/session",
        {
          schema: {
            hide: true,
            summary: "Sign in to the dashboard with an API key (sets the session cookie)",
          },
        },
        async (request, reply) => {
          if (!isSameOrigin(request))
            throw new DomainError("FORBIDDEN", "Sign-in must come from the dashboard's own origin");
          const principal = await deps.authenticate(readSecret(request.body));
          if (!principal) throw new DomainError("UNAUTHORIZED", "Invalid or revoked API key");
          const token = newSessionToken();
          const now = deps.now();
          const expiresAt = now + ttlMs;
          await sessions.create({
            tokenHash: hashToken(token),
            keyId: principal.keyId,
            isRoot: principal.kind === "root",
            accountId: null,
            userId: null,
            createdAt: now,
            expiresAt,
          });
          setSessionCookie(reply, request, token, Math.floor(ttlMs / 1000));
          return reply
            .status(201)
            .header("cache-control", "no-store")
            .send(sessionJson(principal, expiresAt));
        },
      );

      // A portal link (POST /v1/portal/sessions) opens a session once. It is followed from the
      // operator's own site, so no same-origin check: the one-time token is the credential. The
      // answer is a page that moves on to the dashboard itself, so that the SameSite=Strict cookie
      // is sent (a redirect would still count as the cross-site navigation that began it).
      dash.get("/portal/:token", { schema: { hide: true } }, async (request, reply) => {
        const token = (request.params as { token: string }).token;
        const link = /^[A-Za-z0-9_-]{43}$/.test(token) ? await deps.consumePortalLink(token) : null;
        if (!link) {
          return reply.status(410).header("cache-control", "no-store").type(TYPES[".html"]).send(PORTAL_GONE);
        }
        const sessionToken = newSessionToken();
        const now = deps.now();
        await sessions.create({
          tokenHash: hashToken(sessionToken),
          keyId: null,
          isRoot: false,
          accountId: link.accountId,
          userId: link.userId,
          createdAt: now,
          expiresAt: now + link.sessionTtlMs,
        });
        setSessionCookie(reply, request, sessionToken, Math.floor(link.sessionTtlMs / 1000));
        return reply.header("cache-control", "no-store").type(TYPES[".html"]).send(PORTAL_ENTER);
      });

      dash.get(
        "/api/session",
        { schema: { hide: true, summary: "The signed-in dashboard session" } },
        async (request, reply) => {
          const token = sessionToken(request);
          const session = token ? await sessions.find(hashToken(token), deps.now()) : null;
          const principal = session ? await principalFromSession(request) : null;
          if (!session || !principal) throw new DomainError("UNAUTHORIZED", "Not signed in");
          return reply.header("cache-control", "no-store").send(sessionJson(principal, session.expiresAt));
        },
      );

      dash.delete(
        "/api/session",
        { schema: { hide: true, summary: "Sign out: the session ends and its cookie is cleared" } },
        async (request, reply) => {
          if (!isSameOrigin(request))
            throw new DomainError("FORBIDDEN", "Sign-out must come from the dashboard's own origin");
          const token = sessionToken(request);
          if (token) await sessions.delete(hashToken(token));
          clearSessionCookie(reply, request);
          return reply.status(204).send();
        },
      );
    },
    { prefix: "/dashboard" },
  );
}
