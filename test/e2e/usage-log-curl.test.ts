import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, REPO_ROOT, type ServerProcess, startServer } from "../support/server-process.ts";
import { storeKinds, type TestStore } from "../support/stores.ts";

const run = promisify(execFile);

/**
 * The seed's own examples (seeds/001), word for word, run against a real server process. Only the
 * placeholders are filled in: the host, `<token>`/`<admin_token>`/`<admin_or_user_token>`,
 * `uuid123` and `usage-uuid`.
 */
const SEED_CURL = {
  post: `curl -X POST https://api.yourdomain.com/usage \\
  -H "Authorization: Bearer <token>" \\
  -H "Content-Type: application/json" \\
  -d '{
    "api_name": "llm_query",
    "endpoint": "/chat",
    "units_used": 346,
    "cost_usd": 0.0043,
    "api_key_used": "pk_live_abc123"
  }'`,
  list: `curl "https://api.yourdomain.com/usage?skip=0&limit=50" \\
  -H "Authorization: Bearer <token>"`,
  byUser: `curl https://api.yourdomain.com/usage/user/uuid123 \\
  -H "Authorization: Bearer <admin_or_user_token>"`,
  byId: `curl https://api.yourdomain.com/usage/usage-uuid \\
  -H "Authorization: Bearer <token>"`,
  put: `curl -X PUT https://api.yourdomain.com/usage/usage-uuid \\
  -H "Authorization: Bearer <admin_token>" \\
  -H "Content-Type: application/json" \\
  -d '{
    "units_used": 0,
    "cost_usd": 0.00
  }'`,
  delete: `curl -X DELETE https://api.yourdomain.com/usage/usage-uuid \\
  -H "Authorization: Bearer <admin_token>"`,
};

const SEED_FETCH = `await fetch("https://api.yourdomain.com/usage", {
  method: "POST",
  headers: {
    Authorization: "Bearer " + token,
    "Content-Type": "application/json"
  },
  body: JSON.stringify({
    api_name: "llm_query",
    endpoint: "/chat",
    units_used: 346,
    cost_usd: 0.0043,
    api_key_used: "pk_live_abc123"
  })
});`;

