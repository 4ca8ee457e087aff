import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";
import { tally } from "../support/tally-process.ts";
import { createWorld, storedUsage } from "./support.ts";

/** The `tally` CLI against a real server process, run as a person or a script would run it. */

describe("tally CLI against a running server", { timeout: 240_000 }, () => {
  let server: ServerProcess;
  let dir: string;
  let asRoot: Record<string, string>;

  beforeAll(async () => {
    server = await startServer({ timeoutMs: 120_000 });
    dir = mkdtempSync(join(tmpdir(), "tally-cli-remote-"));
    asRoot = { TALLY_URL: server.url, TALLY_KEY: server.adminKey };
  }, 150_000);
  afterAll(async () => {
    await server?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("sets up an account end to end; the key's secret is shown once; a revoked key is refused", async () => {
    const json = async (args: string[]) => {
      const r = await tally([...args, "--json"], asRoot);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const account = await json(["accounts", "create", "--name", "Acme CLI"]);
    expect(account).toMatchObject({ name: "Acme CLI", is_enabled: true });
    const user = await json([
      "users",
      "create",
      "--account",
      String(account.id),
      "--username",
      "ops",
      "--role",
      "admin",
    ]);
    expect(user).toMatchObject({ account_id: account.id, username: "ops", role: "admin" });

    // for people: a record, then the secret once
    const created = await tally(["keys", "create", "--user", String(user.id), "--label", "CI"], asRoot);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/label\s+CI/);
    const secret = /Secret \(shown once, store it safely\):\n(\S+)\n$/.exec(created.stdout)?.[1] ?? "";
    expect(secret).toMatch(/^tly_/);
    expect(created.stdout.split(secret).length).toBe(2);
    const keyId = /^id\s+(\S+)$/m.exec(created.stdout)?.[1];

    const model = await json([
      "models",
      "upsert",
      "--id",
      "cli-model",
      "--unit",
      "image",
      "--kind",
      "image",
      "--unit-price",
      "0.0043",
      "--effective-from",
      "2020-01-01T00:00:00Z",
    ]);
    expect(model).toMatchObject({ id: "cli-model", unit_price: 0.0043, currency: "USD" });
    const listed = await json(["models", "list"]);
    expect((listed as unknown as { id: string }[]).map((m) => m.id)).toContain("cli-model");
    const people = await tally(["models", "list"], asRoot);
    expect(people.stdout).toMatch(/^ID\s+UNIT\s+KIND/);
    expect(people.stdout).toMatch(/cli-model\s+image\s+image\s+true\s+0\.0043\s+USD/);

    const plan = await json([
      "plans",
      "upsert",
      "--id",
      "cli-pro",
      "--rpm",
      "600",
      "--rpd",
      "unlimited",
      "--allow",
      "cli-model",
    ]);
    expect(plan).toMatchObject({
      id: "cli-pro",
      requests_per_minute: 600,
      requests_per_day: null,
      model_whitelist: ["cli-model"],
    });
    const sub = await json(["subscriptions", "create", "--account", String(account.id), "--plan", "cli-pro"]);
    expect(sub).toMatchObject({ account_id: account.id, plan_id: "cli-pro" });
    const license = await json([
      "licenses",
      "create",
      "--account",
      String(account.id),
      "--model",
      "cli-model",
    ]);
    expect(license).toMatchObject({ account_id: account.id, model_id: "cli-model", ends_at: null });
    const payment = await json(["payments", "create", "--account", String(account.id), "--amount", "49.90"]);
    expect(payment).toMatchObject({ amount_usd: 49.9 });

    const before = await call(server, "GET", "/v1/usage?section=account_information", { key: secret });
    expect(before.status).toBe(200);
    const revoked = await tally(["keys", "revoke", String(keyId)], asRoot);
    expect(revoked.code, revoked.stderr).toBe(0);
    const after = await call(server, "GET", "/v1/usage?section=account_information", { key: secret });
    expect(after.status).toBe(401);
  });

  it("exit codes: 2 for a usage error (nothing sent), 1 when the server refuses or cannot be reached", async () => {
    const noUrl = await tally(["accounts", "create", "--name", "x"], { TALLY_KEY: "k" });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain("--url");
    const missing = await tally(["accounts", "create"], asRoot);
    expect(missing.code).toBe(2);
    const badRole = await tally(
      ["users", "create", "--account", "a", "--username", "u", "--role", "boss"],
      asRoot,
    );
    expect(badRole.code).toBe(2);
    const badZone = await tally(["usage", "--timezone", "Mars/Olympus"], asRoot);
    expect(badZone.code).toBe(2);
    const unknownCommand = await tally(["acounts"], asRoot);
    expect(unknownCommand.code).toBe(2);

    const refused = await tally(
      ["licenses", "create", "--account", "no-such-account", "--model", "m"],
      asRoot,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^refused \(HTTP 404\): /);
    const badKey = await tally(["accounts", "create", "--name", "x"], {
      TALLY_URL: server.url,
      TALLY_KEY: "nope",
    });
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain("HTTP 401");
    const help = await tally(["events", "send", "--help"], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Examples:");
  });

  it("events send: 100,000 lines report the right counts, and a second run stores nothing twice", async () => {
    const world = await createWorld(server, "cli-events-model");
    const file = join(dir, "events.jsonl");
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const ts = Date.parse("2026-03-01T00:00:00Z") + i * 1000;
      // every other line carries no id: its id is derived from the line; lines 99,990+ repeat one text
      if (i >= 99_990)
        lines.push(
          `{"model_id":"cli-events-model","quantity":"0.001","timestamp":${Date.parse("2026-03-02T00:00:00Z")}}`,
        );
      else if (i % 2 === 0)
        lines.push(
          JSON.stringify({ id: `e-${i}`, model_id: "cli-events-model", quantity: 1, timestamp: ts }),
        );
      else lines.push(`{"model_id":"cli-events-model","quantity":2,"timestamp":${ts}}`);
    }
    writeFileSync(file, `${lines.join("\n")}\n`);
    const env = { TALLY_URL: server.url, TALLY_KEY: world.key };

    const first = await tally(["events", "send", file, "--json"], env);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({
      lines: 100_000,
      accepted: 100_000,
      duplicates: 0,
      rejected: [],
    });
    expect(first.stderr).toContain("sent 100,000 lines: 100,000 accepted, 0 duplicate, 0 rejected");
    // 49,995 x 1 + 49,995 x 2 + 10 x 0.001, exactly
    expect(await storedUsage(server, world.key, world.modelId)).toEqual({
      requests: 100_000,
      quantity: 149_985.01,
    });

    const second = await tally(["events", "send", file], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^lines\s+100,000\naccepted\s+0\nduplicate\s+100,000\nrejected\s+0\n$/);
    expect(await storedUsage(server, world.key, world.modelId)).toEqual({
      requests: 100_000,
      quantity: 149_985.01,
    });
  });

  it("events send: CSV from stdin; rejected lines are named by line number and exit 1", async () => {
    const world = await createWorld(server, "cli-csv-model");
    const env = { TALLY_URL: server.url, TALLY_KEY: world.key };
    const csv = [
      "id,timestamp,model_id,quantity,tokens_prompt",
      "c-1,2026-03-01T10:00:00Z,cli-csv-model,3,12",
      ',2026-03-01T11:00:00Z,cli-csv-model,"1.5",',
      "c-3,2026-03-01T12:00:00Z,no-such-model,1,",
      "c-4,2026-03-01T12:00:00Z,cli-csv-model,1",
      "c-5,2026-03-01T13:00:00Z,cli-csv-model,-2,",
    ].join("\n");
    const first = await tally(["events", "send", "--format", "csv", "--json", "--no-progress"], env, csv);
    expect(first.code).toBe(1);
    const summary = JSON.parse(first.stdout) as {
      lines: number;
      accepted: number;
      rejected: { line: number }[];
    };
    expect(summary.lines).toBe(5);
    expect(summary.accepted).toBe(2);
    expect(summary.rejected.map((r) => r.line)).toEqual([4, 5, 6]);
    expect(first.stderr).toBe("");
    const again = await tally(["events", "send", "-", "--format", "csv"], env, csv);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/accepted\s+0\nduplicate\s+2\nrejected\s+3/);
    expect(again.stdout).toContain("line 4 (id c-3): model_id: unknown model no-such-model\n");
    expect(again.stdout).toContain("line 5: 4 fields, the header has 5\n");
    expect(again.stdout).toContain("line 6 (id c-5): quantity: must not be negative\n");
    expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 2, quantity: 4.5 });

    const badHeader = await tally(["events", "send", "--format", "csv"], env, "id,model,quantity\n1,m,1\n");
    expect(badHeader.code).toBe(2);
  });

  it("a read answered 429 waits out Retry-After and asks again, instead of ending mid-call", async () => {
    // a stub server: the first ask is rate limited, the second answered (before, the process ended
    // during the wait, with exit code 13 and nothing printed: its retry timer kept nothing alive)
    const asked: string[] = [];
    const stub = createServer((req, res) => {
      asked.push(req.url ?? "");
      if (asked.length === 1) {
        res.writeHead(429, { "retry-after": "1", "content-type": "application/json" });
        res.end(JSON.stringify({ error: { type: "rate_limited", message: "Rate limit exceeded" } }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ time_series: [], summary: [], next_cursor: null, has_more: false }));
    });
    await new Promise<void>((r) => stub.listen(0, "127.0.0.1", r));
    try {
      const { port } = stub.address() as { port: number };
      const r = await tally(["usage", "--json"], { TALLY_URL: `http://127.0.0.1:${port}`, TALLY_KEY: "k" });
      expect(r.code, r.stderr).toBe(0);
      expect(asked).toHaveLength(2);
      expect(JSON.parse(r.stdout)).toMatchObject({ rows: [] });
    } finally {
      await new Promise((r) => stub.close(r));
    }
  });

  it("usage: a table by model and day in the chosen timezone, exact totals", async () => {
    const world = await createWorld(server, "cli-usage-model");
    const env = { TALLY_URL: server.url, TALLY_KEY: world.key };
    // 02:30 UTC on 10 March is still 9 March in New York (UTC-5 before the DST change)
    const events = [
      { id: "u1", model_id: "cli-usage-model", quantity: 2, timestamp: "2026-03-10T02:30:00Z" },
      { id: "u2", model_id: "cli-usage-model", quantity: 3, timestamp: "2026-03-10T15:00:00Z" },
    ];
    const res = await call(server, "POST", "/v1/events", { key: world.key, body: { events } });
    expect(res.status, res.text).toBe(200);
    const args = ["usage", "--from", "2026-03-09", "--to", "2026-03-11"];
    const ny = await tally([...args, "--timezone", "America/New_York"], env);
    expect(ny.code, ny.stderr).toBe(0);
    const lines = ny.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^BUCKET\s+MODEL\s+UNIT\s+QUANTITY\s+UNIT_PRICE\s+COST\s+CURRENCY$/);
    expect(lines[1]).toMatch(/^2026-03-09\s+cli-usage-model\s+image\s+2\s+0\.0043\s+0\.0086\s+USD$/);
    expect(lines[2]).toMatch(/^2026-03-10\s+cli-usage-model\s+image\s+3\s+0\.0043\s+0\.0129\s+USD$/);
    expect(ny.stdout).toContain("total 0.0215 USD");
    const utc = await tally([...args, "--timezone", "UTC", "--json"], env);
    expect(utc.code, utc.stderr).toBe(0);
    const body = JSON.parse(utc.stdout) as { rows: { bucket: string; quantity: string }[]; totals: unknown };
    expect(body.rows.map((r) => [r.bucket, r.quantity])).toEqual([["2026-03-10", "5"]]);
    expect(body.totals).toEqual([{ currency: "USD", cost: "0.0215" }]);
  });
});
