import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../services.ts";
import { sendA4fError } from "./a4f/errors.ts";
import { a4fRoutes } from "./a4f/routes.ts";
import { bflRoutes } from "./bfl/routes.ts";
import { sendNativeError } from "./errors.ts";
import { sendFalError } from "./fal/errors.ts";
import { falRoutes } from "./fal/routes.ts";
import { sendFastApiError } from "./fastapi-errors.ts";
import { usageLogRoutes } from "./usage-log/routes.ts";

/**
 * The seed-compatible API surfaces. Each is a Fastify plugin registered under its prefix, with
 * its own error handler and not-found handler, so unknown routes under the prefix answer in the
 * surface's error format. The native API is registered at the root.
 */
export interface Surface {
  prefix: string;
  plugin: (services: Services) => FastifyPluginAsync;
  /** the surface's error mapper, also used for errors raised before routing (frameworkErrors) */
  sendError: (err: unknown, request: FastifyRequest, reply: FastifyReply) => FastifyReply;
}

export const SURFACES: Surface[] = [
  { prefix: "/usage", plugin: usageLogRoutes, sendError: sendFastApiError },
  { prefix: "/v1/models/usage", plugin: falRoutes, sendError: sendFalError },
  { prefix: "/v1/licenses", plugin: bflRoutes, sendError: sendFastApiError },
  { prefix: "/v1/usage", plugin: a4fRoutes, sendError: sendA4fError },
];

const NATIVE = { sendError: sendNativeError };

/** The surface a URL belongs to: the longest prefix it falls under, else the native API. */
export function surfaceOf(url: string): Pick<Surface, "sendError"> {
  const path = url.split("?")[0];
  let best: Surface | undefined;
  for (const s of SURFACES) {
    const under = path === s.prefix || path.startsWith(`${s.prefix}/`);
    if (under && (!best || s.prefix.length > best.prefix.length)) best = s;
  }
  return best ?? NATIVE;
}
