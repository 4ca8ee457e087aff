import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quantitiesFromUsage } from "../../src/domain/meters.ts";
import {
  type GatewayWorld,
  quantitiesText,
  RATE_HEADERS,
  startGatewayWorld,
  UPSTREAM_KEY,
} from "./gateway-harness.ts";

let world: GatewayWorld;
beforeAll(async () => {
  world = await startGatewayWorld();
});
afterAll(() => world.close());

const messages = [{ role: "user" as const, content: "Tell me about the quiet hills by the sea" }];

describe("chat completions through the gateway (real openai client)", () => {
  it("non-streaming: the client gets the upstream's answer, the settled usage is the upstream's exactly", async () => {
    const { data, response, request_id } = await world.client.chat.completions
      .create({ model: "chat", messages })
      .withResponse();
    expect(request_id).toBeTruthy();
    for (const [name, value] of Object.entries(RATE_HEADERS)) expect(response.headers.get(name)).toBe(value);

    const seen = world.upstream.requests.at(-1)!;
    expect(seen.model).toBe("dev-chat");
    expect(seen.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(data.usage).toEqual(seen.usage);
    expect(data.choices[0].message.content).toMatch(/\w+( \w+)+/);

    const { ctx, settlement } = await world.waitForSettled(request_id!);
    expect(ctx.endpoint).toBe("/v1/chat/completions");
    expect(ctx.model).toBe("chat");
    expect(settlement.usageSource).toBe("provider");
    expect(settlement.status).toBe(200);
    expect(settlement.metadata).toMatchObject({ usage_source: "provider", endpoint: "/v1/chat/completions" });
    expect(quantitiesText(settlement.quantities)).toEqual({
      input_token: String(data.usage!.prompt_tokens),
      output_token: String(data.usage!.completion_tokens),
    });
    expect(world.settled.filter((s) => s.ctx.requestId === request_id)).toHaveLength(1);
  });

  it("splits cached prompt tokens out and keeps reasoning in output, as DESIGN's meters say", async () => {
    const { data, request_id } = await world.client.chat.completions
      .create({ model: "chat-details", messages })
      .withResponse();
    const { settlement } = await world.waitForSettled(request_id!);
    const usage = data.usage!;
    expect(usage.prompt_tokens_details?.cached_tokens).toBe(3);
    expect(usage.completion_tokens_details?.reasoning_tokens).toBe(5);
    expect(quantitiesText(settlement.quantities)).toEqual({
      input_token: String(usage.prompt_tokens - 3),
      cached_input_token: "3",
      output_token: String(usage.completion_tokens),
    });
  });

  it("streaming without include_usage: the client sees no usage chunk, Tally still settles the upstream's usage", async () => {
    const {
      data: stream,
      request_id,
      response,
    } = await world.client.chat.completions.create({ model: "chat", messages, stream: true }).withResponse();
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    for (const [name, value] of Object.entries(RATE_HEADERS)) expect(response.headers.get(name)).toBe(value);
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.some((c) => c.usage)).toBe(false);
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    const text = chunks.map((c) => c.choices[0].delta.content ?? "").join("");

    const seen = world.upstream.requests.at(-1)!;
    // Tally asked for usage upstream (the dev upstream reports it only when asked)
    expect(seen.usage).toBeTruthy();
    const { settlement } = await world.waitForSettled(request_id!);
    expect(settlement.usageSource).toBe("provider");
    expect(settlement.quantities).toEqual(quantitiesFromUsage(seen.usage));
    expect(text.split(" ")).toHaveLength(Number(settlement.quantities.output_token! / 10n ** 18n));
  });

  it("streaming with include_usage: the client gets the usage chunk, equal to the settled usage", async () => {
    const { data: stream, request_id } = await world.client.chat.completions
      .create({ model: "chat", messages, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const usage = chunks.at(-1)!.usage;
    expect(usage).toBeTruthy();
    expect(chunks.at(-1)!.choices).toEqual([]);
    const { settlement } = await world.waitForSettled(request_id!);
    expect(settlement.usageSource).toBe("provider");
    expect(settlement.quantities).toEqual(quantitiesFromUsage(usage));
  });

  it("delivers SSE incrementally: the client has its first chunk before the upstream sends its last", async () => {
    const stream = await world.client.chat.completions.create({ model: "chat-slow", messages, stream: true });
    let firstAt = 0;
    let count = 0;
    for await (const _ of stream) {
      if (count++ === 0) firstAt = Date.now();
    }
    const seen = world.upstream.requests.at(-1)!;
    expect(count).toBe(32); // role chunk, 30 words, finish chunk
    // 40 ms between upstream chunks (1.2 s in all): a buffering relay would deliver the first chunk
    // only after the upstream's last
    expect(seen.lastByteAt! - firstAt).toBeGreaterThan(200);
  });

  it("gives admission what a reservation needs: the output bound and a token count of the request", async () => {
    const { request_id } = await world.client.chat.completions
      .create({ model: "chat", messages, max_completion_tokens: 5 })
      .withResponse();
    const ctx = world.admitted.find((c) => c.requestId === request_id)!;
    expect(ctx.maxOutputTokens).toBe(5);
    expect(ctx.stream).toBe(false);
    expect(await ctx.countInputTokens()).toBe(9); // o200k tokens of the message text
    const { settlement } = await world.waitForSettled(request_id!);
    expect(settlement.quantities.output_token).toBe(5n * 10n ** 18n);
  });

  it("serves /chat as chat completions, recorded with its own endpoint", async () => {
    const res = await fetch(`${world.url}/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${world.client.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", messages }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { usage: unknown };
    const { ctx, settlement } = await world.waitForSettled(res.headers.get("x-request-id")!);
    expect(ctx.endpoint).toBe("/chat");
    expect(settlement.quantities).toEqual(quantitiesFromUsage(body.usage));
  });
});
