import type { FastifyPluginAsync } from "fastify";
import type { Services } from "../services.ts";
import { a4fRoutes } from "./a4f/routes.ts";
import { bflRoutes } from "./bfl/routes.ts";
import { falRoutes } from "./fal/routes.ts";
import { usageLogRoutes } from "./usage-log/routes.ts";

/**
 * The seed-compatible API surfaces. Each is a Fastify plugin registered under its prefix, with
 * its own error handler and not-found handler, so unknown routes under the prefix answer in the
 * surface's error format. The native API is registered at the root.
 */
export interface Surface {
  prefix: string;
  plugin: (services: Services) => FastifyPluginAsync;
}

export const SURFACES: Surface[] = [
  { prefix: "/usage", plugin: usageLogRoutes },
  { prefix: "/v1/models/usage", plugin: falRoutes },
  { prefix: "/v1/licenses", plugin: bflRoutes },
  { prefix: "/v1/usage", plugin: a4fRoutes },
];
