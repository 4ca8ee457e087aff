import { DomainError } from "../domain/errors.ts";

/**
 * PostgreSQL text cannot hold U+0000 and SQLite can, so a NUL in any request field would be
 * stored on one store and fail with a 500 on the other. Every surface refuses it the same way:
 * a validation error naming the field (`body.events.0.id`, `query.user_id`, `path.usage_id`),
 * in the surface's own error format, before anything is read or written.
 *
 * Query parameters must also be percent-encoded UTF-8 (see badlyEncodedParam).
 *
 * Only parsed JSON, query and path values are walked: a body a route reads itself (the license
 * report's raw text) keeps that route's own answer for bytes that are not JSON.
 */
export function refuseUnsafeText(request: {
  url: string;
  params: unknown;
  query: unknown;
  body: unknown;
}): void {
  const badParam = badlyEncodedParam(request.url);
  if (badParam !== null) throw DomainError.validation(["query", badParam], "must be percent-encoded UTF-8");
  for (const [where, value] of [
    ["path", request.params],
    ["query", request.query],
    ["body", isParsedJson(request.body) ? request.body : undefined],
  ] as const) {
    // a plain scan first (every ingest body passes here); the field's path is built only on a hit
    if (!hasNul(value)) continue;
    const at = nulAt(value, [where]);
    if (at) throw DomainError.validation(at, "must not contain the NUL character (U+0000)");
  }
}

/** A body as JSON.parse makes it; a class instance is a body the route reads itself. */
function isParsedJson(body: unknown): boolean {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return true;
  const proto = Object.getPrototypeOf(body);
  return proto === Object.prototype || proto === null;
}

function hasNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) {
    for (const v of value) if (hasNul(v)) return true;
    return false;
  }
  for (const key in value) {
    if (key.includes("\u0000") || hasNul((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

/** The path of the first string (or object key) holding U+0000, or null. */
function nulAt(value: unknown, path: (string | number)[]): (string | number)[] | null {
  if (typeof value === "string") return value.includes("\u0000") ? path : null;
  if (value === null || typeof value !== "object") return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = nulAt(value[i], [...path, i]);
      if (at) return at;
    }
    return null;
  }
  for (const key in value) {
    if (key.includes("\u0000")) return [...path, key];
    const at = nulAt((value as Record<string, unknown>)[key], [...path, key]);
    if (at) return at;
  }
  return null;
}

/**
 * The first query parameter whose percent-encoding is not UTF-8 (`%FF`, an encoded surrogate
 * `%ED%A0%80`), or null. The query parser keeps such a value as its literal text, so
 * `id=%ED%A0%80` would quietly read as the id "%ED%A0%80"; it is refused like a body that is not
 * UTF-8. A path is refused by the router itself (400, "not a valid url component").
 */
function badlyEncodedParam(url: string): string | null {
  const q = url.indexOf("?");
  if (q < 0 || !url.includes("%", q)) return null;
  for (const pair of url.slice(q + 1).split("&")) {
    if (!pair.includes("%") || decoded(pair) !== null) continue;
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    return decoded(name) ?? name;
  }
  return null;
}

/** A query component percent-decoded (`+` is a space), or null when it is not UTF-8. */
function decoded(text: string): string | null {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return null;
  }
}
