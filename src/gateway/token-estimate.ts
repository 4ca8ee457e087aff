import { ONE } from "../domain/decimal.ts";
import type { Quantities } from "../domain/meters.ts";

/**
 * Token counts for usage the upstream did not report (a stream cut or abandoned before its usage
 * chunk) and for reservations. gpt-tokenizer bundles its ranks, so nothing is fetched at run
 * time; it is loaded on first use because loading costs most of a second and most requests
 * never need it.
 */
type CountTokens = (text: string) => number;
let tokenizer: Promise<CountTokens> | null = null;

function loadTokenizer(): Promise<CountTokens> {
  tokenizer ??= import("gpt-tokenizer").then((m) => m.countTokens);
  return tokenizer;
}

export async function countTokens(text: string): Promise<number> {
  if (text === "") return 0;
  return (await loadTokenizer())(text);
}

/** The text a request sends to be read: chat messages' text, embeddings' input, a prompt. */
export function requestText(body: Readonly<Record<string, unknown>>): string {
  const parts: string[] = [];
  if (Array.isArray(body.messages)) {
    for (const message of body.messages) collectContent(message, parts);
  }
  for (const field of ["input", "prompt"] as const) {
    const value = body[field];
    if (typeof value === "string") parts.push(value);
    else if (Array.isArray(value)) for (const v of value) if (typeof v === "string") parts.push(v);
  }
  return parts.join("\n");
}

/** The generated text of a chat completion answer (content, refusals, reasoning, tool arguments). */
export function answerText(answer: unknown): string {
  const parts: string[] = [];
  const choices = (answer as { choices?: unknown } | null)?.choices;
  if (Array.isArray(choices)) for (const choice of choices) collectContent(choice?.message, parts);
  return parts.join("");
}

/** Adds the generated text of one chat completion stream chunk (its choices' deltas) to `parts`. */
export function collectChunkText(chunk: unknown, parts: string[]): void {
  const choices = (chunk as { choices?: unknown } | null)?.choices;
  if (Array.isArray(choices)) for (const choice of choices) collectContent(choice?.delta, parts);
}

/** Estimated chat meters: the request's text as input, the text received as output. */
export async function estimateChat(
  body: Readonly<Record<string, unknown>>,
  generated: string,
): Promise<Quantities> {
  const [input, output] = await Promise.all([countTokens(requestText(body)), countTokens(generated)]);
  return { input_token: BigInt(input) * ONE, output_token: BigInt(output) * ONE };
}

function collectContent(message: unknown, parts: string[]): void {
  if (message === null || typeof message !== "object") return;
  const m = message as Record<string, unknown>;
  for (const field of ["content", "refusal", "reasoning_content", "reasoning"] as const) {
    const value = m[field];
    if (typeof value === "string") parts.push(value);
    else if (Array.isArray(value)) {
      for (const part of value) if (typeof part?.text === "string") parts.push(part.text);
    }
  }
  const audio = m.audio as Record<string, unknown> | undefined;
  if (typeof audio?.transcript === "string") parts.push(audio.transcript);
  if (Array.isArray(m.tool_calls)) {
    for (const call of m.tool_calls) {
      const args = call?.function?.arguments;
      if (typeof args === "string") parts.push(args);
    }
  }
}
