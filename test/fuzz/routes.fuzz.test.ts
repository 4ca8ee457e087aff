import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RELIABILITY } from "../reliability/support/enabled.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, type World } from "../support/world.ts";

/**
 * Every route of `/openapi.json`, fuzzed over real HTTP (the app listening on a loopback port):
 * valid, boundary and hostile path parameters, queries, headers and bodies, built from each
 * operation's own schemas: huge and tiny numbers, -0, 10,000-deep JSON, long strings, lone
 * surrogates as JSON escapes, invalid UTF-8 bytes, years 0001 and 9999. No answer may be a 5xx or
 * take 2 s or more; a refused write adds no event, an accepted batch adds exactly what it says; and
 * afterwards the store's own verification (what `tally verify` runs) finds every rollup equal to
 * the raw events. In CI (CI=true) one fixed seed (test/support/fast-check-seed.ts; FC_SEED picks
 * another); locally a new one each run, printed on failure.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 48);
/** The CI seed (or FC_SEED) from test/support/fast-check-seed.ts; otherwise a new one, printed. */
const SEED = fc.readConfigureGlobal().seed ?? Math.floor(Math.random() * 2 ** 31);
const MAX_ANSWER_MS = 2000;

/** A JSON token written as is, for what JSON.stringify cannot say: -0, 1e400, 30-digit integers. */
class Raw {
  constructor(readonly text: string) {}
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`)
      .join(",")}}`;
  }
  // JSON.stringify writes a lone surrogate as its \uXXXX escape
  return JSON.stringify(v) ?? "null";
}

const DEEP = 10_000;
const deepArray = "[".repeat(DEEP) + "]".repeat(DEEP);
const deepObject = `${'{"a":'.repeat(DEEP)}1${"}".repeat(DEEP)}`;

const HOSTILE_STRINGS = [
  "",
  " ",
  "a".repeat(201),
  "x".repeat(10_000),
  "\u0000",
  "nul\u0000inside",
  "\ud800",
  "s-\ud800x",
  "s-\ud801x",
  "\udfff",
  "\udc00\ud800",
  "\ud83d\ude00",
  "e\u0301",
  "\u202eevil",
  "\ufeffbom",
  "\uffff",
  "\u2028\u2029",
  "１２３",
  "٣",
  "%00",
  "%ff",
  "../../etc/passwd",
  "' OR 1=1 --",
  "<script>alert(1)</script>",
  "__proto__",
  "constructor",
  "NaN",
  "Infinity",
  "-0",
  "1e400",
  "0x10",
  "0001-01-01T00:00:00Z",
  "9999-12-31T23:59:59.999Z",
  "+275760-09-13T00:00:00Z",
  "-000001-01-01T00:00:00Z",
  "1969-12-31T23:59:59Z",
  "2025-02-30T00:00:00Z",
  "2025-06-15",
  "2025-06-15T12:00:00",
  "Mg==",
  "America/New_York",
  "Not/AZone",
  "USD",
];

const HOSTILE_NUMBERS: unknown[] = [
  0,
  1,
  -1,
  0.5,
  1e-9,
  1e-10,
  5e-324,
  1e308,
  -1e308,
  2 ** 53 + 1,
  1e21,
  1000,
  1001,
  1_000_000,
  1_000_001,
  new Raw("-0"),
  new Raw("-0.0"),
  new Raw("1e400"),
  new Raw("-1e400"),
  new Raw("1e-400"),
  new Raw("123456789012345678901234567890"),
  new Raw("0.0000000000000000000000000001"),
  new Raw("1E+2"),
  new Raw("1".repeat(400)),
];

const TIMESTAMPS = [
  "0001-01-01T00:00:00Z",
  "9999-12-31T23:59:59Z",
  "1970-01-01T00:00:00Z",
  "1969-12-31T23:59:59Z",
  "2025-06-15T12:00:00+05:30",
  "2025-03-30T02:30:00+01:00",
  new Date().toISOString(),
  new Date(Date.now() + 2 * 86_400_000).toISOString(),
  new Date(Date.now() - 3_600_000).toISOString(),
];

const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: "binary" }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);
const anyLeaf: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.constantFrom(...HOSTILE_NUMBERS),
  fc.constantFrom(true, false, null),
  fc.constant([]),
  fc.constant({}),
);

type Schema = Record<string, unknown>;

