import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  CLIENT_KEY,
  errorOf,
  type GatewayWorld,
  quantitiesText,
  RATE_HEADERS,
  startGatewayWorld,
} from "./gateway-harness.ts";

let world: GatewayWorld;
beforeAll(async () => {
  world = await startGatewayWorld();
});
afterAll(() => world.close());
beforeEach(() => {
  world.refuse = null;
  world.admitDelayMs = 0;
});

const messages = [{ role: "user" as const, content: "Tell me about the quiet hills by the sea" }];

async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error("expected an API error");
}

describe("streams that end early", () => {
  it("a client abort mid-stream cancels the upstream and is billed > 0 from a tokenizer count, estimated", async () => {
    const { data: stream, request_id } = await world.client.chat.completions
      .create({ model: "chat-slow", messages, stream: true })
      .withResponse();
    let received = "";
    let chunks = 0;
    for await (const chunk of stream) {
      received += chunk.choices[0]?.delta.content ?? "";
      if (++chunks === 5) stream.controller.abort();
    }
    const seen = world.upstream.requests.at(-1)!;
    await world.waitFor(() => seen.aborted, "the upstream to see the abort");
    expect(seen.completed).toBe(false);

    const { settlement } = await world.waitForSettled(request_id!);
    expect(settlement.usageSource).toBe("estimated");
    expect(settlement.metadata).toMatchObject({ usage_source: "estimated", error: "client_closed" });
    expect(settlement.status).toBe(499);
    const output = settlement.quantities.output_token!;
    const input = settlement.quantities.input_token!;
    expect(input).toBeGreaterThan(0n);
    expect(output).toBeGreaterThan(0n);
    // billed for what was generated before the abort, not for the 30 words the full answer has
    expect(output).toBeLessThan(30n * 10n ** 18n);
    expect(received.length).toBeGreaterThan(0);
    expect(world.settled.filter((s) => s.ctx.requestId === request_id)).toHaveLength(1);
  });

  it("an upstream cut mid-stream breaks the client's stream and is billed from what arrived, estimated", async () => {
    const { data: stream, request_id } = await world.client.chat.completions
      .create({ model: "chat-cut", messages, stream: true })
      .withResponse();
    let received = "";
    await expect(
      (async () => {
        for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? "";
      })(),
    ).rejects.toThrow();
    expect(received.split(" ")).toHaveLength(4);
    const { settlement } = await world.waitForSettled(request_id!);
    expect(settlement.usageSource).toBe("estimated");
    expect(settlement.metadata.error).toBe("upstream_cut");
    expect(settlement.quantities.output_token).toBeGreaterThan(0n);
  });
});

