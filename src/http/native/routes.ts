import type { FastifyPluginAsync } from "fastify";
import type { Services } from "../../services.ts";
import { requireKey } from "../auth.ts";
import { accountRoutes } from "./accounts.ts";
import { alertRoutes } from "./alerts.ts";
import { auditRoutes } from "./audit.ts";
import { budgetRoutes } from "./budgets.ts";
import { eventRoutes } from "./events.ts";
import { invoiceRoutes } from "./invoices.ts";
import { keyRoutes } from "./keys.ts";
import { licenseRoutes } from "./licenses.ts";
import { limitsCheckRoutes } from "./limits-check.ts";
import { modelRoutes } from "./models.ts";
import { paymentRoutes } from "./payments.ts";
import { planRoutes } from "./plans.ts";
import { portalRoutes } from "./portal.ts";
import { subscriptionRoutes } from "./subscriptions.ts";
import { upstreamRoutes } from "./upstreams.ts";
import { userRoutes } from "./users.ts";
import { webhookRoutes } from "./webhooks.ts";

/** One file per resource; adding a resource is one more line here. */
const RESOURCES = [
  accountRoutes,
  userRoutes,
  keyRoutes,
  modelRoutes,
  licenseRoutes,
  planRoutes,
  subscriptionRoutes,
  paymentRoutes,
  eventRoutes,
  auditRoutes,
  limitsCheckRoutes,
  // billing (issue 16)
  invoiceRoutes,
  upstreamRoutes,
  budgetRoutes,
  // webhooks and alerts (issue 17)
  webhookRoutes,
  alertRoutes,
  // dashboard sign-in links (issue 18)
  portalRoutes,
];

/** The native API (DESIGN.md, "Native API"): every route behind the key check, native error format. */
export function nativeRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    app.addHook("onRequest", requireKey(services));
    for (const resource of RESOURCES) await app.register(resource(services));
  };
}