/** A value for `schema`: mostly well-formed (so the handlers run), often hostile at the leaves. */
function valueFor(schema: Schema | undefined, depth = 0, hints: Hints = HINTS_NONE): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return anyLeaf;
  const variants = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (variants) return fc.oneof(...variants.map((s) => valueFor(s, depth, hints)), anyLeaf);
  const types = ([] as unknown[]).concat(schema.type ?? []).map(String);
  const options: fc.Arbitrary<unknown>[] = [];
  if (Array.isArray(schema.enum)) options.push(fc.constantFrom(...schema.enum));
  for (const t of types) {
    if (t === "object") {
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const required = (schema.required ?? []) as string[];
      const record = fc.record(
        Object.fromEntries(Object.entries(props).map(([k, s]) => [k, fieldValue(k, s, depth, hints)])),
        { requiredKeys: required.filter((k) => k in props) },
      );
      options.push(
        record,
        record.map((r) => ({ ...r, unknown_field: 1 })),
      );
    } else if (t === "array") {
      options.push(fc.array(valueFor(schema.items as Schema, depth + 1, hints), { maxLength: 3 }));
    } else if (t === "string") {
      options.push(
        schema.format === "date-time" ? fc.constantFrom(...TIMESTAMPS) : fc.string({ maxLength: 30 }),
      );
    } else if (t === "integer" || t === "number") {
      options.push(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(...HOSTILE_NUMBERS));
    } else if (t === "boolean") {
      options.push(fc.boolean());
    }
  }
  options.push(anyLeaf);
  return fc.oneof(...options);
}

/** Fields whose good values are known ids and times of the world: used half of the time. */
interface Hints {
  ids: Record<string, string[]>;
}
const HINTS_NONE: Hints = { ids: {} };

function fieldValue(name: string, schema: Schema, depth: number, hints: Hints): fc.Arbitrary<unknown> {
  const known = hints.ids[name];
  const generated = valueFor(schema, depth + 1, hints);
  if (name === "timestamp" || name.endsWith("_at") || name === "effective_from")
    return fc.oneof(fc.constantFrom(...TIMESTAMPS), generated);
  if (known?.length) return fc.oneof(fc.constantFrom(...known), generated);
  return generated;
}

/** A whole body no schema describes, and why the contract requires a refusal (4xx) of it, if it does. */
interface RawBody {
  bytes: Buffer;
  refuse: string | null;
}

const utf8 = (s: string) => Buffer.from(s, "utf8");
const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? utf8(p) : Buffer.from(p))));
const EVENT_TAIL = '","model_id":"flux-1-dev","quantity":1}';

const RAW_BODIES: RawBody[] = [
  { bytes: utf8(deepArray), refuse: "10,000-deep JSON" },
  { bytes: utf8(deepObject), refuse: "10,000-deep JSON" },
  {
    bytes: utf8(`{"id":"deep","model_id":"flux-1-dev","quantity":1,"metadata":${deepObject}}`),
    refuse: "10,000-deep JSON",
  },
  { bytes: utf8(`{"events":[${deepArray}]}`), refuse: "10,000-deep JSON" },
  // invalid UTF-8: a lone continuation byte, an overlong '/', a truncated sequence, an encoded surrogate
  { bytes: bytes('{"id":"u-', [0xff, 0xfe], EVENT_TAIL), refuse: "invalid UTF-8" },
  { bytes: bytes('{"id":"u-', [0xc0, 0xaf], EVENT_TAIL), refuse: "invalid UTF-8" },
  { bytes: bytes('{"id":"u-', [0xe2, 0x82], EVENT_TAIL), refuse: "invalid UTF-8" },
  { bytes: bytes('{"id":"u-', [0xed, 0xa0, 0x80], EVENT_TAIL), refuse: "invalid UTF-8" },
  {
    bytes: bytes('{"api_name":"flux-1-dev","endpoint":"/', [0x80], '","units_used":1,"cost_usd":1}'),
    refuse: "invalid UTF-8",
  },
  { bytes: utf8(`{"id":"s-\\ud800x${EVENT_TAIL}`), refuse: "a lone surrogate" },
  { bytes: utf8(`{"id":"s-\\udc00${EVENT_TAIL}`), refuse: "a lone surrogate" },
  { bytes: utf8('{"number_of_generations":1,"name":"\\ud800"}'), refuse: "a lone surrogate" },
  { bytes: utf8('{"id":"a","id":"b","model_id":"flux-1-dev","quantity":1}'), refuse: null },
  { bytes: utf8('{"__proto__":{"admin":true},"name":"p"}'), refuse: null },
  { bytes: utf8('{"constructor":{"prototype":{"x":1}}}'), refuse: null },
  { bytes: utf8(`{"quantity":${"9".repeat(5000)}}`), refuse: null },
  { bytes: utf8(`{"name":"${"n".repeat(2 * 1024 * 1024)}"}`), refuse: null },
  ...["null", "", "[]", '"just a string"', "1e400", "{", "{}}", "\ufeff{}", "{}"].map((t) => ({
    bytes: utf8(t),
    refuse: null,
  })),
];

