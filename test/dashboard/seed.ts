import { expect } from "vitest";
import { call, type ServerProcess } from "../support/server-process.ts";

/**
 * Two accounts on a real server, through the public API only: Acme (an admin, a member, a plan,
 * usage over several days including a New York evening) and Globex (its own admin and usage).
 */
export interface DashboardWorld {
  acme: { id: string; admin: Person; member: Person };
  globex: { id: string; admin: Person };
  /** an Acme record that belongs to the admin, not the member */
  adminRecordId: string;
}

export interface Person {
  userId: string;
  key: string;
  keyId: string;
}

/** 20:30 in New York on 15 November is 01:30 UTC on the 16th: the day depends on the zone. */
export const NY_EVENING = "2026-11-15T20:30:00-05:00";
export const NY_MODEL = "tts-evening";

export async function seedWorld(server: ServerProcess): Promise<DashboardWorld> {
  const root = async (method: string, path: string, body?: unknown) => {
    const r = await call(server, method, path, { key: server.adminKey, body });
    expect(r.status, `${method} ${path}: ${r.text}`).toBeLessThan(300);
    return r.body as Record<string, unknown>;
  };
  await root("POST", "/v1/plans", {
    id: "pro",
    requests_per_minute: 600,
    requests_per_day: 10000,
    validity_days: 365,
  });
  await root("POST", "/v1/models", {
    id: "flux-1-dev",
    unit: "image",
    kind: "image",
    unit_price: "0.025",
    effective_from: "2026-01-01T00:00:00Z",
  });
  await root("POST", "/v1/models", {
    id: "gpt-4o-mini",
    unit: "token",
    kind: "chat",
    unit_price: "0.00000015",
    effective_from: "2026-01-01T00:00:00Z",
  });
  await root("POST", "/v1/models", {
    id: NY_MODEL,
    unit: "character",
    kind: "tts",
    unit_price: "0.000015",
    effective_from: "2026-01-01T00:00:00Z",
  });

  const account = async (name: string) => {
    const a = await root("POST", "/v1/accounts", { name });
    await root("POST", `/v1/accounts/${a.id}/subscriptions`, { plan_id: "pro" });
    return a.id as string;
  };
  const person = async (accountId: string, username: string, role: string): Promise<Person> => {
    const u = await root("POST", `/v1/accounts/${accountId}/users`, { username, role });
    const k = await root("POST", `/v1/users/${u.id}/keys`, { label: `${username} key` });
    return { userId: u.id as string, key: k.key as string, keyId: k.id as string };
  };
  const acmeId = await account("Acme");
  const globexId = await account("Globex");
  const acme = {
    id: acmeId,
    admin: await person(acmeId, "alice", "admin"),
    member: await person(acmeId, "bob", "member"),
  };
  const globex = { id: globexId, admin: await person(globexId, "carol", "admin") };

  const events = [
    {
      id: "a1",
      timestamp: "2026-11-14T09:00:00Z",
      model_id: "flux-1-dev",
      quantity: 4,
      user_id: acme.admin.userId,
    },
    {
      id: "a2",
      timestamp: "2026-11-14T15:10:00Z",
      model_id: "gpt-4o-mini",
      quantity: 123457,
      user_id: acme.admin.userId,
    },
    {
      id: "a3",
      timestamp: "2026-11-15T11:00:00Z",
      model_id: "flux-1-dev",
      quantity: 7,
      user_id: acme.admin.userId,
    },
    { id: "a4", timestamp: NY_EVENING, model_id: NY_MODEL, quantity: 3333, user_id: acme.admin.userId },
    {
      id: "a5",
      timestamp: "2026-11-16T18:45:00Z",
      model_id: "gpt-4o-mini",
      quantity: 98765,
      user_id: acme.admin.userId,
    },
    {
      id: "a6",
      timestamp: "2026-11-17T08:00:00Z",
      model_id: "flux-1-dev",
      quantity: 2,
      cost: "0.0043",
      user_id: acme.admin.userId,
    },
  ];
  const batch = await root("POST", "/v1/events", { account_id: acmeId, events });
  expect(batch.accepted, JSON.stringify(batch.rejected)).toBe(events.length);
  const adminRecordId = (batch.results as { usage_id: string }[])[0].usage_id;
  await root("POST", "/v1/events", {
    account_id: globexId,
    events: [
      {
        id: "g1",
        timestamp: "2026-11-15T12:00:00Z",
        model_id: "flux-1-dev",
        quantity: 1000,
        user_id: globex.admin.userId,
      },
    ],
  });
  // the member's own records, logged with the member's key (seed 001)
  for (const units of [12, 30]) {
    const r = await call(server, "POST", "/usage", {
      key: acme.member.key,
      body: { api_name: "gpt-4o-mini", endpoint: "/chat", units_used: units, cost_usd: "0.0001" },
    });
    expect(r.status, r.text).toBe(201);
  }
  return { acme, globex, adminRecordId };
}