describe.each(storeKinds())("the seed's usage-log examples against a real server ($name)", (kind) => {
  let testStore: TestStore | null = null;
  let server: ServerProcess;
  let adminKey: string;
  let memberKey: string;
  let memberId: string;

  const root = (method: string, path: string, body?: unknown) =>
    call(server, method, path, { key: server.adminKey, body });

  /** Runs one seed command with its placeholders filled in; answers the body and the status code. */
  async function curl(
    command: string,
    fill: Record<string, string>,
  ): Promise<{ status: number; body: unknown; text: string }> {
    let script = command.replace("https://api.yourdomain.com", server.url);
    for (const [placeholder, value] of Object.entries(fill)) script = script.replaceAll(placeholder, value);
    // -sS and the status line are ours: the seed's command is otherwise unchanged
    const { stdout } = await run("bash", ["-c", `${script} -sS -w '\\n%{http_code}'`], { timeout: 30_000 });
    const cut = stdout.lastIndexOf("\n");
    const text = stdout.slice(0, cut);
    return { status: Number(stdout.slice(cut + 1)), body: text ? JSON.parse(text) : null, text };
  }

  async function tallyVerify(): Promise<string> {
    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    delete env.DATABASE_URL;
    delete env.TALLY_DB;
    Object.assign(env, testStore ? testStore.env : { TALLY_DB: server.dbPath! });
    const { stdout } = await run(process.execPath, ["bin/tally.mjs", "verify"], {
      cwd: REPO_ROOT,
      env,
      timeout: 60_000,
    });
    return stdout;
  }

  beforeAll(async () => {
    if (kind.name === "postgres") testStore = await kind.create();
    server = await startServer(testStore ? { env: testStore.env } : {});
    const account = await root("POST", "/v1/accounts", { name: "Voice Co" });
    expect(account.status, account.text).toBe(201);
    const accountId = (account.body as { id: string }).id;
    const key = async (username: string, role: string) => {
      const user = await root("POST", `/v1/accounts/${accountId}/users`, { username, role });
      expect(user.status, user.text).toBe(201);
      const userId = (user.body as { id: string }).id;
      const created = await root("POST", `/v1/users/${userId}/keys`, {});
      expect(created.status, created.text).toBe(201);
      return { userId, key: (created.body as { key: string }).key };
    };
    adminKey = (await key("ops", "admin")).key;
    const member = await key("app", "member");
    memberKey = member.key;
    memberId = member.userId;
  });

  afterAll(async () => {
    await server?.cleanup();
    await testStore?.cleanup();
  });

  it("logs, lists, reads, corrects and deletes a record exactly as the seed shows", async () => {
    const posted = await curl(SEED_CURL.post, { "<token>": memberKey });
    expect(posted.status, posted.text).toBe(201);
    const record = posted.body as Record<string, unknown> & { usage_id: string };
    expect(record).toEqual({
      usage_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      user_id: memberId,
      api_name: "llm_query",
      endpoint: "/chat",
      units_used: 346,
      cost_usd: 0.0043,
      api_key_used: "pk_live_abc123",
      status_active: true,
      created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/),
    });
    expect(posted.text).toContain('"cost_usd":0.0043');

    const fetched = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const token = ${JSON.stringify(memberKey)};\nconst res = ${SEED_FETCH.replace("https://api.yourdomain.com", server.url).replace(/;$/, "")};\nconsole.log(res.status, await res.text());`,
      ],
      { timeout: 30_000 },
    );
    expect(fetched.stdout).toMatch(/^201 \{"usage_id":/);
    const second = JSON.parse(fetched.stdout.slice(4)) as { usage_id: string };

    const listed = await curl(SEED_CURL.list, { "<token>": adminKey });
    expect(listed.status, listed.text).toBe(200);
    expect((listed.body as { usage_id: string }[]).map((r) => r.usage_id)).toEqual([
      second.usage_id,
      record.usage_id,
    ]);

    for (const token of [adminKey, memberKey]) {
      const byUser = await curl(SEED_CURL.byUser, { "<admin_or_user_token>": token, uuid123: memberId });
      expect(byUser.status, byUser.text).toBe(200);
      expect(byUser.body).toHaveLength(2);
    }

    const byId = await curl(SEED_CURL.byId, { "<token>": memberKey, "usage-uuid": record.usage_id });
    expect(byId.status, byId.text).toBe(200);
    expect(byId.body).toEqual(record);

    const refused = await curl(SEED_CURL.put, { "<admin_token>": memberKey, "usage-uuid": record.usage_id });
    expect(refused.status, refused.text).toBe(403);

    const put = await curl(SEED_CURL.put, { "<admin_token>": adminKey, "usage-uuid": record.usage_id });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toEqual({ ...record, units_used: 0, cost_usd: 0 });

    const del = await curl(SEED_CURL.delete, { "<admin_token>": adminKey, "usage-uuid": second.usage_id });
    expect(del.status, del.text).toBe(204);
    expect(del.text).toBe("");
    const gone = await curl(SEED_CURL.byId, { "<token>": adminKey, "usage-uuid": second.usage_id });
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual({ detail: "Usage record not found" });

    const audit = await call(server, "GET", "/v1/audit", { key: adminKey });
    expect(audit.status, audit.text).toBe(200);
    const entries = (audit.body as { data: { action: string; usage_id: string }[] }).data;
    expect(entries.map((a) => [a.action, a.usage_id])).toEqual([
      ["delete", second.usage_id],
      ["update", record.usage_id],
    ]);

    expect(await tallyVerify()).toContain("rollups match the raw events");

    const anonymous = await curl(SEED_CURL.list, {
      "Authorization: Bearer <token>": "Accept: application/json",
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual({ detail: "Not authenticated" });
  });
});