/** A path or query value as a URL carries it; a lone surrogate goes out as the bytes of its CESU-8 form. */
function urlEncode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...s]
      .map((ch) => {
        const c = ch.charCodeAt(0);
        if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff) {
          return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
            .map((b) => `%${b.toString(16).toUpperCase()}`)
            .join("");
        }
        return encodeURIComponent(ch);
      })
      .join("");
  }
}

interface Operation {
  method: string;
  path: string;
  parameters: { in: string; name: string; required?: boolean; schema?: Schema }[];
  body: Schema | null;
}

interface FuzzRequest {
  path: string;
  query: string;
  headers: Record<string, string>;
  body: Buffer | null;
  /** why the contract requires a 4xx, when it does */
  refuse: string | null;
  label: string;
  [fc.toStringMethod]: () => string;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a generated body must be refused: a string in it that is not well-formed Unicode. */
function refusalOf(value: unknown): string | null {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? "a lone surrogate" : null;
  if (value instanceof Raw || value === null || typeof value !== "object") return null;
  for (const [k, v] of Object.entries(value)) {
    const why = refusalOf(k) ?? refusalOf(v);
    if (why) return why;
  }
  return null;
}

function requestsFor(op: Operation, keys: string[], hints: Hints): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.parameters.filter((p) => p.in === "path");
  const queryParams = op.parameters.filter((p) => p.in === "query");
  const headerParams = op.parameters.filter((p) => p.in === "header");
  const segment = (name: string): fc.Arbitrary<string> => {
    const known = hints.ids[name] ?? [];
    return fc
      .oneof(
        { weight: 3, arbitrary: known.length ? fc.constantFrom(...known) : fc.constant("nope") },
        { weight: 2, arbitrary: hostileString.filter((s) => s.length > 0) },
        { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "%ff%fe", "..", "%2e%2e", "a%2Fb") },
      )
      .map((s) => (/^%|^\.\.$|%2/.test(s) && !known.includes(s) ? s : urlEncode(s)));
  };
  const queryValue = (p: Operation["parameters"][number]): fc.Arbitrary<string> => {
    const v = valueFor(p.schema, 0, hints).map((x) =>
      x instanceof Raw ? x.text : typeof x === "string" ? x : toJson(x),
    );
    const known = hints.ids[p.name];
    return known?.length ? fc.oneof(fc.constantFrom(...known), v) : v;
  };
  const key = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...keys) },
    { weight: 1, arbitrary: fc.constantFrom("", "tk_garbage", "\u00ff".repeat(300)) },
  );
  const auth = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("bearer", "key", "x-key") },
    { weight: 1, arbitrary: fc.constant("none") },
  );
  const contentType = fc.constantFrom(
    "application/json",
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin1",
    "text/plain",
    "application/x-www-form-urlencoded",
  );
  const raw = fc.constantFrom(...RAW_BODIES);
  const bodyJson: fc.Arbitrary<RawBody> | null = op.body
    ? valueFor(op.body, 0, hints).map((v) => ({
        bytes: Buffer.from(toJson(v), "utf8"),
        refuse: refusalOf(v),
      }))
    : null;
  const body: fc.Arbitrary<RawBody | null> =
    op.method === "GET" || op.method === "HEAD"
      ? fc.constant(null)
      : bodyJson
        ? fc.oneof({ weight: 3, arbitrary: bodyJson }, { weight: 1, arbitrary: raw })
        : fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: raw });
  return fc
    .record({
      segments: fc.tuple(...pathParams.map((p) => segment(p.name)), fc.constant("")),
      query: fc.tuple(
        ...queryParams.map((p) => fc.option(queryValue(p), { nil: undefined })),
        fc.constant(undefined),
      ),
      extraQuery: fc.option(fc.constantFrom("limit=1&limit=2", "unknown=1", "a[b]=1", "%zz=1"), {
        nil: undefined,
      }),
      headerValues: fc.tuple(
        ...headerParams.map(() =>
          fc.option(fc.constantFrom("k1", "x".repeat(201), "", " "), { nil: undefined }),
        ),
        fc.constant(undefined),
      ),
      key,
      auth,
      contentType,
      body,
    })
    .map((r): FuzzRequest => {
      let path = op.path;
      pathParams.forEach((p, i) => {
        path = path.replace(`{${p.name}}`, r.segments[i]);
      });
      const query = [
        ...queryParams.flatMap((p, i) =>
          r.query[i] === undefined ? [] : [`${p.name}=${urlEncode(r.query[i]!)}`],
        ),
        ...(r.extraQuery ? [r.extraQuery] : []),
      ].join("&");
      const headers: Record<string, string> = {};
      if (r.auth === "bearer") headers.authorization = `Bearer ${r.key}`;
      if (r.auth === "key") headers.authorization = `Key ${r.key}`;
      if (r.auth === "x-key") headers["x-key"] = r.key;
      headerParams.forEach((p, i) => {
        const v = r.headerValues[i];
        if (v !== undefined) headers[p.name] = v;
      });
      if (r.body) headers["content-type"] = r.contentType;
      const bodyText = r.body ? r.body.bytes.subarray(0, 120).toString("latin1") : "";
      const label = `${op.method} ${path.slice(0, 120)}${query ? `?${query.slice(0, 120)}` : ""} ${r.auth} ${bodyText}`;
      // a counterexample prints as this line, not as every byte of a 10,000-deep body
      return {
        path,
        query,
        headers,
        body: r.body?.bytes ?? null,
        refuse: r.body?.refuse ?? null,
        label,
        [fc.toStringMethod]: () => label,
      };
    });
}

