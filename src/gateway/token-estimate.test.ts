import { describe, expect, it } from "vitest";
import { formatDec } from "../domain/decimal.ts";
import { answerText, collectChunkText, countTokens, estimateChat, requestText } from "./token-estimate.ts";

describe("token estimates", () => {
  it("reads the text a request sends: string contents, text parts, embeddings input", () => {
    const body = {
      messages: [
        { role: "system", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: "data:..." } },
          ],
        },
      ],
    };
    expect(requestText(body)).toBe("Be brief.\nWhat is this?");
    expect(requestText({ input: ["a b", "c"] })).toBe("a b\nc");
  });

  it("reads generated text from answers and stream chunks, tool arguments and reasoning included", () => {
    const answer = {
      choices: [
        {
          message: {
            content: "Hi",
            tool_calls: [{ type: "function", function: { name: "f", arguments: '{"x":1}' } }],
          },
        },
      ],
    };
    expect(answerText(answer)).toBe('Hi{"x":1}');
    const parts: string[] = [];
    collectChunkText({ choices: [{ delta: { reasoning_content: "think " } }] }, parts);
    collectChunkText({ choices: [{ delta: { content: "done" } }] }, parts);
    collectChunkText({ choices: [] }, parts);
    expect(parts.join("")).toBe("think done");
  });

  it("counts with a real tokenizer (o200k), not characters or words", async () => {
    expect(await countTokens("")).toBe(0);
    expect(await countTokens("hello world")).toBe(2);
    const q = await estimateChat(
      { messages: [{ role: "user", content: "hello world" }] },
      "antidisestablishmentarianism",
    );
    expect(formatDec(q.input_token!)).toBe("2");
    const output = Number(formatDec(q.output_token!));
    expect(output).toBeGreaterThan(1);
    expect(output).toBeLessThan("antidisestablishmentarianism".length);
  });
});
