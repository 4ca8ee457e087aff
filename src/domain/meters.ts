import { type Dec, DecimalError, divDec, mulDec, ONE, parseDec, QUANTITY_PLACES, ZERO } from "./decimal.ts";
import { DomainError } from "./errors.ts";

/**
 * Meters: a model may be priced per meter (input tokens, output tokens, characters, ...) instead of
 * one unit price. One request carries `quantities` per meter; its cost is the exact sum over them.
 */
export const METERS = [
  "input_token",
  "output_token",
  "cached_input_token",
  "input_audio_token",
  "output_audio_token",
  "character",
  "second",
  "image",
] as const;

export type Meter = (typeof METERS)[number];

const METER_SET: ReadonlySet<string> = new Set(METERS);

export function isMeter(name: string): name is Meter {
  return METER_SET.has(name);
}

/** Quantities per meter, exact (seconds may be fractional). */
export type Quantities = Partial<Record<Meter, Dec>>;
/** Unit price per meter, exact. */
export type MeterPrices = Partial<Record<Meter, Dec>>;

export interface MeterLine {
  meter: Meter;
  quantity: Dec;
  unitPrice: Dec;
  cost: Dec;
}

export interface MeteredCost {
  /** One line per meter with a quantity, in METERS order. */
  lines: MeterLine[];
  total: Dec;
  /** Sum of the quantities over meters (the usage log's units_used). */
  totalQuantity: Dec;
}

/**
 * The exact cost of `quantities` at `prices`. A meter with a quantity but no price cannot be
 * billed: that is bad input naming the meter, never a silent zero.
 */
export function costOfQuantities(quantities: Quantities, prices: MeterPrices): MeteredCost {
  const lines: MeterLine[] = [];
  let total = ZERO;
  let totalQuantity = ZERO;
  for (const meter of METERS) {
    const quantity = quantities[meter];
    if (quantity === undefined) continue;
    if (quantity < ZERO) throw DomainError.validation(["body", "quantities", meter], "must not be negative");
    const unitPrice = prices[meter];
    if (unitPrice === undefined) {
      if (quantity === ZERO) continue;
      throw DomainError.validation(["body", "quantities", meter], "the model has no price for this meter");
    }
    const cost = mulDec(quantity, unitPrice);
    lines.push({ meter, quantity, unitPrice, cost });
    total += cost;
    totalQuantity += quantity;
  }
  return { lines, total, totalQuantity };
}

/** Reads a `{meter: number}` object from input; errors name the field under `loc`. */
export function parseQuantities(input: unknown, loc: (string | number)[]): Quantities {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw DomainError.validation(loc, "must be an object of meter quantities");
  }
  const out: Quantities = {};
  const entries = Object.entries(input);
  if (entries.length === 0) throw DomainError.validation(loc, "must name at least one meter");
  for (const [name, value] of entries) {
    if (!isMeter(name)) {
      throw DomainError.validation([...loc, name], `is not a meter (one of ${METERS.join(", ")})`);
    }
    let quantity: Dec;
    try {
      quantity = parseDec(value, QUANTITY_PLACES);
    } catch (err) {
      if (err instanceof DecimalError) throw DomainError.validation([...loc, name], err.message);
      throw err;
    }
    if (quantity < ZERO) throw DomainError.validation([...loc, name], "must not be negative");
    out[name] = quantity;
  }
  return out;
}

/**
 * The token meters of an OpenAI-style `usage` object (chat completions, embeddings, the Responses
 * API's `input_tokens`/`output_tokens`):
 * input_token = prompt - cached - audio input, cached_input_token = cached,
 * input_audio_token = audio prompt tokens, output_token = completion (reasoning included) - audio
 * output, output_audio_token = audio completion tokens.
 * A detail larger than what is left of its total is capped, so the token meters always sum to
 * prompt + completion. Returns null when `usage` carries no token counts.
 */
export function quantitiesFromUsage(usage: unknown): Quantities | null {
  if (usage === null || typeof usage !== "object") return null;
  const u = usage as Record<string, unknown>;
  const prompt = count(u.prompt_tokens ?? u.input_tokens);
  const completion = count(u.completion_tokens ?? u.output_tokens);
  if (prompt === null && completion === null) return null;
  const promptDetails = details(u.prompt_tokens_details ?? u.input_tokens_details ?? u.input_token_details);
  const completionDetails = details(u.completion_tokens_details ?? u.output_tokens_details);

  const promptTotal = prompt ?? 0;
  const cached = Math.min(count(promptDetails.cached_tokens) ?? 0, promptTotal);
  const audioIn = Math.min(count(promptDetails.audio_tokens) ?? 0, promptTotal - cached);
  const completionTotal = completion ?? 0;
  const audioOut = Math.min(count(completionDetails.audio_tokens) ?? 0, completionTotal);

  const out: Quantities = {
    input_token: tokens(promptTotal - cached - audioIn),
    output_token: tokens(completionTotal - audioOut),
  };
  if (cached > 0) out.cached_input_token = tokens(cached);
  if (audioIn > 0) out.input_audio_token = tokens(audioIn);
  if (audioOut > 0) out.output_audio_token = tokens(audioOut);
  return out;
}

