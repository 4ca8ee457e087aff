import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDec, ONE, parseDec } from "./decimal.ts";
import { DomainError } from "./errors.ts";
import {
  charactersOf,
  costOfQuantities,
  imagesFromAnswer,
  parseQuantities,
  type Quantities,
  quantitiesFromUsage,
  secondsFromTranscription,
} from "./meters.ts";

const n = (v: bigint | undefined): string | undefined => (v === undefined ? undefined : formatDec(v));
const asText = (q: Quantities | null) =>
  q === null ? null : Object.fromEntries(Object.entries(q).map(([k, v]) => [k, n(v)]));

describe("quantitiesFromUsage", () => {
  it("maps a plain chat usage to input and output tokens", () => {
    expect(
      asText(quantitiesFromUsage({ prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 })),
    ).toEqual({
      input_token: "12",
      output_token: "7",
    });
  });

  it("splits cached and audio prompt tokens out of input, audio out of output, keeps reasoning in output", () => {
    const usage = {
      prompt_tokens: 2000,
      completion_tokens: 500,
      prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 300 },
      completion_tokens_details: { reasoning_tokens: 200, audio_tokens: 120 },
    };
    expect(asText(quantitiesFromUsage(usage))).toEqual({
      input_token: "676",
      cached_input_token: "1024",
      input_audio_token: "300",
      output_token: "380",
      output_audio_token: "120",
    });
  });

  it("reads the input_tokens/output_tokens spelling and embeddings' prompt-only usage", () => {
    expect(
      asText(
        quantitiesFromUsage({
          input_tokens: 10,
          output_tokens: 4,
          input_tokens_details: { cached_tokens: 3 },
        }),
      ),
    ).toEqual({ input_token: "7", cached_input_token: "3", output_token: "4" });
    expect(asText(quantitiesFromUsage({ prompt_tokens: 8, total_tokens: 8 }))).toEqual({
      input_token: "8",
      output_token: "0",
    });
  });

  it("returns null for a usage without token counts", () => {
    expect(quantitiesFromUsage(null)).toBeNull();
    expect(quantitiesFromUsage({})).toBeNull();
    expect(quantitiesFromUsage({ prompt_tokens: -1, completion_tokens: "3" })).toBeNull();
  });

  it("token meters always sum to prompt + completion, each one non-negative (property)", () => {
    const detail = fc.option(fc.nat(5000), { nil: undefined });
    fc.assert(
      fc.property(
        fc.nat(100_000),
        fc.nat(100_000),
        detail,
        detail,
        detail,
        detail,
        (prompt, completion, cached, audioIn, reasoning, audioOut) => {
          const q = quantitiesFromUsage({
            prompt_tokens: prompt,
            completion_tokens: completion,
            prompt_tokens_details: { cached_tokens: cached, audio_tokens: audioIn },
            completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: audioOut },
          });
          expect(q).not.toBeNull();
          const values = Object.values(q!);
          for (const v of values) expect(v >= 0n).toBe(true);
          const sum = values.reduce((a, b) => a + b, 0n);
          expect(sum).toBe(BigInt(prompt + completion) * ONE);
          expect(q!.input_token! + (q!.cached_input_token ?? 0n) + (q!.input_audio_token ?? 0n)).toBe(
            BigInt(prompt) * ONE,
          );
        },
      ),
    );
  });
});

describe("the other meters", () => {
  it("counts speech characters as code points, not UTF-16 units", () => {
    const input = "héllo 👋🏽 世界";
    expect(input.length).toBe(13);
    expect(n(charactersOf(input).character)).toBe("11");
    expect(n(charactersOf("").character)).toBe("0");
  });

  it("counts images in an images answer", () => {
    expect(n(imagesFromAnswer({ created: 1, data: [{ url: "a" }, { url: "b" }] })?.image)).toBe("2");
    expect(imagesFromAnswer({ error: {} })).toBeNull();
  });

  it("reads transcription seconds from duration or a duration usage, rounded half-up to 6 places", () => {
    expect(n(secondsFromTranscription({ text: "hi", duration: 3.52 })?.second)).toBe("3.52");
    expect(n(secondsFromTranscription({ text: "hi", duration: 1.0000005 })?.second)).toBe("1.000001");
    expect(n(secondsFromTranscription({ text: "x", usage: { type: "duration", seconds: 7 } })?.second)).toBe(
      "7",
    );
    expect(secondsFromTranscription({ text: "x" })).toBeNull();
    expect(secondsFromTranscription({ duration: -1 })).toBeNull();
  });
});

describe("costOfQuantities", () => {
  const prices = {
    input_token: parseDec("0.00000015"),
    output_token: parseDec("0.0000006"),
    cached_input_token: parseDec("0.000000075"),
  };

  it("is the exact sum over meters, one line per meter", () => {
    const cost = costOfQuantities(
      { input_token: parseDec(1200), output_token: parseDec(300), cached_input_token: parseDec(1024) },
      prices,
    );
    // 1200 x 0.00000015 + 300 x 0.0000006 + 1024 x 0.000000075 = 0.00018 + 0.00018 + 0.0000768
    expect(n(cost.total)).toBe("0.0004368");
    expect(n(cost.totalQuantity)).toBe("2524");
    expect(cost.lines.map((l) => [l.meter, n(l.cost)])).toEqual([
      ["input_token", "0.00018"],
      ["output_token", "0.00018"],
      ["cached_input_token", "0.0000768"],
    ]);
  });

  it("refuses a quantity on a meter the model has no price for, naming the meter", () => {
    expect(() => costOfQuantities({ input_token: ONE, image: ONE }, prices)).toThrow(/quantities\.image/);
    // a zero quantity on an unpriced meter costs nothing and is no error
    expect(n(costOfQuantities({ input_token: ONE, image: 0n }, prices).total)).toBe("0.00000015");
  });

  it("parses quantities from input, naming the bad field", () => {
    expect(asText(parseQuantities({ input_token: 12, second: "1.5" }, ["body", "quantities"]))).toEqual({
      input_token: "12",
      second: "1.5",
    });
    for (const [bad, field] of [
      [{ tokens: 1 }, "quantities.tokens"],
      [{ input_token: -1 }, "quantities.input_token"],
      [{ input_token: 0.0000001 }, "quantities.input_token"],
      [{}, "quantities"],
      [[1], "quantities"],
    ] as const) {
      const err = (() => {
        try {
          parseQuantities(bad, ["body", "quantities"]);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(DomainError);
      expect((err as DomainError).message.startsWith(field)).toBe(true);
    }
  });
});
