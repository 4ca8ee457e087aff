// JSON over the same routes every client uses; the session cookie authenticates (same origin).

/** Parse JSON keeping every number's source text, so decimals stay exact (never floats). */
export function parseExact(text) {
  return JSON.parse(text, (_key, value, context) =>
    typeof value === "number"
      ? context && typeof context.source === "string"
        ? context.source
        : String(value)
      : value,
  );
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The message an API error body carries, in whichever surface's format it came. */
function messageOf(body, status) {
  if (body && typeof body === "object") {
    if (body.error && typeof body.error.message === "string") return body.error.message;
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail) && body.detail[0]?.msg) {
      const d = body.detail[0];
      return `${(d.loc || []).slice(1).join(".") || "input"}: ${d.msg}`;
    }
  }
  return `The server answered ${status}`;
}

export async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers:
        body === undefined
          ? { accept: "application/json" }
          : { "content-type": "application/json", accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "Tally could not be reached. Check your connection and try again.");
  }
  const text = await res.text();
  let parsed = null;
  if (text) {
    try {
      parsed = parseExact(text);
    } catch {
      parsed = null;
    }
  }
  if (!res.ok) {
    if (res.status === 401) throw new ApiError(401, "Your session has ended. Sign in again.");
    throw new ApiError(res.status, messageOf(parsed, res.status));
  }
  return parsed;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
