import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, REPO_ROOT, type ServerProcess, startServer } from "../support/server-process.ts";
import { createWorld, faultProxy, storedUsage } from "./support.ts";

/** clients/python/tally_reporter.py, run with python3 against a real server process. */

const run = promisify(execFile);
const REPORTER_DIR = join(REPO_ROOT, "clients/python");
const hasPython = spawnSync("python3", ["--version"], { stdio: "ignore" }).status === 0;

describe.skipIf(!hasPython)("the Python reporter", { timeout: 240_000 }, () => {
  let server: ServerProcess;
  let dir: string;
  beforeAll(async () => {
    server = await startServer({ timeoutMs: 120_000 });
    dir = mkdtempSync(join(tmpdir(), "tally-py-"));
  }, 150_000);
  afterAll(async () => {
    await server?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a Python script that has the reporter on its path. */
  async function python(name: string, body: string): Promise<string> {
    const file = join(dir, `${name}.py`);
    writeFileSync(file, `import sys\nsys.path.insert(0, ${JSON.stringify(REPORTER_DIR)})\n${body}\n`);
    const { stdout } = await run("python3", [file], { timeout: 60_000 });
    return stdout;
  }

  it("flushes on process exit: records queued behind two 500s are sent before the process ends, once each", async () => {
    const world = await createWorld(server);
    const proxy = await faultProxy(server.url, (n) =>
      n < 2
        ? { kind: "answer", status: 500, body: { detail: "Failed to process usage." } }
        : { kind: "pass" },
    );
    try {
      const out = await python(
        "exit-flush",
        `from tally_reporter import Reporter
r = Reporter(${JSON.stringify(proxy.url)}, ${JSON.stringify(world.key)}, workers=1, base_delay=0.2, max_delay=0.5)
r.record("${world.modelId}", 3)
r.record("${world.modelId}", 4)
print("recorded")`,
      );
      // the script ended right after recording: the atexit flush did the sending
      expect(out).toBe("recorded\n");
      expect(proxy.bodies.length).toBe(4);
      expect(proxy.idempotencyKeys[0]).toBe(proxy.idempotencyKeys[1]);
      expect(proxy.idempotencyKeys[1]).toBe(proxy.idempotencyKeys[2]);
      expect(proxy.idempotencyKeys[3]).not.toBe(proxy.idempotencyKeys[2]);
      expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 2, quantity: 7 });
    } finally {
      await proxy.close();
    }
  });

  it("a server that cannot be reached: reports go to the spool at exit, and the next start sends them once", async () => {
    const world = await createWorld(server);
    const spool = join(dir, "spool.jsonl");
    const dead = `http://127.0.0.1:${await freePort()}`;
    await python(
      "spool-write",
      `from tally_reporter import Reporter
r = Reporter(${JSON.stringify(dead)}, ${JSON.stringify(world.key)}, spool_path=${JSON.stringify(spool)}, flush_timeout=1, base_delay=0.05, max_delay=0.2)
for n in range(1, 6):
    r.record("${world.modelId}", n)`,
    );
    const spooled = readFileSync(spool, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; n: number });
    expect(spooled.map((s) => s.n).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 0, quantity: 0 });

    const replay = `from tally_reporter import Reporter
r = Reporter(${JSON.stringify(server.url)}, ${JSON.stringify(world.key)}, spool_path=${JSON.stringify(spool)})
print(r.flush(30))`;
    expect(await python("spool-send", replay)).toBe("True\n");
    expect(existsSync(spool)).toBe(false);
    expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 5, quantity: 15 });
    // once: a second start has nothing to send
    expect(await python("spool-send-again", replay)).toBe("True\n");
    expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 5, quantity: 15 });
  });

  it("report_now() honours a 429's Retry-After and reuses its Idempotency-Key", async () => {
    const world = await createWorld(server);
    const proxy = await faultProxy(server.url, (n) =>
      n === 0 ? { kind: "answer", status: 429, headers: { "retry-after": "1" } } : { kind: "pass" },
    );
    try {
      const out = await python(
        "retry-after",
        `import time
from tally_reporter import Reporter
r = Reporter(${JSON.stringify(proxy.url)}, ${JSON.stringify(world.key)}, base_delay=0.01)
t0 = time.monotonic()
status, text = r.report_now("${world.modelId}", 6)
print(status, text, time.monotonic() - t0 >= 1.0)`,
      );
      expect(out).toBe('200 {"message":"Usage recorded successfully"} True\n');
      expect(proxy.idempotencyKeys.length).toBe(2);
      expect(proxy.idempotencyKeys[0]).toBe(proxy.idempotencyKeys[1]);
      expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 1, quantity: 6 });
    } finally {
      await proxy.close();
    }
  });

  it("as a command, like the seed's snippet: the seed's full URL works, and the answer is printed", async () => {
    const world = await createWorld(server);
    const script = join(REPORTER_DIR, "tally_reporter.py");
    const seedUrl = `${server.url}/v1/licenses/models/<MODEL_SLUG>/usage`;
    const ok = await run("python3", [script, "--url", seedUrl, "--key", world.key, world.modelId, "2"]);
    expect(ok.stdout).toBe('Status code: 200\nResponse: {"message":"Usage recorded successfully"}\n');
    const refused = await run("python3", [
      script,
      "--url",
      server.url,
      "--key",
      world.key,
      "example-model",
      "1",
    ]).catch((err: { code: number; stdout: string }) => err);
    expect((refused as { code: number }).code).toBe(1);
    expect(refused.stdout).toBe(
      'Status code: 400\nResponse: {"detail":"Model slug example-model is not supported for usage reporting"}\n',
    );
    expect(await storedUsage(server, world.key, world.modelId)).toEqual({ requests: 1, quantity: 2 });
  });
});
