import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ONE } from "../../src/domain/decimal.ts";
import { ALL_TIME, QueryService } from "../../src/query/usage-query.ts";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.ts";
import { call, type ServerProcess, startServer } from "../support/server-process.ts";

/**
 * The seed's own client (seeds/002, "How can I track the amount of images generated?"), run
 * unchanged with python3 and `requests` against a real server process. Only the placeholders are
 * filled in: the URL's host, the key, the slug and the number.
 */
const SEED_SNIPPET = `import requests
# MODEL_SLUG is either: \`flux-1-dev\`, \`flux-1-kontext-dev\` or \`flux-tools\`
url = "https://api.bfl.ai/v1/licenses/models/<MODEL_SLUG>/usage"
headers = {
"x-key": "<YOUR_KEY>",
"Content-Type": "application/json"
}
payload = {
"number_of_generations": <POSITIVE_INTEGER>
}
response = requests.post(url, headers=headers, json=payload)
print(f"Status code: {response.status_code}")
print(f"Response: {response.text}")
`;

const hasPythonRequests = spawnSync("python3", ["-c", "import requests"], { stdio: "ignore" }).status === 0;

describe.skipIf(!hasPythonRequests)("the seed's Python snippet against a real server", () => {
  let server: ServerProcess;
  let dir: string;
  let key: string;
  let accountId: string;

  const root = (method: string, path: string, body?: unknown) =>
    call(server, method, path, { key: server.adminKey, body });

  function runSnippet(slug: string, n: number, secret = key): string {
    const script = SEED_SNIPPET.replace("https://api.bfl.ai", server.url)
      .replace("<MODEL_SLUG>", slug)
      .replace("<YOUR_KEY>", secret)
      .replace("<POSITIVE_INTEGER>", String(n));
    const file = join(dir, `report-${slug}-${n}.py`);
    writeFileSync(file, script);
    return execFileSync("python3", [file], { encoding: "utf8", timeout: 30_000 });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tally-python-"));
    server = await startServer();
    const account = await root("POST", "/v1/accounts", { name: "Licensee" });
    expect(account.status, account.text).toBe(201);
    accountId = (account.body as { id: string }).id;
    const user = await root("POST", `/v1/accounts/${accountId}/users`, { username: "ml-ops", role: "admin" });
    expect(user.status, user.text).toBe(201);
    const created = await root("POST", `/v1/users/${(user.body as { id: string }).id}/keys`, {
      label: "Inference",
    });
    expect(created.status, created.text).toBe(201);
    key = (created.body as { key: string }).key;
    for (const id of ["flux-1-dev", "flux-1-kontext-dev"]) {
      const model = await root("POST", "/v1/models", {
        id,
        unit: "image",
        kind: "image",
        unit_price: "0.025",
        effective_from: "2020-01-01T00:00:00Z",
      });
      expect(model.status, model.text).toBe(201);
    }
    const license = await root("POST", `/v1/accounts/${accountId}/licenses`, {
      model_id: "flux-1-dev",
      starts_at: "2020-01-01T00:00:00Z",
    });
    expect(license.status, license.text).toBe(201);
  });

  afterAll(async () => {
    await server?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("prints status 200 and the success body, and the report is stored durably", async () => {
    expect(runSnippet("flux-1-dev", 3)).toBe(
      'Status code: 200\nResponse: {"message":"Usage recorded successfully"}\n',
    );
    expect(runSnippet("flux-1-dev", 50)).toBe(
      'Status code: 200\nResponse: {"message":"Usage recorded successfully"}\n',
    );

    // stop the server and read the file it wrote: both reports, priced exactly
    expect(await server.stop()).toBe(0);
    const store = new SqliteStore(server.dbPath!);
    try {
      const lines = await new QueryService(store).totals({ accountId, range: ALL_TIME });
      expect(lines.map((l) => [l.modelId, l.kind, l.unit, l.requests, l.quantity, l.cost])).toEqual([
        ["flux-1-dev", "image", "image", 2, 53n * ONE, 1325n * 10n ** 15n],
      ]);
      expect(await store.verifyRollups()).toEqual([]);
    } finally {
      await store.close();
    }
    server = await startServer({ dbPath: server.dbPath!, adminKey: server.adminKey });
  });

  it("prints the seed's 400, 403 and 401 answers", () => {
    expect(runSnippet("example-model", 1)).toBe(
      'Status code: 400\nResponse: {"detail":"Model slug example-model is not supported for usage reporting"}\n',
    );
    expect(runSnippet("flux-1-kontext-dev", 1)).toBe(
      'Status code: 403\nResponse: {"detail":"You have not licensed this model. If you recently changed your subscription, please wait 15mins and then try again."}\n',
    );
    expect(runSnippet("flux-1-dev", 1, "not-a-key")).toBe(
      'Status code: 401\nResponse: {"detail":"Invalid or revoked API key"}\n',
    );
  });

  it("prints the 422 list for a non-positive number", () => {
    expect(runSnippet("flux-1-dev", 0)).toBe(
      'Status code: 422\nResponse: {"detail":[{"loc":["body","number_of_generations"],"msg":"Input should be greater than 0","type":"greater_than"}]}\n',
    );
  });
});
