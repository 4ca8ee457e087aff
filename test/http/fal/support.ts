import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import type { LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import { expectStatus, type Harness, ROOT_KEY } from "../../support/harness.ts";
import { SEED_ERROR_RESPONSE_SCHEMA, SEED_USAGE_RESPONSE_SCHEMA } from "./seed-schema.ts";

const ajv = new Ajv({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv) => void)(ajv);
const usageSchema = ajv.compile(SEED_USAGE_RESPONSE_SCHEMA);
const errorSchema = ajv.compile(SEED_ERROR_RESPONSE_SCHEMA);

export type Query = Record<string, string | string[]>;

export function usageUrl(query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
  const qs = params.toString();
  return qs ? `/v1/models/usage?${qs}` : "/v1/models/usage";
}

/** GET /v1/models/usage with `Authorization: Key <key>`, the seed's scheme. */
export function getUsage(h: Harness, query: Query, key: string | null): Promise<LightMyRequestResponse> {
  return h.request({
    method: "GET",
    url: usageUrl(query),
    headers: key ? { authorization: `Key ${key}` } : {},
  });
}

/** A 200 whose body validates against the seed's response schema; returns the body. */
export function expectUsage(res: LightMyRequestResponse) {
  expectStatus(res, 200);
  const body = res.json();
  expect(usageSchema(body), JSON.stringify(usageSchema.errors)).toBe(true);
  return body;
}

/** An error in the seed's format with the given status and type; returns the message. */
export function expectSeedError(res: LightMyRequestResponse, status: number, type: string): string {
  expectStatus(res, status);
  const body = res.json();
  expect(errorSchema(body), JSON.stringify(errorSchema.errors)).toBe(true);
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error.type).toBe(type);
  expect(body.error.request_id).toBe(res.headers["x-request-id"]);
  return body.error.message;
}

export interface EventSpec {
  id: string;
  model_id: string;
  quantity: number | string;
  timestamp: string;
  key_id?: string;
  user_id?: string;
}

/** Records events for an account as the operator; every one must be accepted. */
export async function postEvents(h: Harness, accountId: string, events: EventSpec[]): Promise<void> {
  const res = await h.request({
    method: "POST",
    url: "/v1/events",
    key: ROOT_KEY,
    payload: { account_id: accountId, events },
  });
  expectStatus(res, 200);
  expect(res.json().accepted, res.body).toBe(events.length);
}
