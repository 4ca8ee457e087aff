import { expectStatus, type Harness, ROOT_KEY } from "./harness.ts";

/** A fresh world per test: two accounts, each with an admin and a member holding a key; models. */
export interface World {
  account: { id: string };
  admin: { id: string; key: string; keyId: string };
  member: { id: string; key: string; keyId: string };
  other: { accountId: string; admin: { id: string; key: string; keyId: string } };
  root: string;
}

async function post(h: Harness, url: string, payload: unknown, key = ROOT_KEY) {
  const res = await h.request({ method: "POST", url, payload: payload as object, key });
  expectStatus(res, res.statusCode === 200 ? 200 : 201);
  return res.json();
}

export async function createUserWithKey(
  h: Harness,
  accountId: string,
  username: string,
  role: "admin" | "member",
  label?: string,
) {
  const user = await post(h, `/v1/accounts/${accountId}/users`, { username, role });
  const key = await post(h, `/v1/users/${user.id}/keys`, label ? { label } : {});
  return { id: user.id as string, key: key.key as string, keyId: key.id as string };
}

export async function buildWorld(
  h: Harness,
  models: {
    id: string;
    unit: string;
    kind: string;
    unit_price: number | string;
    effective_from?: string;
  }[] = DEFAULT_MODELS,
): Promise<World> {
  const account = await post(h, "/v1/accounts", { name: "Acme" });
  const admin = await createUserWithKey(h, account.id, "alice", "admin");
  const member = await createUserWithKey(h, account.id, "bob", "member");
  const other = await post(h, "/v1/accounts", { name: "Globex" });
  const otherAdmin = await createUserWithKey(h, other.id, "carol", "admin");
  for (const m of models) await post(h, "/v1/models", { effective_from: "2020-01-01T00:00:00Z", ...m });
  return {
    account: { id: account.id },
    admin,
    member,
    other: { accountId: other.id, admin: otherAdmin },
    root: ROOT_KEY,
  };
}

export const DEFAULT_MODELS = [
  { id: "flux-1-dev", unit: "image", kind: "image", unit_price: "0.025" },
  { id: "gpt-mini", unit: "token", kind: "chat", unit_price: "0.00000015" },
  { id: "embed-small", unit: "token", kind: "embedding", unit_price: "0.00000002" },
  { id: "tts-1", unit: "second", kind: "tts", unit_price: "0.0005" },
];
