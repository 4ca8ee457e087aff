import { randomBytes } from "node:crypto";
import { type Dec, formatDec } from "../domain/decimal.ts";

/**
 * Exact decimals in JSON. Node 20 has no JSON.rawJSON, so a decimal is carried through
 * JSON.stringify as a string tagged with a per-process random marker, and the marker's quotes
 * are removed afterwards: `0.0043` leaves as the number 0.0043, digit for digit.
 */
const MARK = `~dec${randomBytes(9).toString("hex")}~`;
const MARKED = new RegExp(`"${MARK}(-?[0-9]+(?:\\.[0-9]+)?)"`, "g");

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
  return text.includes(MARK) ? text.replace(MARKED, "$1") : text;
}
