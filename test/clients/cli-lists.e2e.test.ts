import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";
import { tally } from "../support/tally-process.ts";
import { type ClientWorld, createWorld, faultProxy } from "./support.ts";

/** `tally` lists, reads, changes and invoices against a real server process (issue 19). */

interface Page {
  data: { id: string }[];
  has_more: boolean;
}

describe("tally CLI: lists, reads, changes and invoices", { timeout: 240_000 }, () => {
  let server: ServerProcess;
  let dir: string;
  let asRoot: Record<string, string>;
  /** an account with 120 users besides its admin, made through the API */
  let world: ClientWorld;
  let userIds: string[];

  const root = async (method: string, path: string, body?: unknown) => {
    const res = await call(server, method, path, { key: server.adminKey, body });
    expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
    return res;
  };
  const json = async <T = Record<string, unknown>>(args: string[]) => {
    const r = await tally([...args, "--json"], asRoot);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    server = await startServer({ timeoutMs: 120_000 });
    dir = mkdtempSync(join(tmpdir(), "tally-cli-lists-"));
    asRoot = { TALLY_URL: server.url, TALLY_KEY: server.adminKey };
    world = await createWorld(server, "lists-model");
    for (let i = 0; i < 120; i++) {
      await root("POST", `/v1/accounts/${world.accountId}/users`, { username: `u${i}`, role: "member" });
    }
    const all = (await root("GET", `/v1/accounts/${world.accountId}/users?limit=1000`)).body as Page;
    userIds = all.data.map((u) => u.id);
    expect(userIds).toHaveLength(121);
  }, 150_000);
  afterAll(async () => {
    await server?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("list: a table of one page for people, the server's JSON for scripts, --all over every page", async () => {
    const args = ["users", "list", "--account", world.accountId];
    const people = await tally(args, asRoot);
    expect(people.code, people.stderr).toBe(0);
    const lines = people.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+USERNAME\s+ROLE\s+NODE_ID\s+CREATED_AT$/);
    expect(lines).toHaveLength(51);
    expect(lines[2]).toMatch(new RegExp(`^${userIds[1]}\\s+u0\\s+member\\s+\\d{4}-`));
    expect(people.stderr).toBe(`more: --starting-after ${userIds[49]}, or --all\n`);

    // --json is the server's own answer, byte for byte
    const first = await tally([...args, "--json"], asRoot);
    expect(first.code, first.stderr).toBe(0);
    const server50 = await root("GET", `/v1/accounts/${world.accountId}/users`);
    expect(first.stdout).toBe(`${server50.text}\n`);
    const next = await json<Page>([...args, "--limit", "50", "--starting-after", userIds[49]]);
    expect(next.data.map((u) => u.id)).toEqual(userIds.slice(50, 100));
    expect(next.has_more).toBe(true);

    // --all follows has_more: three requests of 50, 50 and 21, every user once, in creation order
    const proxy = await faultProxy(server.url, () => ({ kind: "pass" }));
    try {
      const viaProxy = { TALLY_URL: proxy.url, TALLY_KEY: server.adminKey };
      const all = await tally([...args, "--all", "--limit", "50", "--json"], viaProxy);
      expect(all.code, all.stderr).toBe(0);
      expect(proxy.bodies).toHaveLength(3);
      const page = JSON.parse(all.stdout) as Page;
      expect(page.has_more).toBe(false);
      expect(page.data.map((u) => u.id)).toEqual(userIds);
      const whole = (await root("GET", `/v1/accounts/${world.accountId}/users?limit=1000`)).body as Page;
      expect(page.data).toEqual(whole.data);
      const table = await tally([...args, "--all", "--limit", "50"], viaProxy);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout.trimEnd().split("\n")).toHaveLength(122);
      expect(table.stderr).toBe("");
    } finally {
      await proxy.close();
    }
  });

  it("get and the changes: update, disable and enable, key rotation with grace, refund, end, audit", async () => {
    const account = await json(["accounts", "get", world.accountId]);
    expect(account).toEqual((await root("GET", `/v1/accounts/${world.accountId}`)).body);
    const record = await tally(["accounts", "get", world.accountId], asRoot);
    expect(record.stdout).toMatch(/^id\s+\S+\nname\s+Client test/);

    const renamed = await json([
      "accounts",
      "update",
      world.accountId,
      "--name",
      "Renamed",
      "--timezone",
      "Europe/Berlin",
    ]);
    expect(renamed).toMatchObject({ name: "Renamed", billing_timezone: "Europe/Berlin", is_enabled: true });
    const disabled = await json(["accounts", "disable", world.accountId]);
    expect(disabled).toMatchObject({ is_enabled: false });
    const refusedKey = await call(server, "GET", "/v1/usage?section=account_information", { key: world.key });
    expect(refusedKey.status).toBe(403);
    expect(await json(["accounts", "enable", world.accountId])).toMatchObject({ is_enabled: true });

    const user = await json(["users", "update", userIds[1], "--role", "admin", "--username", "lead"]);
    expect(user).toMatchObject({ id: userIds[1], role: "admin", username: "lead" });
    expect((await root("GET", `/v1/users/${userIds[1]}`)).body).toMatchObject({ role: "admin" });

    // a rotated key: the new secret shown once; the old one still works during the grace
    const keys = await json<Page>(["keys", "list", "--user", world.userId]);
    expect(keys.data).toHaveLength(1);
    const keyId = keys.data[0].id;
    const rotated = await tally(["keys", "rotate", keyId, "--grace", "600"], asRoot);
    expect(rotated.code, rotated.stderr).toBe(0);
    const secret = /Secret \(shown once, store it safely\):\n(\S+)\n$/.exec(rotated.stdout)?.[1] ?? "";
    expect(secret).toMatch(/^tly_/);
    expect(rotated.stdout).toMatch(/previous_key_expires_at\s+\d{4}-/);
    for (const key of [secret, world.key]) {
      const res = await call(server, "GET", "/v1/usage?section=account_information", { key });
      expect(res.status).toBe(200);
    }
    const byAccount = await tally(["keys", "list", "--account", world.accountId], asRoot);
    expect(byAccount.stdout).toMatch(new RegExp(`^${keyId}\\s+${world.userId}\\s+SDK\\s+tly_`, "m"));
    expect(byAccount.stdout).not.toContain(secret);

    const payment = await json(["payments", "create", "--account", world.accountId, "--amount", "49.90"]);
    const refund = await json([
      "payments",
      "refund",
      String(payment.id),
      "--account",
      world.accountId,
      "--amount",
      "10.00",
    ]);
    expect(refund).toMatchObject({ amount_usd: -10, refund_of: payment.id });
    const payments = await tally(["payments", "list", "--account", world.accountId], asRoot);
    expect(payments.stdout).toMatch(new RegExp(`^${refund.id}\\s+-10\\s+\\S+\\s+${payment.id}$`, "m"));
    expect(await json(["payments", "get", String(refund.id), "--account", world.accountId])).toEqual(refund);

    const licenses = await json<Page>(["licenses", "list", "--account", world.accountId]);
    const ended = await json([
      "licenses",
      "end",
      licenses.data[0].id,
      "--account",
      world.accountId,
      "--at",
      "2030-01-01T00:00:00Z",
    ]);
    expect(ended).toMatchObject({ model_id: "lists-model", ends_at: "2030-01-01T00:00:00.000Z" });
    const reopened = await json([
      "licenses",
      "end",
      licenses.data[0].id,
      "--account",
      world.accountId,
      "--at",
      "never",
    ]);
    expect(reopened).toMatchObject({ ends_at: null });

    await root("POST", "/v1/plans", {
      id: "lists-plan",
      requests_per_minute: 60,
      requests_per_day: null,
      validity_days: -999999,
    });
    const sub = await json(["subscriptions", "create", "--account", world.accountId, "--plan", "lists-plan"]);
    const subEnded = await json(["subscriptions", "end", String(sub.id), "--account", world.accountId]);
    expect(Date.parse(String(subEnded.ends_at))).toBeGreaterThan(Date.now() - 60_000);
    const subs = await tally(["subscriptions", "list", "--account", world.accountId], asRoot);
    expect(subs.stdout).toMatch(new RegExp(`^${sub.id}\\s+lists-plan\\s+\\S+\\s+${subEnded.ends_at}$`, "m"));
    expect(await json(["plans", "get", "lists-plan"])).toMatchObject({
      id: "lists-plan",
      requests_per_minute: 60,
    });
    const plans = await tally(["plans", "list"], asRoot);
    expect(plans.stdout).toMatch(/^lists-plan\s+60\s+-999999\s+0\s+USD$/m);
    expect(await json(["models", "get", "lists-model"])).toMatchObject({ prices: [{ unit_price: 0.0043 }] });
    expect(await json(["keys", "get", keyId])).toMatchObject({ id: keyId, revoked_at: null });

    const audit = await json<{ data: { action: string; resource_id: string }[] }>([
      "audit",
      "list",
      "--account",
      world.accountId,
      "--resource-type",
      "account",
    ]);
    expect(audit.data.length).toBeGreaterThanOrEqual(3);
    expect(audit.data.every((a) => a.resource_id === world.accountId)).toBe(true);
  });

  it("exit codes: 1 with the server's message when it refuses, 2 for a bad flag (nothing sent)", async () => {
    const missing = await tally(["accounts", "update", "no-such-account", "--name", "x"], asRoot);
    expect(missing.code).toBe(1);
    const said = (await call(server, "PATCH", "/v1/accounts/no-such-account", {
      key: server.adminKey,
      body: { name: "x" },
    })) as { body: { error: { message: string } } };
    expect(missing.stderr).toBe(`refused (HTTP 404): ${said.body.error.message}\n`);

    const payment = await json(["payments", "create", "--account", world.accountId, "--amount", "5"]);
    const tooMuch = await tally(
      ["payments", "refund", String(payment.id), "--account", world.accountId, "--amount", "6"],
      asRoot,
    );
    expect(tooMuch.code).toBe(1);
    expect(tooMuch.stderr).toMatch(/^refused \(HTTP 4\d\d\): .+/);

    const proxy = await faultProxy(server.url, () => ({ kind: "pass" }));
    try {
      const viaProxy = { TALLY_URL: proxy.url, TALLY_KEY: server.adminKey };
      for (const args of [
        ["users", "list", "--account", world.accountId, "--bogus"],
        ["users", "list", "--account", world.accountId, "--limit", "0"],
        ["users", "list", "--account", world.accountId, "--limit", "ten"],
        ["users", "list"],
        ["accounts", "update", world.accountId],
        ["accounts", "update", world.accountId, "--billing-mode", "weekly"],
        ["users", "update", userIds[2], "--role", "boss"],
        ["keys", "list"],
        ["keys", "rotate", "k", "--grace", "soon"],
        ["invoices", "pdf", "inv"],
        [
          "alerts",
          "create",
          "--account",
          "a",
          "--metric",
          "cost",
          "--period",
          "month",
          "--basis",
          "budget",
          "--thresholds",
          "half",
        ],
      ]) {
        const r = await tally(args, viaProxy);
        expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      }
      expect(proxy.bodies).toHaveLength(0);
    } finally {
      await proxy.close();
    }

    for (const command of [
      "users list",
      "accounts update",
      "keys rotate",
      "invoices pdf",
      "invoices csv",
      "audit list",
      "webhooks create",
    ]) {
      const help = await tally([...command.split(" "), "--help"], {});
      expect(help.code).toBe(0);
      expect(help.stdout, command).toMatch(/\nExamples?:\n {2}tally /);
    }
  });

  it("invoices: list, get, csv equal to the server's, pdf to a file, upcoming, void; the local close still works", async () => {
    const events = [
      { id: "i1", model_id: "lists-model", quantity: 1000, timestamp: "2026-03-10T12:00:00Z" },
      { id: "i2", model_id: "lists-model", quantity: "500", timestamp: "2026-03-20T12:00:00Z" },
    ];
    const sent = await call(server, "POST", "/v1/events", { key: world.key, body: { events } });
    expect(sent.status, sent.text).toBe(200);
    const closed = (
      await root("POST", "/v1/invoices/close", { period: "2026-03", account_id: world.accountId })
    ).body as { invoices: { id: string; number: string; total: number }[] };
    const invoice = closed.invoices[0];
    expect(invoice.total).toBe(6.45);

    const list = await json<Page>(["invoices", "list", "--account", world.accountId]);
    expect(list.data.map((i) => i.id)).toContain(invoice.id);
    const people = await tally(["invoices", "list", "--account", world.accountId], asRoot);
    expect(people.stdout).toMatch(/^ID\s+NUMBER\s+PERIOD\s+STATUS\s+TOTAL\s+CURRENCY\s+ISSUED_AT$/m);
    expect(people.stdout).toMatch(
      new RegExp(`^${invoice.id}\\s+${invoice.number}\\s+2026-03\\s+finalized\\s+6\\.45\\s+USD`, "m"),
    );

    const got = await tally(["invoices", "get", invoice.id], asRoot);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toMatch(/^status\s+finalized$/m);
    expect(got.stdout).toMatch(/^lists-model\s+.*\s1500\s+1500\s+6\.45$/m);
    expect(got.stdout).toContain("total 6.45 USD");
    expect(await json(["invoices", "get", invoice.id])).toEqual(
      (await root("GET", `/v1/invoices/${invoice.id}`)).body,
    );

    const serverCsv = (await root("GET", `/v1/invoices/${invoice.id}.csv`)).text;
    const csv = await tally(["invoices", "csv", invoice.id], asRoot);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toBe(serverCsv);
    const csvFile = join(dir, "invoice.csv");
    expect((await tally(["invoices", "csv", invoice.id, "--out", csvFile], asRoot)).code).toBe(0);
    expect(readFileSync(csvFile, "utf8")).toBe(serverCsv);

    const pdfFile = join(dir, "invoice.pdf");
    const pdf = await tally(["invoices", "pdf", invoice.id, "--out", pdfFile], asRoot);
    expect(pdf.code, pdf.stderr).toBe(0);
    const bytes = readFileSync(pdfFile);
    expect(bytes.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    const served = await fetch(`${server.url}/v1/invoices/${invoice.id}.pdf`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(Buffer.compare(bytes, Buffer.from(await served.arrayBuffer()))).toBe(0);
    const nopdf = await tally(["invoices", "pdf", "no-such-invoice", "--out", join(dir, "x.pdf")], asRoot);
    expect(nopdf.code).toBe(1);
    expect(nopdf.stderr).toMatch(/^refused \(HTTP 404\): /);

    const upcoming = await json(["invoices", "upcoming", "--account", world.accountId]);
    expect(upcoming).toMatchObject({ status: "draft", account_id: world.accountId });

    // the local close on the same store: idempotent, it answers the invoice the server closed
    const local = await tally(["invoices", "close", "--period", "2026-03", "--account", world.accountId], {
      TALLY_DB: String(server.dbPath),
    });
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toContain(invoice.id);

    const voided = await json(["invoices", "void", invoice.id]);
    expect(voided).toMatchObject({ id: invoice.id, status: "void" });
  });

  it("webhooks and alerts: create (the secret once), list, test, deliveries, delete", async () => {
    const created = await json([
      "webhooks",
      "create",
      "--endpoint",
      "http://127.0.0.1:9/hooks",
      "--events",
      "webhook.test,invoice.finalized",
      "--account",
      world.accountId,
    ]);
    expect(created).toMatchObject({ url: "http://127.0.0.1:9/hooks", account_id: world.accountId });
    expect(String(created.secret)).not.toBe("");
    const id = String(created.id);
    const listed = await tally(["webhooks", "list", "--account", world.accountId], asRoot);
    expect(listed.stdout).toMatch(
      new RegExp(
        `^${id}\\s+${world.accountId}\\s+http://127.0.0.1:9/hooks\\s+webhook.test,invoice.finalized\\s+enabled`,
        "m",
      ),
    );
    expect(listed.stdout).not.toContain(String(created.secret));
    expect(await json(["webhooks", "test", id])).toMatchObject({ type: "webhook.test", endpoint_id: id });
    const deliveries = await json<Page>(["webhooks", "deliveries", id]);
    expect(deliveries.data.length).toBeGreaterThanOrEqual(1);
    expect(await json(["webhooks", "delete", id])).toEqual({ id, deleted: true });
    expect((await tally(["webhooks", "get", id], asRoot)).code).toBe(1);

    const rule = await json([
      "alerts",
      "create",
      "--account",
      world.accountId,
      "--metric",
      "cost",
      "--period",
      "month",
      "--basis",
      "absolute",
      "--value",
      "500",
      "--thresholds",
      "50,80,100",
    ]);
    expect(rule).toMatchObject({ metric: "cost", thresholds: [50, 80, 100], value: 500 });
    const rules = await tally(["alerts", "list", "--account", world.accountId], asRoot);
    expect(rules.stdout).toMatch(new RegExp(`^${rule.id}\\s+cost\\s+month\\s+absolute\\s+50,80,100`, "m"));
    expect((await tally(["alerts", "delete", String(rule.id)], asRoot)).code).toBe(0);
    expect((await json<Page>(["alerts", "list", "--account", world.accountId])).data).toEqual([]);
  });
});
