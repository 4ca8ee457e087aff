import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENTS_BODY_LIMIT } from "../../src/domain/constants.ts";
import { sendA4fError } from "../../src/http/a4f/errors.ts";
import { sendNativeError } from "../../src/http/errors.ts";
import { sendFalError } from "../../src/http/fal/errors.ts";
import { sendFastApiError } from "../../src/http/fastapi-errors.ts";
import { SURFACES, surfaceOf } from "../../src/http/surfaces.ts";
import { createHarness, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";
import { buildWorld, createUserWithKey } from "../support/world.ts";

/**
 * The shared route contract: every route listed in /openapi.json, whatever its surface, refuses
 * missing, wrong and revoked keys, NUL characters and malformed JSON in its surface's error
 * format, and every answer (Fastify's own 404, 413 and 414 included) carries x-request-id. The
 * routes come from the document, so a route added later is covered without a line here.
 */

type Body = Record<string, unknown>;
/** Each surface's error format, keyed by the mapper the app routes its errors through. */
const FORMATS = new Map<unknown, { name: string; check: (body: Body, requestId: string) => void }>([
  [
    sendNativeError,
    {
      name: "native",
      check: (b, id) =>
        expect(b).toMatchObject({
          error: { code: expect.any(String), message: expect.any(String), request_id: id },
        }),
    },
  ],
  [
    sendFastApiError,
    {
      name: "FastAPI",
      check: (b) => {
        expect(Object.keys(b)).toEqual(["detail"]);
        expect(typeof b.detail === "string" || Array.isArray(b.detail), JSON.stringify(b)).toBe(true);
      },
    },
  ],
  [
    sendFalError,
    {
      name: "fal",
      check: (b, id) =>
        expect(b).toEqual({
          error: { type: expect.any(String), message: expect.any(String), request_id: id },
        }),
    },
  ],
  [
    sendA4fError,
    {
      name: "a4f",
      check: (b, id) => {
        expect(b).toMatchObject({
          error: { message: expect.any(String), type: expect.any(String), request_id: id },
        });
        expect(b.error).toHaveProperty("param");
      },
    },
  ],
]);

function formatOf(url: string) {
  const format = FORMATS.get(surfaceOf(url).sendError);
  if (!format) throw new Error(`${url}: a surface with an error format this suite does not know`);
  return format;
}

/** Asserts status, x-request-id and the surface's error format; shows the body on failure. */
function expectError(res: LightMyRequestResponse, url: string, status: number | number[]): Body {
  const statuses = Array.isArray(status) ? status : [status];
  expect(statuses, `${res.statusCode} ${res.body}`).toContain(res.statusCode);
  const requestId = res.headers["x-request-id"];
  expect(requestId, `x-request-id on ${res.statusCode} ${url}`).toEqual(expect.any(String));
  const body = res.json() as Body;
  formatOf(url).check(body, String(requestId));
  return body;
}

interface Operation {
  method: string;
  path: string;
  pathParams: string[];
  public: boolean;
}

/** The routes /openapi.json lists, read once from an app on SQLite. */
async function documentedRoutes(): Promise<{ operations: Operation[]; paths: string[] }> {
  const h = await createHarness(storeKinds()[0]);
  try {
    const doc = (await h.request({ method: "GET", url: "/openapi.json" })).json() as {
      paths: Record<
        string,
        Record<string, { security?: unknown[]; parameters?: { in: string; name: string }[] }>
      >;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        pathParams: (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name),
        // an operation documented with an empty security list takes no key
        public: Array.isArray(op.security) && op.security.length === 0,
      })),
    );
    return { operations, paths: Object.keys(doc.paths) };
  } finally {
    await h.close();
  }
}

const { operations, paths } = await documentedRoutes();
const withBody = (op: Operation) => op.method === "POST" || op.method === "PUT" || op.method === "PATCH";
const urlOf = (op: Operation, value = "probe-id") =>
  op.path.replace(/\{([^}]+)\}/g, () => encodeURIComponent(value));
const label = (op: Operation) => `${op.method} ${op.path}`;

it("/openapi.json lists the routes, /healthz among them", () => {
  expect(paths).toContain("/healthz");
  expect(operations.length).toBeGreaterThan(15);
  for (const s of SURFACES)
    expect(
      paths.some((p) => p.startsWith(s.prefix)),
      s.prefix,
    ).toBe(true);
});

