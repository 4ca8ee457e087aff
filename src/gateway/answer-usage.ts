import { ONE } from "../domain/decimal.ts";
import {
  imagesFromAnswer,
  type Quantities,
  quantitiesFromUsage,
  secondsFromTranscription,
} from "../domain/meters.ts";
import type { GatewayKind, UsageSource } from "./gateway-deps.ts";
import type { GatewayCall } from "./gateway-request.ts";
import { answerText, countTokens, estimateChat, requestText } from "./token-estimate.ts";

export interface Metered {
  quantities: Quantities;
  usageSource: UsageSource;
}

/** The meters an answer of each kind is billed on, all at zero: a request that cost nothing. */
export function zeroQuantities(kind: GatewayKind): Quantities {
  switch (kind) {
    case "chat":
      return { input_token: 0n, output_token: 0n };
    case "embeddings":
      return { input_token: 0n };
    case "images":
      return { image: 0n };
    case "speech":
      return { character: 0n };
    case "transcription":
      return { second: 0n };
  }
}

/**
 * Usage of a complete, successful, non-streamed answer: what the upstream reports, else what
 * Tally counts exactly from the request (speech characters), else an estimate.
 * `answer` is a parsed copy; the client gets the original bytes.
 */
export async function meterAnswer(call: GatewayCall, answer: unknown): Promise<Metered> {
  switch (call.kind) {
    case "chat": {
      const reported = quantitiesFromUsage(usageOf(answer));
      if (reported) return { quantities: reported, usageSource: "provider" };
      return { quantities: await estimateChat(call.body, answerText(answer)), usageSource: "estimated" };
    }
    case "embeddings": {
      const reported = quantitiesFromUsage(usageOf(answer));
      if (reported) return { quantities: { input_token: reported.input_token }, usageSource: "provider" };
      return { quantities: await estimateInput(call), usageSource: "estimated" };
    }
    case "images": {
      const images = imagesFromAnswer(answer);
      if (images) return { quantities: images, usageSource: "provider" };
      return { quantities: call.knownQuantities ?? zeroQuantities("images"), usageSource: "estimated" };
    }
    case "speech":
      return { quantities: call.knownQuantities ?? zeroQuantities("speech"), usageSource: "provider" };
    case "transcription": {
      const seconds = secondsFromTranscription(answer);
      if (seconds) return { quantities: seconds, usageSource: "provider" };
      // an answer format without a duration (srt, vtt): nothing to read the length from
      return { quantities: zeroQuantities("transcription"), usageSource: "estimated" };
    }
  }
}

/**
 * Usage of a request whose answer never arrived whole because the client left: what was sent,
 * counted (chat and embeddings input tokens), and what was received so far (`generated`).
 */
export async function meterAbandoned(call: GatewayCall, generated: string): Promise<Metered> {
  switch (call.kind) {
    case "chat":
      return { quantities: await estimateChat(call.body, generated), usageSource: "estimated" };
    case "embeddings":
      return { quantities: await estimateInput(call), usageSource: "estimated" };
    case "speech":
      // the whole input was sent; speech is billed on it
      return { quantities: call.knownQuantities ?? zeroQuantities("speech"), usageSource: "provider" };
    default:
      return { quantities: zeroQuantities(call.kind), usageSource: "estimated" };
  }
}

async function estimateInput(call: GatewayCall): Promise<Quantities> {
  return { input_token: BigInt(await countTokens(requestText(call.body))) * ONE };
}

function usageOf(answer: unknown): unknown {
  return answer !== null && typeof answer === "object"
    ? (answer as Record<string, unknown>).usage
    : undefined;
}