/** Images in an images answer (`data: [...]`); null when the answer has no `data` list. */
export function imagesFromAnswer(answer: unknown): Quantities | null {
  if (answer === null || typeof answer !== "object") return null;
  const data = (answer as Record<string, unknown>).data;
  if (!Array.isArray(data)) return null;
  return { image: tokens(data.length) };
}

/** Characters of a speech request's `input`, counted as Unicode code points (not UTF-16 units). */
export function charactersOf(input: string): Quantities {
  let n = 0;
  for (const _ of input) n++;
  return { character: tokens(n) };
}

/**
 * Seconds of a transcription answer: its `duration`, or a `usage: {type: "duration", seconds}`.
 * Rounded half-up to the quantity precision (6 places). Null when the answer states neither.
 */
export function secondsFromTranscription(answer: unknown): Quantities | null {
  if (answer === null || typeof answer !== "object") return null;
  const a = answer as Record<string, unknown>;
  const usage = a.usage as Record<string, unknown> | undefined;
  const raw = a.duration ?? (usage?.type === "duration" ? usage.seconds : undefined);
  if (typeof raw !== "number" || !Number.isFinite(raw) || raw < 0) return null;
  return { second: divDec(parseDec(raw), ONE, QUANTITY_PLACES) };
}

function count(v: unknown): number | null {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

function details(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : {};
}

const tokens = (n: number): Dec => BigInt(n) * ONE;

/**
 * The quantity of `quantities` in a model's single billing unit, for a model priced per unit
 * rather than per meter: `token` sums the token meters, a meter's own name (`character`, `second`,
 * `image`) takes that meter, `request` is 1 (0 for a request that measured nothing, such as an
 * upstream error before its answer). Null when the unit is none of these: the gateway cannot
 * measure it.
 */
export function quantityInUnit(unit: string, quantities: Quantities): Dec | null {
  if (unit === "request") {
    return METERS.some((m) => (quantities[m] ?? ZERO) > ZERO) ? ONE : ZERO;
  }
  if (unit === "token") {
    let sum = ZERO;
    for (const m of METERS) if (m.endsWith("_token")) sum += quantities[m] ?? ZERO;
    return sum;
  }
  if (isMeter(unit)) return quantities[unit] ?? ZERO;
  return null;
}

/** Which side of a model's tokens a meter counts: `input_*`/`cached_*` prompt, `output_*` completion. */
export function tokenSide(meter: Meter): "prompt" | "completion" | null {
  if (!meter.endsWith("_token")) return null;
  return meter.startsWith("output_") ? "completion" : "prompt";
}

/** The token meters of each side, in METERS order (for the queries that count them). */
export const PROMPT_METERS: readonly Meter[] = METERS.filter((m) => tokenSide(m) === "prompt");
export const COMPLETION_METERS: readonly Meter[] = METERS.filter((m) => tokenSide(m) === "completion");

/** Prompt and completion tokens of `quantities` (whole tokens). */
export function tokensOf(quantities: Quantities): { prompt: number; completion: number } {
  let prompt = ZERO;
  let completion = ZERO;
  for (const m of METERS) {
    const side = tokenSide(m);
    if (side === "prompt") prompt += quantities[m] ?? ZERO;
    else if (side === "completion") completion += quantities[m] ?? ZERO;
  }
  return { prompt: Number(prompt / ONE), completion: Number(completion / ONE) };
}

/**
 * The meter a usage line stands for: a line of a model priced per meter is in the meter's unit,
 * other than the model's own unit (the event row keeps the model's unit). Null for a per-unit line.
 */
export function meterOfLine(lineUnit: string, modelUnit: string | null | undefined): Meter | null {
  return isMeter(lineUnit) && modelUnit != null && lineUnit !== modelUnit ? lineUnit : null;
}

/** Where a meter the model has no price for is billed instead: a cached or audio token is still a token. */
const FALLBACK: Partial<Record<Meter, Meter>> = {
  cached_input_token: "input_token",
  input_audio_token: "input_token",
  output_audio_token: "output_token",
};

/**
 * The quantities a gateway request is billed on at `prices`: a meter without a price moves to the
 * meter it specializes (cached and audio input tokens to input_token, audio output to
 * output_token) when that one is priced; what has no price at all is left out (and kept in the
 * event's metadata by the caller), so a model priced only per token is never refused a request it
 * already served.
 */
export function billableQuantities(quantities: Quantities, prices: MeterPrices): Quantities {
  const out: Quantities = {};
  for (const meter of METERS) {
    const q = quantities[meter];
    if (q === undefined) continue;
    const target = prices[meter] !== undefined ? meter : FALLBACK[meter];
    if (target === undefined || prices[target] === undefined) continue;
    out[target] = (out[target] ?? ZERO) + q;
  }
  return out;
}
