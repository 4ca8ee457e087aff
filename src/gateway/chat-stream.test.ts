import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChatStreamWatcher } from "./chat-stream.ts";

const usage = { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 };
const chunk = (content: string, extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content } }], usage: null, ...extra })}\n\n`;
const usageChunk = `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [], usage })}\n\n`;
const content = [chunk("Grüße"), chunk(" 👋🏽"), chunk(" fin")];
const stream = [...content, usageChunk, "data: [DONE]\n\n"].join("");
const bytes = new TextEncoder().encode(stream);

/** Feeds `bytes` cut at `cuts` (sorted offsets); returns what the client got. */
function relay(watcher: ChatStreamWatcher, cuts: number[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    const out = watcher.push(bytes.subarray(at, cut));
    parts.push(typeof out === "string" ? new TextEncoder().encode(out) : out);
    at = cut;
  }
  return Buffer.concat(parts);
}

const cutPoints = fc
  .uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 })
  .map((a) => a.sort((x, y) => x - y));

describe("ChatStreamWatcher", () => {
  it("forwards the client's own usage stream byte for byte, however the upstream cuts it (property)", () => {
    fc.assert(
      fc.property(cutPoints, (cuts) => {
        const watcher = new ChatStreamWatcher(false);
        expect(Buffer.from(relay(watcher, cuts)).equals(Buffer.from(bytes))).toBe(true);
        expect(watcher.usage).toEqual(usage);
        expect(watcher.done).toBe(true);
        expect(watcher.generatedText()).toBe("Grüße 👋🏽 fin");
      }),
    );
  });

  it("hides the usage chunk it asked for and keeps every other event, however the stream is cut (property)", () => {
    fc.assert(
      fc.property(cutPoints, (cuts) => {
        const watcher = new ChatStreamWatcher(true);
        const out = new TextDecoder().decode(relay(watcher, cuts));
        expect(out).toBe([...content, "data: [DONE]\n\n"].join(""));
        expect(watcher.usage).toEqual(usage);
        expect(watcher.generatedText()).toBe("Grüße 👋🏽 fin");
      }),
    );
  });

  it("forwards each event as soon as its blank line arrives, one byte at a time", () => {
    const watcher = new ChatStreamWatcher(true);
    const first = new TextEncoder().encode(content[0]);
    let out = "";
    for (let i = 0; i < first.length; i++) {
      out += watcher.push(first.subarray(i, i + 1)) as string;
      if (i < first.length - 1) expect(out).toBe("");
    }
    expect(out).toBe(content[0]);
  });

  it("strips usage from a content chunk that carries it instead of dropping the content", () => {
    const watcher = new ChatStreamWatcher(true);
    const out = watcher.push(new TextEncoder().encode(chunk("last", { usage })));
    expect(watcher.usage).toEqual(usage);
    const forwarded = JSON.parse(String(out).slice("data: ".length));
    expect(forwarded.usage).toBeUndefined();
    expect(forwarded.choices[0].delta.content).toBe("last");
  });
});
