import type { LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import { ONE, parseDec } from "../../../src/domain/decimal.ts";
import { ALL_TIME } from "../../../src/query/usage-query.ts";
import type { UsageEvent } from "../../../src/store/store.ts";
import { expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import type { World } from "../../support/world.ts";

/** Helpers for the license usage report tests: licenses, plans, reports and what got stored. */

export const SLUG = "flux-1-dev";
export const usageUrl = (slug = SLUG) => `/v1/licenses/models/${slug}/usage`;
export const NOT_LICENSED_TEXT =
  "You have not licensed this model. If you recently changed your subscription, please wait 15mins and then try again.";
export const SUCCESS = { message: "Usage recorded successfully" };

export type KeyStyle = "x-key" | "bearer" | "key";

export function authHeaders(key: string, style: KeyStyle = "x-key"): Record<string, string> {
  if (style === "bearer") return { authorization: `Bearer ${key}` };
  if (style === "key") return { authorization: `Key ${key}` };
  return { "x-key": key };
}

/** Sends a report the way the seed's snippet does: `x-key` and a JSON body. */
export async function report(
  h: Harness,
  key: string | null,
  opts: {
    slug?: string;
    body?: unknown;
    /** raw text instead of JSON */
    raw?: string;
    headers?: Record<string, string>;
    style?: KeyStyle;
  } = {},
): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...(key ? authHeaders(key, opts.style) : {}) };
  let payload: string | undefined;
  if (opts.raw !== undefined) {
    payload = opts.raw;
  } else if (opts.body !== undefined) {
    payload = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  return h.app.inject({
    method: "POST",
    url: usageUrl(opts.slug),
    headers: { ...headers, ...(opts.headers ?? {}) },
    ...(payload === undefined ? {} : { payload }),
  });
}

async function rootPost(h: Harness, url: string, payload: object): Promise<Record<string, unknown>> {
  const res = await h.request({ method: "POST", url, payload, key: ROOT_KEY });
  expect(res.statusCode, `${url}: ${res.statusCode} ${res.body}`).toBeLessThan(300);
  return res.json();
}

export function grantLicense(
  h: Harness,
  accountId: string,
  modelId = SLUG,
  window: { starts_at?: string; ends_at?: string | null } = { starts_at: "2020-01-01T00:00:00Z" },
) {
  return rootPost(h, `/v1/accounts/${accountId}/licenses`, { model_id: modelId, ...window });
}

export async function subscribeToPlan(
  h: Harness,
  accountId: string,
  plan: {
    id: string;
    model_whitelist?: string[] | null;
    model_blacklist?: string[] | null;
    requests_per_minute?: number | null;
    requests_per_day?: number | null;
  },
): Promise<void> {
  await rootPost(h, "/v1/plans", {
    requests_per_minute: null,
    requests_per_day: null,
    validity_days: -999999,
    ...plan,
  });
  await rootPost(h, `/v1/accounts/${accountId}/subscriptions`, {
    plan_id: plan.id,
    activated_at: "2020-01-01T00:00:00Z",
  });
}

export async function upsertModel(h: Harness, model: Record<string, unknown>): Promise<void> {
  await rootPost(h, "/v1/models", model);
}

export async function revokeKey(h: Harness, keyId: string): Promise<void> {
  const res = await h.request({ method: "DELETE", url: `/v1/keys/${keyId}`, key: ROOT_KEY });
  expectStatus(res, 204);
}

/** Every stored event of the account, oldest first, after pending commits. */
export async function storedEvents(h: Harness, accountId: string): Promise<UsageEvent[]> {
  await h.services.committer.idle();
  const events = await h.services.store.listEvents({ accountId, skip: 0, limit: 1000 });
  return events.reverse();
}

/** All-time totals of the account from the rollups: the numbers every read surface shows. */
export async function accountTotals(h: Harness, accountId: string) {
  await h.services.committer.idle();
  const lines = await h.services.query.totals({ accountId, range: ALL_TIME });
  return lines.map((l) => ({
    modelId: l.modelId,
    kind: l.kind,
    unit: l.unit,
    requests: l.requests,
    quantity: l.quantity,
    cost: l.cost,
  }));
}

/** `n` whole units as an exact decimal. */
export const units = (n: number | bigint): bigint => BigInt(n) * ONE;
/** A decimal string as an exact decimal, e.g. "1.25". */
export const exact = (text: string): bigint => parseDec(text);

export type { World };