describe("a client that leaves during admission", () => {
  it("is not forwarded and is settled at zero", async () => {
    world.admitDelayMs = 400;
    const before = world.upstream.requests.length;
    const marker = `leaves early ${Date.now()}`;
    await expect(
      fetch(`${world.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${world.client.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: marker }] }),
        signal: AbortSignal.timeout(100),
      }),
    ).rejects.toThrow();
    const ctx = await world.waitFor(
      () => world.admitted.find((c) => (c.body.messages as { content: string }[])[0].content === marker),
      "admission",
    );
    const { settlement } = await world.waitForSettled(ctx.requestId);
    expect(settlement.status).toBe(499);
    expect(quantitiesText(settlement.quantities)).toEqual({ input_token: "0", output_token: "0" });
    expect(world.upstream.requests.length).toBe(before);
  });
});

describe("upstream failures", () => {
  it("an upstream 500 before the first byte is passed through and settled at zero with its status", async () => {
    const err = await apiError(world.client.chat.completions.create({ model: "chat-fail", messages }));
    expect(err.status).toBe(500);
    expect(err.message).toContain("dev upstream failed as asked");
    expect(err.headers?.get("x-ratelimit-remaining-requests")).toBe("59");
    const { settlement } = await world.waitForSettled(err.requestID!);
    expect(settlement.status).toBe(500);
    expect(quantitiesText(settlement.quantities)).toEqual({ input_token: "0", output_token: "0" });
    expect(settlement.metadata.error).toBe("upstream_error");
  });

  it("the same for a streaming request", async () => {
    const err = await apiError(
      world.client.chat.completions.create({ model: "chat-fail", messages, stream: true }),
    );
    expect(err.status).toBe(500);
    const { settlement } = await world.waitForSettled(err.requestID!);
    expect(quantitiesText(settlement.quantities)).toEqual({ input_token: "0", output_token: "0" });
  });

  it("an upstream that does not answer within timeout_ms gives 504 in OpenAI's shape, and is cancelled", async () => {
    // elapsed time from the monotonic clock: the VM's wall clock can step (it did, by 5 s, in CI)
    const started = performance.now();
    const err = await apiError(world.client.chat.completions.create({ model: "chat-hang", messages }));
    expect(err.status).toBe(504);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(err.error).toEqual({
      message: expect.any(String),
      type: "timeout_error",
      param: null,
      code: "upstream_timeout",
    });
    const seen = world.upstream.requests.at(-1)!;
    await world.waitFor(() => seen.aborted, "the upstream request to be cancelled");
    const { settlement } = await world.waitForSettled(err.requestID!);
    expect(settlement.status).toBe(504);
    expect(quantitiesText(settlement.quantities)).toEqual({ input_token: "0", output_token: "0" });
  });

  it("an upstream that cannot be reached gives 502", async () => {
    const err = await apiError(world.client.chat.completions.create({ model: "chat-unreachable", messages }));
    expect(err.status).toBe(502);
    expect(err.code).toBe("upstream_unreachable");
    expect(err.headers?.get("x-ratelimit-limit-requests")).toBe("60");
    const { settlement } = await world.waitForSettled(err.requestID!);
    expect(settlement.status).toBe(502);
  });
});

describe("admission", () => {
  it("a refusal passes its status, headers and OpenAI's error shape, and nothing is forwarded or settled", async () => {
    const before = world.upstream.requests.length;
    world.refuse = () => ({
      ok: false,
      status: 429,
      code: "rate_limit_exceeded",
      message: "Rate limit reached: 60 requests per minute.",
      headers: { ...RATE_HEADERS, "x-ratelimit-remaining-requests": "0", "retry-after": "17" },
    });
    const err = await apiError(world.client.chat.completions.create({ model: "chat", messages }));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.error).toEqual({
      message: "Rate limit reached: 60 requests per minute.",
      type: "rate_limit_error",
      param: null,
      code: "rate_limit_exceeded",
    });
    expect(err.headers?.get("retry-after")).toBe("17");
    expect(err.headers?.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(world.upstream.requests.length).toBe(before);
    expect(world.settled.some((s) => s.ctx.requestId === err.requestID)).toBe(false);
  });

  it("an admission that fails (not refuses) still answers with the key's rate-limit state, forwarding nothing", async () => {
    const before = world.upstream.requests.length;
    world.refuse = () => {
      throw new Error("the store went away");
    };
    const res = await fetch(`${world.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", messages }),
    });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("internal_error");
    expect(res.headers.get("x-ratelimit-limit-requests")).toBe("60");
    expect(world.upstream.requests.length).toBe(before);
  });

  it("a 402 refusal from the budget keeps its code", async () => {
    world.refuse = () => ({ ok: false, status: 402, code: "budget_exceeded", message: "Budget exhausted." });
    const err = await apiError(world.client.chat.completions.create({ model: "chat", messages }));
    expect(err.status).toBe(402);
    expect(err.error).toMatchObject({ code: "budget_exceeded", type: "insufficient_quota" });
  });

  it("an unknown model is 404 model_not_found; a bad key is 401 before the body is read", async () => {
    const notFound = await apiError(world.client.chat.completions.create({ model: "nope", messages }));
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect(notFound.error).toMatchObject({ code: "model_not_found", param: "model" });

    const res = await fetch(`${world.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer wrong", "content-type": "application/json" },
      body: "{not json",
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: {
        message: "Incorrect API key provided.",
        type: "authentication_error",
        param: null,
        code: "invalid_api_key",
      },
    });
  });

  it("bad bodies are 400 naming the field, before admission", async () => {
    const admittedBefore = world.admitted.length;
    const post = (body: string, type = "application/json") =>
      fetch(`${world.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${world.client.apiKey}`, "content-type": type },
        body,
      });
    const answers: Response[] = [];
    for (const [body, param] of [
      ["{not json", null],
      ["[]", null],
      [JSON.stringify({ messages }), "model"],
      [JSON.stringify({ model: "chat" }), "messages"],
      [JSON.stringify({ model: "chat", messages, max_tokens: -1 }), "max_tokens"],
      [JSON.stringify({ model: "chat", messages, stream: "yes" }), "stream"],
    ] as const) {
      const res = await post(body);
      answers.push(res);
      expect(res.status, body).toBe(400);
      const error = await errorOf(res);
      expect(error).toMatchObject({ type: "invalid_request_error", param });
      if (param) expect(error.message).toMatch(new RegExp(`^${param}:`));
    }
    const wrongType = await post("model=chat", "text/plain");
    expect(wrongType.status).toBe(415);
    expect((await errorOf(wrongType)).type).toBe("invalid_request_error");
    expect(world.admitted.length).toBe(admittedBefore);
    // the key's rate-limit state is on every answer after the key check
    for (const res of answers) expect(res.headers.get("x-ratelimit-limit-requests")).toBe("60");
  });

  it("a body over the limit is 413 in OpenAI's shape", async () => {
    const res = await fetch(`${world.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${world.client.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "x".repeat(1_100_000) }] }),
    });
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toMatchObject({ type: "invalid_request_error" });
  });

  it("never takes the client's x-request-id as the event id", async () => {
    const res = await fetch(`${world.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${world.client.apiKey}`,
        "content-type": "application/json",
        "x-request-id": "chosen-by-client",
      },
      body: JSON.stringify({ model: "chat", messages }),
    });
    expect(res.status).toBe(200);
    const id = res.headers.get("x-request-id")!;
    expect(id).not.toBe("chosen-by-client");
    const { ctx } = await world.waitForSettled(id);
    expect(ctx.requestId).toBe(id);
  });
});
