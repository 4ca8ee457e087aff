import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.ts";
import { createHarness, expectStatus, type Harness, ROOT_KEY } from "../support/harness.ts";
import { storeKinds } from "../support/stores.ts";

/** The per-request log line: written at debug (and trace), never built at info. */
describe("request log lines", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness(storeKinds()[0]);
  });
  afterEach(async () => h.close());

  const linesAt = async (level: string): Promise<Record<string, unknown>[]> => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const app = await buildApp(h.services, { loggerInstance: logger });
    try {
      expectStatus(
        await app.inject({
          method: "GET",
          url: "/v1/accounts",
          headers: { authorization: `Bearer ${ROOT_KEY}` },
        }),
        200,
      );
    } finally {
      await app.close();
    }
    return lines.filter((l) => l.msg === "request");
  };

  it("one line per request at debug and trace, with method, url, status and time", async () => {
    for (const level of ["debug", "trace"]) {
      const [line, ...more] = await linesAt(level);
      expect(more).toEqual([]);
      expect(line).toMatchObject({ method: "GET", url: "/v1/accounts", status: 200 });
      expect(typeof line.ms).toBe("number");
    }
  });

  it("none at info", async () => {
    expect(await linesAt("info")).toEqual([]);
  });
});
