import { randomBytes } from "node:crypto";
import { type Dec, formatDec } from "../domain/decimal.ts";

/**
 * Exact decimals in JSON. Node 20 has no JSON.rawJSON, so a decimal is carried through
 * JSON.stringify as a string tagged with a per-process random marker, and the marker's quotes
 * are removed afterwards: `0.0043` leaves as the number 0.0043, digit for digit.
 */
const MARK = `~dec${randomBytes(9).toString("hex")}~`;
const OPEN = `"${MARK}`;

export class JsonDecimal {
  constructor(readonly text: string) {}
  toJSON(): string {
    return MARK + this.text;
  }
}

/** A decimal that serializes as a JSON number with its exact digits. */
export function dec(v: Dec): JsonDecimal {
  return new JsonDecimal(formatDec(v));
}

export function serializeJson(payload: unknown): string {
  const text = JSON.stringify(payload);
  if (!text.includes(OPEN)) return text;
  // each marked string is `"<MARK><decimal>"`: drop the opening quote and marker, and the closing
  // quote, which is the first after them (a decimal's text holds none)
  const parts = text.split(OPEN);
  let out = parts[0];
  for (let i = 1; i < parts.length; i++) {
    const close = parts[i].indexOf('"');
    out += parts[i].slice(0, close) + parts[i].slice(close + 1);
  }
  return out;
}