describe.each(storeKinds())("route contract ($name)", (kind) => {
  let h: Harness;
  let revokedKey: string;
  let memberKey: string;

  // nothing below is accepted, so the routes share one world: a refused request writes nothing
  beforeAll(async () => {
    h = await createHarness(kind);
    const w = await buildWorld(h);
    memberKey = w.member.key;
    const revoked = await createUserWithKey(h, w.account.id, "gone", "member");
    const res = await h.request({ method: "DELETE", url: `/v1/keys/${revoked.keyId}`, key: ROOT_KEY });
    expect(res.statusCode).toBe(204);
    revokedKey = revoked.key;
  });
  afterAll(async () => h?.close());

  const keyed = operations.filter((op) => !op.public);

  describe.each(keyed.map((op) => ({ op, name: label(op) })))("$name", ({ op }) => {
    const url = urlOf(op);
    const send = (headers: Record<string, string>, payload?: string) =>
      h.app.inject({
        method: op.method as "GET",
        url,
        headers: payload === undefined ? headers : { "content-type": "application/json", ...headers },
        ...(payload === undefined ? {} : { payload }),
      });

    it("refuses a missing key with 401", async () => {
      expectError(await send({}, withBody(op) ? "{}" : undefined), url, 401);
    });

    it("refuses a wrong key with 401, in every header form", async () => {
      const forms: Record<string, string>[] = [
        { authorization: "Bearer not-a-key" },
        { authorization: "Key not-a-key" },
        { "x-key": "not-a-key" },
      ];
      for (const headers of forms) {
        expectError(await send(headers, withBody(op) ? "{}" : undefined), url, 401);
      }
    });

    it("refuses a revoked key with 401", async () => {
      expectError(await send({ "x-key": revokedKey }, withBody(op) ? "{}" : undefined), url, 401);
    });

    it("refuses a NUL character in the query, naming the field", async () => {
      const res = await h.app.inject({
        method: op.method as "GET",
        url: `${url}?nul_probe=a%00b`,
        headers: { authorization: `Bearer ${ROOT_KEY}` },
        ...(withBody(op) ? { payload: {} } : {}),
      });
      const body = expectError(res, url, [400, 422]);
      expect(JSON.stringify(body)).toContain("nul_probe");
    });

    if (op.pathParams.length > 0) {
      it("refuses a NUL character in a path parameter, naming it", async () => {
        const nulUrl = urlOf(op, "a\u0000b");
        const res = await h.app.inject({
          method: op.method as "GET",
          url: nulUrl,
          headers: { authorization: `Bearer ${ROOT_KEY}` },
          ...(withBody(op) ? { payload: {} } : {}),
        });
        const body = expectError(res, nulUrl, [400, 422]);
        expect(JSON.stringify(body)).toContain(op.pathParams[0]);
      });

      it("answers an over-long path parameter with 414 and x-request-id", async () => {
        const longUrl = urlOf(op, "p".repeat(300));
        expectError(await h.app.inject({ method: op.method as "GET", url: longUrl }), longUrl, 414);
      });
    }

    if (withBody(op)) {
      it("refuses a NUL character in the body, naming the field", async () => {
        const res = await send(
          { authorization: `Bearer ${ROOT_KEY}` },
          JSON.stringify({ nul_probe: "a\u0000b" }),
        );
        const body = expectError(res, url, [400, 422]);
        expect(JSON.stringify(body)).toContain("nul_probe");
      });

      it("refuses malformed JSON with a 4xx in the surface's format", async () => {
        const res = await send({ authorization: `Bearer ${ROOT_KEY}` }, '{"a": ');
        expectError(res, url, [400, 422]);
      });

      it("refuses a body over the route's limit with 413 and x-request-id", async () => {
        const payload = `{"a":"${"x".repeat(EVENTS_BODY_LIMIT)}"}`;
        expectError(await send({ authorization: `Bearer ${ROOT_KEY}` }, payload), url, 413);
      });
    }
  });

  it("a member key is refused or scoped, never answered with another account's data (smoke)", async () => {
    // the per-surface security tests say what each role sees; here only that no route 5xxs for a member
    for (const op of keyed.filter((o) => o.method === "GET")) {
      const res = await h.app.inject({ method: "GET", url: urlOf(op), headers: { "x-key": memberKey } });
      expect(res.statusCode, `${label(op)}: ${res.body}`).toBeLessThan(500);
      expect(res.headers["x-request-id"]).toEqual(expect.any(String));
    }
  });

  describe("unknown routes answer 404 in the format of the prefix they fall under", () => {
    const prefixes = ["/v1", ...SURFACES.map((s) => s.prefix)];
    for (const prefix of prefixes) {
      it(`${prefix}/…`, async () => {
        const url = `${prefix}/no-such-route/at-all`;
        for (const method of ["GET", "POST"] as const) {
          const res = await h.app.inject({ method, url, headers: { authorization: `Bearer ${ROOT_KEY}` } });
          expectError(res, url, 404);
        }
      });
    }
    it("outside every prefix", async () => {
      expectError(await h.app.inject({ method: "GET", url: "/no-such-route" }), "/no-such-route", 404);
    });
  });

  it("/healthz answers without a key, with x-request-id", async () => {
    const res = await h.app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-request-id"]).toEqual(expect.any(String));
    expect(res.json()).toEqual({ status: "ok", store: expect.any(String) });
  });
});
