import { ONE } from "../domain/decimal.ts";
import { charactersOf, type Quantities } from "../domain/meters.ts";
import type { GatewayKind, GatewayRefusal } from "./gateway-deps.ts";

/** A gateway body as it arrived: the route reads it itself, so the original bytes can be forwarded. */
export class RawBody {
  constructor(
    readonly bytes: Buffer,
    readonly contentType: string,
  ) {}
}

/** A validated gateway request, ready for admission and forwarding. */
export interface GatewayCall {
  kind: GatewayKind;
  model: string;
  stream: boolean;
  /** The JSON body, or a multipart body's text fields. */
  body: Record<string, unknown>;
  /** The multipart form, for a transcription. */
  form: FormData | null;
  raw: RawBody;
  maxOutputTokens: number | null;
  knownQuantities: Quantities | null;
}

/** Paths under the upstream's base URL. */
export const UPSTREAM_PATHS: Record<GatewayKind, string> = {
  chat: "/chat/completions",
  embeddings: "/embeddings",
  images: "/images/generations",
  speech: "/audio/speech",
  transcription: "/audio/transcriptions",
};

/** Reads and checks a gateway body; a bad one is a 400 naming the field, in OpenAI's shape. */
export async function readGatewayCall(
  kind: GatewayKind,
  body: unknown,
): Promise<GatewayCall | GatewayRefusal> {
  if (!(body instanceof RawBody)) {
    return kind === "transcription"
      ? invalid("body must be multipart/form-data", null)
      : invalid("body must be a JSON object", null);
  }
  let fields: Record<string, unknown>;
  let form: FormData | null = null;
  if (kind === "transcription") {
    if (!body.contentType.startsWith("multipart/form-data")) {
      return invalid("body must be multipart/form-data", null);
    }
    try {
      form = await new Response(body.bytes, { headers: { "content-type": body.contentType } }).formData();
    } catch {
      return invalid("body is not a well-formed multipart/form-data body", null);
    }
    fields = {};
    for (const [name, value] of form) if (typeof value === "string") fields[name] = value;
    const file = form.get("file");
    if (file === null || typeof file === "string") return invalid("file: a file is required", "file");
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.bytes.toString("utf8"));
    } catch {
      return invalid("body is not valid JSON", null);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      return invalid("body must be a JSON object", null);
    }
    fields = parsed as Record<string, unknown>;
  }

  const model = fields.model;
  if (typeof model !== "string" || model === "") return invalid("model: must be a non-empty string", "model");
  const stream = fields.stream === true;
  if (fields.stream !== undefined && typeof fields.stream !== "boolean" && kind !== "transcription") {
    return invalid("stream: must be a boolean", "stream");
  }

  let knownQuantities: Quantities | null = null;
  let maxOutputTokens: number | null = null;
  switch (kind) {
    case "chat": {
      if (!Array.isArray(fields.messages)) return invalid("messages: must be an array", "messages");
      for (const name of ["max_completion_tokens", "max_tokens"] as const) {
        const v = fields[name];
        if (v === undefined || v === null) continue;
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
          return invalid(`${name}: must be a positive integer`, name);
        }
        maxOutputTokens ??= v;
      }
      const options = fields.stream_options;
      if (
        options !== undefined &&
        options !== null &&
        (typeof options !== "object" || Array.isArray(options))
      ) {
        return invalid("stream_options: must be an object", "stream_options");
      }
      break;
    }
    case "embeddings":
      if (fields.input === undefined || fields.input === null) return invalid("input: is required", "input");
      break;
    case "images": {
      const n = fields.n ?? 1;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1)
        return invalid("n: must be a positive integer", "n");
      knownQuantities = { image: BigInt(n) * ONE };
      break;
    }
    case "speech":
      if (typeof fields.input !== "string") return invalid("input: must be a string", "input");
      knownQuantities = charactersOf(fields.input);
      break;
    case "transcription":
      break;
  }
  return { kind, model, stream, body: fields, form, raw: body, maxOutputTokens, knownQuantities };
}

function invalid(message: string, param: string | null): GatewayRefusal {
  return { ok: false, status: 400, code: "invalid_request", message, param, type: "invalid_request_error" };
}

/**
 * A transcription asked for as plain text is asked upstream as JSON, which states its duration,
 * and the text is answered from it: the seconds are billed whatever the client's format.
 */
export function wantsPlainText(call: GatewayCall): boolean {
  return call.kind === "transcription" && call.body.response_format === "text";
}

/**
 * The body sent upstream: the original bytes unless the model is renamed, Tally must ask for
 * stream usage (`addUsage`) or a transcription's format changes, in which case the JSON (or the
 * form) is written anew.
 */
export async function upstreamBody(
  call: GatewayCall,
  upstreamModel: string,
  addUsage: boolean,
): Promise<{ body: Uint8Array | string; contentType: string }> {
  const rename = upstreamModel !== call.model;
  const textToJson = wantsPlainText(call);
  if (!rename && !addUsage && !textToJson) return { body: call.raw.bytes, contentType: call.raw.contentType };
  if (call.form) {
    const form = new FormData();
    for (const [name, value] of call.form) {
      if (typeof value !== "string") form.append(name, value, value.name);
      else if (name === "model") form.append(name, upstreamModel);
      else if (name === "response_format" && textToJson) form.append(name, "json");
      else form.append(name, value);
    }
    const encoded = new Response(form);
    return {
      body: new Uint8Array(await encoded.arrayBuffer()),
      contentType: encoded.headers.get("content-type") ?? "multipart/form-data",
    };
  }
  // the body's fields copied after the new ones, which are then written again: an object that
  // starts with a spread takes V8's slow path for every field written after it (decision 0021)
  const out: Record<string, unknown> = { model: upstreamModel, ...call.body };
  out.model = upstreamModel;
  if (addUsage) {
    const options: Record<string, unknown> = {
      include_usage: true,
      ...(call.body.stream_options as object | undefined),
    };
    options.include_usage = true;
    out.stream_options = options;
  }
  return { body: JSON.stringify(out), contentType: "application/json" };
}
