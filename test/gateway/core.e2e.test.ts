import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RedisBudgetReserver } from "../../src/budget/redis-budget-reserver.ts";
import { type DevUpstream, startDevUpstream } from "../../src/gateway/dev-upstream.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { REDIS_URL, storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

const UPSTREAM_KEY = "dev-upstream-secret";
const SECRET_ENV = "TALLY_TEST_GATEWAY_UPSTREAM_KEY";
/** USD per token of the routed chat model */
const PRICE = "0.000002";

interface UsageRecord {
  api_name: string;
  endpoint: string;
  units_used: number;
  cost_usd: number;
}

/** Each store; and, when TALLY_TEST_REDIS_URL is set, PostgreSQL (or SQLite) with budget holds in Redis. */
const setups = [
  ...storeKinds().map((kind) => ({ name: kind.name, kind, redis: false })),
  ...(REDIS_URL
    ? [{ name: `${storeKinds().at(-1)!.name} + redis`, kind: storeKinds().at(-1)!, redis: true }]
    : []),
];

describe.each(setups)("the gateway over Tally's core ($name)", ({ kind, redis }) => {
  let h: Harness;
  let w: World;
  let upstream: DevUpstream;
  let baseURL: string;

  const root = async (method: "POST" | "GET" | "DELETE", url: string, payload?: object) =>
    h.request({ method, url, payload, key: ROOT_KEY });
  const client = (key: string) => new OpenAI({ apiKey: key, baseURL, maxRetries: 0 });
  /** Raw call, for the answers the openai client turns into exceptions. */
  const chat = (key: string | null, body: object) =>
    fetch(`${baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    });
  /** The account's usage-log records once `n` are there (settling follows the answer). */
  const records = async (n: number): Promise<UsageRecord[]> => {
    for (let i = 0; i < 200; i++) {
      const res = await h.request({ method: "GET", url: "/usage", key: w.admin.key });
      expectStatus(res, 200);
      const list = res.json() as UsageRecord[];
      if (list.length >= n) return list;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`fewer than ${n} usage records`);
  };
  const license = async (modelId: string) =>
    expectStatus(
      await root("POST", `/v1/accounts/${w.account.id}/licenses`, {
        model_id: modelId,
        starts_at: "2020-01-01T00:00:00Z",
      }),
      201,
    );

  beforeEach(async () => {
    upstream = await startDevUpstream({ apiKey: UPSTREAM_KEY });
    process.env[SECRET_ENV] = UPSTREAM_KEY;
    h = await createHarness(kind, {
      realClock: true,
      services: redis
        ? { budgetReserver: new RedisBudgetReserver(REDIS_URL, { keyPrefix: `tally-test:${randomUUID()}:` }) }
        : {},
    });
    w = await buildWorld(h);
    const created = await root("POST", "/v1/upstreams", {
      id: "dev",
      base_url: `${upstream.url}/v1`,
      api_key_env: SECRET_ENV,
      timeout_ms: 5000,
    });
    expectStatus(created, 201);
    expect(JSON.stringify(created.json())).not.toContain(UPSTREAM_KEY);
    expectStatus(
      await root("POST", "/v1/models", {
        id: "chat",
        unit: "token",
        kind: "chat",
        unit_price: PRICE,
        effective_from: "2020-01-01T00:00:00Z",
        upstream_id: "dev",
        upstream_model: "dev-chat",
      }),
      201,
    );
    await license("chat");
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    baseURL = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/v1`;
  });
  afterEach(async () => {
    await h.close();
    await upstream.close();
    delete process.env[SECRET_ENV];
  });

  it("upstreams are created and read by the root key only, never showing a secret", async () => {
    const one = await root("GET", "/v1/upstreams/dev");
    expectStatus(one, 200);
    expect(one.json()).toMatchObject({ id: "dev", base_url: `${upstream.url}/v1`, api_key_env: SECRET_ENV });
    const list = await root("GET", "/v1/upstreams");
    expect(list.json()).toMatchObject({ data: [{ id: "dev" }], has_more: false });
    expectStatus(await h.request({ method: "GET", url: "/v1/upstreams", key: w.admin.key }), 403);
    expectStatus(await root("GET", "/v1/upstreams/nope"), 404);
    expectStatus(await root("POST", "/v1/upstreams", { id: "dev", base_url: upstream.url }), 409);
    const bad = await root("POST", "/v1/upstreams", { id: "x", base_url: "ftp://host" });
    expectStatus(bad, 400);
    expect(JSON.stringify(bad.json())).toContain("base_url");
    const unknown = await root("POST", "/v1/models", {
      id: "m2",
      unit: "token",
      kind: "chat",
      unit_price: 1,
      upstream_id: "nope",
    });
    expectStatus(unknown, 400);
    expect(JSON.stringify(unknown.json())).toContain("upstream_id");
  });

  it("non-streaming chat: usage equal to the upstream's, recorded once with its endpoint and exact cost", async () => {
    const { data, response } = await client(w.member.key)
      .chat.completions.create({
        model: "chat",
        messages: [{ role: "user", content: "Say hello to the hills" }],
      })
      .withResponse();
    const seen = upstream.requests.at(-1)!;
    expect(seen.model).toBe("dev-chat");
    expect(seen.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(data.usage).toEqual(seen.usage);
    expect(response.headers.get("x-request-id")).toBeTruthy();

    const [record] = await records(1);
    const tokens = data.usage!.prompt_tokens + data.usage!.completion_tokens;
    expect(record).toMatchObject({ api_name: "chat", endpoint: "/v1/chat/completions", units_used: tokens });
    // tokens x 0.000002 exactly: both sides are the double nearest the same decimal
    expect(record.cost_usd).toBe((tokens * 2) / 1e6);
  });

  it("streaming chat: the usage chunk Tally asked for is hidden from the client and billed exactly", async () => {
    const stream = await client(w.member.key).chat.completions.create({
      model: "chat",
      stream: true,
      messages: [{ role: "user", content: "Count" }],
    });
    let text = "";
    for await (const chunk of stream) {
      expect(chunk.usage ?? null).toBeNull();
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    expect(text.length).toBeGreaterThan(0);
    const usage = upstream.requests.at(-1)!.usage as { prompt_tokens: number; completion_tokens: number };
    const [record] = await records(1);
    expect(record).toMatchObject({
      endpoint: "/v1/chat/completions",
      units_used: usage.prompt_tokens + usage.completion_tokens,
    });
  });

  it("every gateway call is one usage record with the path called", async () => {
    const c = client(w.admin.key);
    await c.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "one" }] });
    const res = await fetch(`${baseURL.replace(/\/v1$/, "")}/audio-chat`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${w.admin.key}`,
        "x-request-id": "mine",
      },
      body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "two" }] }),
    });
    expect(res.status).toBe(200);
    await res.text();
    // the client's own x-request-id never becomes the event's id
    expect(res.headers.get("x-request-id")).not.toBe("mine");
    const seed = await fetch(`${baseURL.replace(/\/v1$/, "")}/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${w.admin.key}` },
      body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "three" }] }),
    });
    expect(seed.status).toBe(200);
    await seed.text();
    const list = await records(3);
    expect(list).toHaveLength(3);
    expect(list.map((r) => r.endpoint).sort()).toEqual(["/audio-chat", "/chat", "/v1/chat/completions"]);
  });

  it("admission refusals, in DESIGN's order, in OpenAI's shape, forwarding nothing", async () => {
    const before = upstream.requests.length;
    const body = { model: "chat", messages: [{ role: "user", content: "hi" }] };
    const expectRefusal = async (res: Response, status: number, code: string) => {
      expect(res.status).toBe(status);
      const json = (await res.json()) as { error: { code: string; type: string; message: string } };
      expect(json.error.code).toBe(code);
      expect(json.error.message).toBeTruthy();
    };
    await expectRefusal(await chat(null, body), 401, "invalid_api_key");
    await expectRefusal(await chat("tk-nope", body), 401, "invalid_api_key");
    await expectRefusal(
      await chat(w.member.key, { ...body, model: "no-such-model" }),
      404,
      "model_not_found",
    );
    // known but routed nowhere
    await expectRefusal(await chat(w.member.key, { ...body, model: "gpt-mini" }), 404, "model_not_found");
    // routed, priced only from a future date
    expectStatus(
      await root("POST", "/v1/models", {
        id: "later",
        unit: "token",
        kind: "chat",
        unit_price: PRICE,
        effective_from: "2099-01-01T00:00:00Z",
        upstream_id: "dev",
      }),
      201,
    );
    await expectRefusal(await chat(w.member.key, { ...body, model: "later" }), 400, "model_not_priced");
    // routed and priced, no license
    expectStatus(
      await root("POST", "/v1/models", {
        id: "unlicensed",
        unit: "token",
        kind: "chat",
        unit_price: PRICE,
        effective_from: "2020-01-01T00:00:00Z",
        upstream_id: "dev",
      }),
      201,
    );
    await expectRefusal(
      await chat(w.member.key, { ...body, model: "unlicensed" }),
      403,
      "model_not_licensed",
    );

    // three requests a minute; each admitted request is counted once, by admission, never again
    // when its event commits: after two recorded requests the third is still admitted
    expectStatus(
      await root("POST", "/v1/plans", {
        id: "tight",
        requests_per_minute: 3,
        requests_per_day: null,
        validity_days: -999999,
      }),
      201,
    );
    expectStatus(await root("POST", `/v1/accounts/${w.account.id}/subscriptions`, { plan_id: "tight" }), 201);
    const first = await chat(w.member.key, body);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-limit-requests")).toBe("3");
    expect(first.headers.get("x-ratelimit-remaining-requests")).toBe("2");
    await first.text();
    expect((await chat(w.member.key, body)).status).toBe(200);
    await records(2);
    await h.services.committer.idle();
    const third = await chat(w.member.key, body);
    expect(third.status).toBe(200);
    expect(third.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    await third.text();
    const limited = await chat(w.member.key, body);
    expect(limited.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get("x-ratelimit-reset-requests"))).toBeLessThanOrEqual(60);
    await expectRefusal(limited, 429, "rate_limit_exceeded");
    // answers refused before admission counts carry the key's state as it stands, counting nothing
    for (const [refused, status] of [
      [await chat(w.member.key, { ...body, model: "no-such-model" }), 404],
      [await chat(w.member.key, { messages: body.messages }), 400],
    ] as const) {
      expect(refused.status).toBe(status);
      expect(refused.headers.get("x-ratelimit-limit-requests")).toBe("3");
      expect(refused.headers.get("x-ratelimit-remaining-requests")).toBe("0");
      await refused.text();
    }

    // only the three admitted requests reached the upstream
    expect(upstream.requests.length - before).toBe(3);
    expect(await records(3)).toHaveLength(3);
  });

  it("PUT /v1/accounts/{id}/budget: root only, fields named, null removes it", async () => {
    const url = `/v1/accounts/${w.account.id}/budget`;
    const set = await h.request({
      method: "PUT",
      url,
      key: ROOT_KEY,
      payload: { monthly_usd: "12.5", mode: "soft" },
    });
    expectStatus(set, 200);
    expect(set.json()).toEqual({ account_id: w.account.id, budget: { monthly_usd: 12.5, mode: "soft" } });
    const badMode = await h.request({
      method: "PUT",
      url,
      key: ROOT_KEY,
      payload: { monthly_usd: 1, mode: "firm" },
    });
    expectStatus(badMode, 400);
    expect(JSON.stringify(badMode.json())).toContain("mode");
    const negative = await h.request({ method: "PUT", url, key: ROOT_KEY, payload: { monthly_usd: -1 } });
    expectStatus(negative, 400);
    expect(JSON.stringify(negative.json())).toContain("monthly_usd");
    expectStatus(await h.request({ method: "PUT", url, key: w.admin.key, payload: { monthly_usd: 1 } }), 403);
    expectStatus(
      await h.request({
        method: "PUT",
        url: "/v1/accounts/nope/budget",
        key: ROOT_KEY,
        payload: { monthly_usd: 1 },
      }),
      404,
    );
    const cleared = await h.request({
      method: "PUT",
      url,
      key: ROOT_KEY,
      headers: { "content-type": "application/json" },
      payload: "null",
    });
    expectStatus(cleared, 200);
    expect(cleared.json().budget).toBeNull();
  });

  it("a hard budget: 20 concurrent requests against a budget for 5 admit exactly 5, the rest get 402", async () => {
    expectStatus(
      await root("POST", "/v1/models", {
        id: "slow-chat",
        unit: "token",
        kind: "chat",
        unit_price: PRICE,
        effective_from: "2020-01-01T00:00:00Z",
        upstream_id: "dev",
        upstream_model: "dev-chat:delay=300",
      }),
      201,
    );
    await license("slow-chat");
    // each request reserves (its few input tokens + max_tokens 1000) x 0.000002 USD, a little over
    // 0.002: 0.011 holds five such reservations and not six
    expectStatus(
      await h.request({
        method: "PUT",
        url: `/v1/accounts/${w.account.id}/budget`,
        key: ROOT_KEY,
        payload: { monthly_usd: "0.011", mode: "hard" },
      }),
      200,
    );
    const before = upstream.requests.length;
    const answers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await chat(w.member.key, {
          model: "slow-chat",
          max_tokens: 1000,
          messages: [{ role: "user", content: "hi" }],
        });
        return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
      }),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(5);
    const refused = answers.filter((a) => a.status === 402);
    expect(refused).toHaveLength(15);
    for (const a of refused) expect(a.body.error?.code).toBe("budget_exceeded");
    expect(upstream.requests.length - before).toBe(5);
    expect(await records(5)).toHaveLength(5);
  });

  it("models priced per character and per token: speech counts code points, embeddings their tokens", async () => {
    for (const m of [
      { id: "voice", unit: "character", kind: "tts", unit_price: "0.000015", upstream_model: "dev-tts" },
      {
        id: "embedder",
        unit: "token",
        kind: "embedding",
        unit_price: "0.0000001",
        upstream_model: "dev-embedding",
      },
    ]) {
      expectStatus(
        await root("POST", "/v1/models", {
          ...m,
          effective_from: "2020-01-01T00:00:00Z",
          upstream_id: "dev",
        }),
        201,
      );
      await license(m.id);
    }
    const c = client(w.admin.key);
    const speech = await c.audio.speech.create({ model: "voice", voice: "alloy", input: "Grüße 👋" });
    expect((await speech.arrayBuffer()).byteLength).toBeGreaterThan(0);
    const [spoken] = await records(1);
    // 7 code points (the emoji is one, though two UTF-16 units)
    expect(spoken).toMatchObject({ api_name: "voice", endpoint: "/v1/audio/speech", units_used: 7 });
    expect(spoken.cost_usd).toBe(0.000105);

    const embedded = await c.embeddings.create({ model: "embedder", input: "quiet hills" });
    const [record] = await records(2);
    expect(record).toMatchObject({
      api_name: "embedder",
      endpoint: "/v1/embeddings",
      units_used: embedded.usage.total_tokens,
    });
  });

  it("GET /v1/models answers OpenAI's list; an account's key sees only what it may use", async () => {
    const models = await client(w.member.key).models.list();
    expect(models.data.map((m) => m.id)).toEqual(["chat"]);
    expect(models.data[0]).toMatchObject({ object: "model", owned_by: "tally", upstream_id: "dev" });
  });

  it("a model priced per meter: one request, a line per meter in workspace usage and key statistics, exact cost", async () => {
    expectStatus(
      await root("POST", "/v1/models", {
        id: "chat-metered",
        unit: "token",
        kind: "chat",
        meters: { input_token: "0.000001", output_token: "0.000004" },
        effective_from: "2020-01-01T00:00:00Z",
        upstream_id: "dev",
        upstream_model: "dev-chat:cached=3",
      }),
      201,
    );
    await license("chat-metered");
    const { data } = await client(w.member.key)
      .chat.completions.create({
        model: "chat-metered",
        messages: [{ role: "user", content: "Meter the hills" }],
      })
      .withResponse();
    const usage = data.usage!;
    const [record] = await records(1);
    // the 3 cached tokens have no price of their own: billed as input tokens
    const input = usage.prompt_tokens;
    const output = usage.completion_tokens;
    expect(record).toMatchObject({ api_name: "chat-metered", units_used: input + output });
    expect(record.cost_usd).toBe((input * 1 + output * 4) / 1e6);

    const day = new Date().toISOString().slice(0, 10);
    const ws = await h.request({
      method: "GET",
      url: `/v1/models/usage?start=${day}&timezone=UTC&timeframe=day&expand=summary`,
      key: w.admin.key,
    });
    expectStatus(ws, 200);
    const lines = (ws.json().summary as { endpoint_id: string; unit: string; quantity: number }[])
      .filter((l) => l.endpoint_id === "chat-metered")
      .map((l) => [l.unit, l.quantity])
      .sort();
    expect(lines).toEqual([
      ["input_token", input],
      ["output_token", output],
    ]);
    const stats = await h.request({
      method: "GET",
      url: "/v1/usage?section=model_specific_usage",
      key: w.member.key,
    });
    expect(stats.json().model_specific_usage["chat-metered"]).toMatchObject({
      requests: 1,
      quantity: input + output,
      unit: "token",
      meters: { input_token: { quantity: input }, output_token: { quantity: output } },
    });
    expect(await h.services.store.verifyRollups()).toEqual([]);
  });
});
