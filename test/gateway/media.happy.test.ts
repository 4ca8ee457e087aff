import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  errorOf,
  type GatewayWorld,
  quantitiesText,
  startGatewayWorld,
  UPSTREAM_KEY,
} from "./gateway-harness.ts";

let world: GatewayWorld;
beforeAll(async () => {
  world = await startGatewayWorld();
});
afterAll(() => world.close());

/** 64,000 bytes: the dev upstream reads them as 2 seconds of 16 kHz 16-bit audio. */
const AUDIO = Buffer.alloc(64_000, 7);

describe("speech", () => {
  it("passes the audio bytes through and bills the input's characters as code points", async () => {
    const input = "héllo 👋🏽 世界"; // 13 UTF-16 units, 11 code points
    const response = await world.client.audio.speech.create({ model: "tts", voice: "alloy", input });
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(response.headers.get("content-type")).toBe("audio/mpeg");

    const direct = await fetch(`${world.upstream.url}/v1/audio/speech`, {
      method: "POST",
      headers: { authorization: `Bearer ${UPSTREAM_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "dev-tts", voice: "alloy", input }),
    });
    expect(bytes.equals(Buffer.from(await direct.arrayBuffer()))).toBe(true);

    const { ctx, settlement } = await world.waitForSettled(response.headers.get("x-request-id")!);
    expect(ctx.endpoint).toBe("/v1/audio/speech");
    expect(ctx.knownQuantities).toEqual(settlement.quantities);
    expect(quantitiesText(settlement.quantities)).toEqual({ character: "11" });
    expect(settlement.usageSource).toBe("provider");
  });

  it("serves /tts as speech, with its own endpoint", async () => {
    const res = await fetch(`${world.url}/tts`, {
      method: "POST",
      headers: { authorization: `Bearer ${world.client.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tts", voice: "alloy", input: "abc", response_format: "wav" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("audio/wav");
    expect((await res.arrayBuffer()).byteLength).toBe(1300);
    const { ctx, settlement } = await world.waitForSettled(res.headers.get("x-request-id")!);
    expect(ctx.endpoint).toBe("/tts");
    expect(quantitiesText(settlement.quantities)).toEqual({ character: "3" });
  });
});

describe("transcription (multipart)", () => {
  it("bills the seconds of the answer's duration; the model is renamed in the form", async () => {
    const { data, request_id } = await world.client.audio.transcriptions
      .create({ model: "whisper", file: await toFile(AUDIO, "clip.wav") })
      .withResponse();
    expect(data.text).toBe("Transcribed 64000 bytes of audio.");
    expect(world.upstream.requests.at(-1)!.model).toBe("dev-transcribe");
    const { settlement } = await world.waitForSettled(request_id!);
    expect(quantitiesText(settlement.quantities)).toEqual({ second: "2" });
    expect(settlement.usageSource).toBe("provider");
  });

  it("forwards a multipart body unchanged when the model keeps its name", async () => {
    const form = new FormData();
    form.append("model", "dev-transcribe");
    form.append("file", new Blob([AUDIO.subarray(0, 48_000)]), "clip.wav");
    const res = await fetch(`${world.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${world.client.apiKey}` },
      body: form,
    });
    expect(res.status).toBe(200);
    const { settlement } = await world.waitForSettled(res.headers.get("x-request-id")!);
    expect(quantitiesText(settlement.quantities)).toEqual({ second: "1.5" });
  });

  it("still bills the seconds when the client asks for plain text", async () => {
    const { data, request_id } = await world.client.audio.transcriptions
      .create({ model: "whisper", file: await toFile(AUDIO, "clip.wav"), response_format: "text" })
      .withResponse();
    expect(data).toBe("Transcribed 64000 bytes of audio.");
    const { settlement } = await world.waitForSettled(request_id!);
    expect(quantitiesText(settlement.quantities)).toEqual({ second: "2" });
  });

  it("refuses a form without a file, naming the field", async () => {
    const form = new FormData();
    form.append("model", "whisper");
    const res = await fetch(`${world.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${world.client.apiKey}` },
      body: form,
    });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ param: "file", type: "invalid_request_error" });
  });
});

describe("embeddings and images", () => {
  it("bills embeddings' input tokens from the upstream's usage", async () => {
    const { data, request_id } = await world.client.embeddings
      .create({ model: "embed", input: ["the quick brown fox", "jumps"] })
      .withResponse();
    expect(data.data).toHaveLength(2);
    expect(data.data[0].embedding).toHaveLength(8);
    const { settlement } = await world.waitForSettled(request_id!);
    expect(quantitiesText(settlement.quantities)).toEqual({ input_token: String(data.usage.prompt_tokens) });
    expect(data.usage.prompt_tokens).toBe(5);
  });

  it("bills images from the answer", async () => {
    const { data, request_id } = await world.client.images
      .generate({ model: "image", prompt: "a lazy dog", n: 2, response_format: "b64_json" })
      .withResponse();
    expect(data.data).toHaveLength(2);
    const { ctx, settlement } = await world.waitForSettled(request_id!);
    expect(quantitiesText(ctx.knownQuantities!)).toEqual({ image: "2" });
    expect(quantitiesText(settlement.quantities)).toEqual({ image: "2" });
  });
});
