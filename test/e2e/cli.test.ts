import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseDec } from "../../src/domain/decimal.ts";
import { hashSecret } from "../../src/domain/keys.ts";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.ts";
import type { UsageEvent } from "../../src/store/store.ts";
import { usageEvent } from "../support/events.ts";
import { call, REPO_ROOT, startServer } from "../support/server-process.ts";
import { storeKinds, type TestStore } from "../support/stores.ts";

const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command in the repository with exactly the Tally environment given. */
async function tally(args: string[], env: Record<string, string>, viaNpx = false): Promise<Result> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !["DATABASE_URL", "TALLY_DB", "TALLY_ADMIN_KEY", "REDIS_URL"].includes(k))
      clean[k] = v;
  }
  const [cmd, argv] = viaNpx ? ["npx", ["tally", ...args]] : [process.execPath, ["bin/tally.mjs", ...args]];
  try {
    const { stdout, stderr } = await run(cmd, argv as string[], {
      cwd: REPO_ROOT,
      env: { ...clean, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function event(accountId: string, eventId: string, ts: number): UsageEvent {
  return usageEvent({ accountId, eventId, ts, unitPrice: parseDec("0.0043"), cost: parseDec("0.0043") });
}

describe("tally init and migrate on a fresh SQLite file", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tally-cli-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("`npx tally init` prints a root key once, and never again; the key is the root", async () => {
    const env = { TALLY_DB: join(dir, "data", "tally.db") };
    const first = await tally(["init"], env, true);
    expect(first.code, first.stderr).toBe(0);
    const keys = first.stdout.match(/tly_[0-9A-Za-z]{40}/g) ?? [];
    expect(keys.length).toBe(1);
    const secret = keys[0] ?? "";
    const second = await tally(["init"], env, true);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain("A root key exists already; nothing created.");
    expect(second.stdout).not.toMatch(/tly_/);

    // stored only as its hash
    const db = new Database(env.TALLY_DB, { readonly: true });
    const rows = db.prepare("SELECT * FROM api_keys").all() as Record<string, unknown>[];
    db.close();
    expect(rows.map((r) => [r.is_root, r.hash])).toEqual([[1, hashSecret(secret)]]);
    expect(JSON.stringify(rows)).not.toContain(secret);

    // a server on that file accepts it as the root key (its own TALLY_ADMIN_KEY is another one)
    const server = await startServer({ dbPath: env.TALLY_DB });
    try {
      const res = await call(server, "POST", "/v1/accounts", { key: secret, body: { name: "From init" } });
      expect(res.status, res.text).toBe(201);
    } finally {
      await server.cleanup();
    }
  });

  it("`tally migrate` creates the schema and is idempotent", async () => {
    const env = { TALLY_DB: join(dir, "nested", "t.db") };
    const first = await tally(["migrate"], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim()).toBe("migrations applied (sqlite)");
    expect(existsSync(env.TALLY_DB)).toBe(true);
    const again = await tally(["migrate"], env);
    expect(again.code, again.stderr).toBe(0);
    const db = new Database(env.TALLY_DB, { readonly: true });
    const tables = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    ).map((t) => t.name);
    db.close();
    for (const t of [
      "accounts",
      "users",
      "api_keys",
      "models",
      "model_prices",
      "usage_events",
      "usage_rollups",
      "audit_log",
    ]) {
      expect(tables).toContain(t);
    }
  });
});

describe.each(storeKinds())("tally verify and migrate ($name)", (kind) => {
  let ts: TestStore;
  beforeEach(async () => {
    ts = await kind.create();
  });
  afterEach(async () => ts.cleanup());

  /** Runs SQL on the test store's own database. */
  const sql = async (text: string) => {
    if (kind.name === "postgres") await (ts.store as PostgresStore).pool.query(text);
    else (ts.store as unknown as { db: Database.Database }).db.exec(text);
  };

  it("`tally migrate` works on an existing database", async () => {
    const res = await tally(["migrate"], ts.env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(`migrations applied (${kind.name})`);
  });

  it("`tally verify` exits 0 on a consistent database and 1 after a rollup row is corrupted", async () => {
    const base = Date.parse("2025-06-15T10:00:00Z");
    await ts.store.appendEvents(
      Array.from({ length: 50 }, (_, i) => event("acct", `v${i}`, base + i * 37_000)),
    );
    const ok = await tally(["verify"], ts.env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("rollups match the raw events");

    // one hour row counts a request too many
    await sql(
      `UPDATE usage_rollups SET requests = requests + 1 WHERE level = 2 AND family = 0 AND bucket_start = ${Date.parse("2025-06-15T10:00:00Z")}`,
    );
    const bad = await tally(["verify"], ts.env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("1 rollup rows differ from the raw events");
    expect(bad.stderr).toContain(`acct|0|2|${Date.parse("2025-06-15T10:00:00Z")}|m`);

    // repaired, then a missing row is a difference too
    await sql(
      `UPDATE usage_rollups SET requests = requests - 1 WHERE level = 2 AND family = 0 AND bucket_start = ${Date.parse("2025-06-15T10:00:00Z")}`,
    );
    expect((await tally(["verify"], ts.env)).code).toBe(0);
    await sql(`DELETE FROM usage_rollups WHERE level = 3 AND family = 1`);
    const missing = await tally(["verify"], ts.env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("rollup rows differ");
  });

  it("`tally verify` names a stored rollup row no event explains, and passes one whose sums are zero", async () => {
    const hour = Date.parse("2025-06-15T10:00:00Z");
    const later = Date.parse("2026-06-15T10:00:00Z");
    await ts.store.appendEvents([event("acct", "s1", hour + 1_000)]);
    expect((await tally(["verify"], ts.env)).code).toBe(0);
    const copyHourRow = (bucket: number, requests: number) =>
      sql(
        `INSERT INTO usage_rollups (account_id, series_id, family, level, bucket_start, requests, quantity, cost_nano, cost_atto, tokens_prompt, tokens_completion)
         SELECT account_id, series_id, family, level, ${bucket}, ${requests}, ${requests}, 0, 0, 0, 0 FROM usage_rollups
         WHERE level = 2 AND family = 0 AND bucket_start = ${hour}`,
      );
    // every event of an hour corrected away leaves a row of zeros: not a difference
    await copyHourRow(later, 0);
    expect((await tally(["verify"], ts.env)).code).toBe(0);
    await copyHourRow(later + 3_600_000, 2);
    const extra = await tally(["verify"], ts.env);
    expect(extra.code).toBe(1);
    expect(extra.stderr).toContain("1 rollup rows differ from the raw events");
    expect(extra.stderr).toContain(`acct|0|2|${later + 3_600_000}|m`);
  });
});
