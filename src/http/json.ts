import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { type Dec, formatDec } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";

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

/** How deeply a request's JSON may nest; deeper bodies are refused before they are parsed. */
export const MAX_JSON_DEPTH = 64;

type Done = (err: Error | null, body?: unknown) => void;
/** Fastify's own JSON parser over text (empty bodies, syntax errors, prototype poisoning). */
export type JsonTextParser = (request: FastifyRequest, text: string, done: Done) => void;

/** `\uD800`-`\uDFFF` escapes: only these can make a string that is not well-formed Unicode. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The JSON body parser of every surface (it takes the body as bytes): refuses bodies that are
 * not valid UTF-8, nest deeper than MAX_JSON_DEPTH, or hold strings that are not well-formed
 * Unicode (lone surrogates written as escapes), naming the field where it can. PostgreSQL would
 * otherwise store two different ids as one, and deep nesting would overflow the stack later.
 * The common case costs one native UTF-8 check and one byte scan for the depth.
 */
export function guardedJsonParser(parseText: JsonTextParser) {
  return (request: FastifyRequest, body: Buffer, done: Done): void => {
    if (!isUtf8(body)) {
      done(notUtf8(body));
      return;
    }
    if (depthExceeds(body, MAX_JSON_DEPTH)) {
      done(DomainError.validation(["body"], `JSON nests deeper than ${MAX_JSON_DEPTH} levels`, "json_depth"));
      return;
    }
    const text = body.toString("utf8");
    parseText(request, text, (err, value) => {
      const at = !err && SURROGATE_ESCAPE.test(text) ? illFormedAt(value, ["body"]) : null;
      if (err) done(err);
      else if (at) done(DomainError.validation(at, "must be well-formed Unicode (no lone surrogates)"));
      else done(null, value);
    });
  };
}

/**
 * Whether brackets outside strings nest deeper than `max` (a scan of the bytes, no parsing).
 * A string is skipped in its own tight loop: most of an events body is strings, and this took a
 * 1,000-event body in half the time of one loop with an in-string flag.
 */
function depthExceeds(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (b === 0x22) {
      for (i++; i < n; i++) {
        const c = bytes[i];
        if (c === 0x22) break;
        if (c === 0x5c) i++; // backslash: the next byte is escaped
      }
    } else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}

/** The path of the first string or key that is not well-formed Unicode, or null. */
function illFormedAt(value: unknown, path: (string | number)[]): (string | number)[] | null {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? path : null;
  if (value === null || typeof value !== "object") return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = illFormedAt(value[i], [...path, i]);
      if (at) return at;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    if (LONE_SURROGATE.test(key)) return [...path, key];
    const at = illFormedAt((value as Record<string, unknown>)[key], [...path, key]);
    if (at) return at;
  }
  return null;
}

/**
 * The refusal for a body that is not UTF-8. To name the field, the first bad byte is replaced by
 * a lone-surrogate escape and the body parsed again: the string that then holds one is the field.
 */
function notUtf8(body: Buffer): DomainError {
  const offset = firstInvalidUtf8(body);
  let at: (string | number)[] | null = null;
  try {
    const marked = `${body.subarray(0, offset).toString("utf8")}\\udfff${body.subarray(offset + 1).toString("utf8")}`;
    at = illFormedAt(JSON.parse(marked), ["body"]);
  } catch {
    // not JSON either way: the body as a whole is refused
  }
  return DomainError.validation(at ?? ["body"], "must be valid UTF-8", "utf8_invalid");
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence (-1: none). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) n = 0;
    else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f; // no encoded surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}