/**
 * Every body the contract says to refuse, sent to every route that takes a body on every run (as
 * fast-check examples, before the generated requests), with the root key and an admin's key.
 */
function examplesFor(op: Operation, keys: string[], hints: Hints): FuzzRequest[] {
  if (op.method === "GET" || op.method === "HEAD") return [];
  let path = op.path;
  for (const p of op.parameters.filter((x) => x.in === "path")) {
    path = path.replace(`{${p.name}}`, urlEncode(hints.ids[p.name]?.[0] ?? "nope"));
  }
  return RAW_BODIES.filter((b) => b.refuse).flatMap((b) =>
    keys.map((key) => {
      const label = `${op.method} ${path} (${b.refuse}) ${b.bytes.subarray(0, 60).toString("latin1")}`;
      return {
        path,
        query: "",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: b.bytes,
        refuse: b.refuse,
        label,
        [fc.toStringMethod]: () => label,
      };
    }),
  );
}

/** Routes that may write usage events: a refusal must add none. */
const EVENT_WRITERS = new Set([
  "POST /v1/events",
  "POST /usage",
  "POST /v1/licenses/models/{model_slug}/usage",
]);

describe.runIf(RELIABILITY).each(storeKinds())("every route of /openapi.json, fuzzed ($name)", (kind) => {
  let h: Harness;
  let w: World;
  let base: string;
  const ops: Operation[] = [];
  let hints: Hints;
  const seen = new Map<string, number>();

  beforeAll(async () => {
    console.log(`[fuzz] ${kind.name}: seed ${SEED} (FC_SEED=${SEED} replays it)`);
    h = await createHarness(kind, { realClock: true });
    w = await buildWorld(h);
    base = await h.app.listen({ port: 0, host: "127.0.0.1" });
    const post = async (url: string, payload: object, key = ROOT_KEY) => {
      const res = await h.request({ method: "POST", url, payload, key });
      expect(res.statusCode, `${url}: ${res.body}`).toBeLessThan(300);
      return res.json();
    };
    await post("/v1/plans", {
      id: "fuzz-plan",
      requests_per_minute: 100_000,
      requests_per_day: null,
      validity_days: 30,
    });
    await post(`/v1/accounts/${w.account.id}/subscriptions`, { plan_id: "fuzz-plan" });
    await post(`/v1/accounts/${w.account.id}/licenses`, { model_id: "flux-1-dev" });
    const record = await post(
      "/usage",
      { api_name: "flux-1-dev", endpoint: "/x", units_used: 1, cost_usd: "0.1" },
      w.admin.key,
    );
    const ev = await post(
      "/v1/events",
      { id: "seed-event", model_id: "gpt-mini", quantity: 10 },
      w.member.key,
    );
    expect(ev.accepted).toBe(1);
    hints = {
      ids: {
        id: [w.account.id, w.admin.id, w.member.id, w.admin.keyId, w.other.accountId],
        account_id: [w.account.id, w.other.accountId],
        user_id: [w.member.id, w.admin.id],
        usage_id: [String(record.usage_id), ev.results[0].usage_id],
        model_id: ["flux-1-dev", "gpt-mini", "tts-1"],
        model_slug: ["flux-1-dev", "gpt-mini"],
        plan_id: ["fuzz-plan"],
        endpoint_id: ["flux-1-dev", "gpt-mini"],
        section: ["account_information", "rate_limits_and_restrictions,usage_statistics", "nope"],
        timezone: ["UTC", "Asia/Kolkata", "America/New_York", "Etc/GMT+14"],
        expand: ["summary", "time_series", "auth_method"],
        cursor: ["Mg==", "AAAA", "-1"],
      },
    };
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      paths: Record<string, Record<string, { parameters?: Operation["parameters"]; requestBody?: unknown }>>;
    };
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
        const content = (op.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)
          ?.content;
        ops.push({
          method: method.toUpperCase(),
          path,
          parameters: op.parameters ?? [],
          body: content?.["application/json"]?.schema ?? null,
        });
      }
    }
    expect(ops.length, "the document lists the routes").toBeGreaterThan(15);
  });
  afterAll(async () => {
    await h?.close();
  });

  const eventCount = async () => {
    let n = 0;
    for (const accountId of [w.account.id, w.other.accountId]) {
      n += (await h.services.store.listEvents({ accountId, skip: 0, limit: 1_000_000 })).length;
    }
    return n;
  };

  it("answers every generated request of every route in time and without a 5xx", async () => {
    const keys = [ROOT_KEY, w.admin.key, w.member.key, w.other.admin.key];
    const failures: string[] = [];
    for (const op of ops) {
      const writer = EVENT_WRITERS.has(`${op.method} ${op.path}`);
      const failure = await fc
        .assert(
          fc.asyncProperty(requestsFor(op, keys, hints), async (req) => {
            const before = writer ? await eventCount() : 0;
            const started = performance.now();
            let status: number;
            let text: string;
            try {
              const res = await fetch(`${base}${req.path}${req.query ? `?${req.query}` : ""}`, {
                method: op.method,
                headers: req.headers,
                body: req.body ?? undefined,
                signal: AbortSignal.timeout(MAX_ANSWER_MS * 3),
              });
              status = res.status;
              text = await res.text();
            } catch (err) {
              throw new Error(`${req.label}: no answer (${err})`);
            }
            const ms = performance.now() - started;
            seen.set(
              `${op.method} ${op.path} ${status}`,
              (seen.get(`${op.method} ${op.path} ${status}`) ?? 0) + 1,
            );
            expect(status, `${req.label} -> ${text.slice(0, 300)}`).toBeLessThan(500);
            expect(ms, `${req.label}: answered in ${Math.round(ms)} ms`).toBeLessThan(MAX_ANSWER_MS);
            if (req.refuse)
              expect(status, `${req.label} carries ${req.refuse}: must be refused`).toBeGreaterThanOrEqual(
                400,
              );
            if (writer) {
              const added = (await eventCount()) - before;
              if (status >= 300)
                expect(added, `${req.label} was refused (${status}) yet wrote events`).toBe(0);
              else if (op.path === "/v1/events")
                expect(added, `${req.label}: events added`).toBe(JSON.parse(text).accepted);
            }
          }),
          {
            numRuns: RUNS,
            seed: SEED,
            examples: examplesFor(op, [ROOT_KEY, w.admin.key], hints).map((r) => [r] as [FuzzRequest]),
          },
        )
        .then(
          () => null,
          (err: Error) =>
            `${op.method} ${op.path}: ${err.message.split("\n").slice(0, 3).join(" ")}\n  ${String((err.cause as Error | undefined)?.message ?? "").slice(0, 600)}`,
        );
      if (failure) failures.push(failure);
    }
    expect(failures, `seed ${SEED} (FC_SEED=${SEED} replays this run)`).toEqual([]);
    expect(await h.services.store.verifyRollups(), "rollups equal the raw events after the fuzzing").toEqual(
      [],
    );
    const statuses = [...seen.entries()].map(([k, n]) => `${k} x${n}`);
    console.log(
      `[fuzz] ${kind.name}: ${ops.length} routes x ${RUNS} requests; answers (route status xcount, the first examples included): ${statuses.join(", ")}`,
    );
  });

  it("still serves ordinary requests afterwards", async () => {
    const res = await h.request({ method: "GET", url: "/healthz" });
    expectStatus(res, 200);
  });
});
