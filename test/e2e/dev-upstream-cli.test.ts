import { spawn } from "node:child_process";
import { once } from "node:events";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/server-process.ts";

/** `tally dev-upstream` as a user runs it: a process printing its URL, usable by the openai client. */
describe("tally dev-upstream", () => {
  const child = spawn(process.execPath, ["bin/tally.mjs", "dev-upstream", "--port", "0"], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let url = "";

  beforeAll(async () => {
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      output += d;
    });
    url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (d: string) => {
        output += d;
        const match = /listening on (http:\/\/\S+)/.exec(output);
        if (match) resolve(match[1]);
      });
      child.once("exit", () => reject(new Error(`dev-upstream exited:\n${output}`)));
    });
  });
  afterAll(async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  });

  it("serves chat, the same answer for the same request, and lists its models", async () => {
    const client = new OpenAI({ apiKey: "unused", baseURL: `${url}/v1`, maxRetries: 0 });
    const ask = () =>
      client.chat.completions.create({
        model: "dev-chat",
        messages: [{ role: "user", content: "same question" }],
      });
    const [a, b] = [await ask(), await ask()];
    expect(a.choices[0].message.content).toBeTruthy();
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
    expect(a.usage).toEqual(b.usage);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain("dev-chat");
  });

  it("stops on SIGTERM with exit code 0", async () => {
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  });

  it("refuses a bad port, naming the option", async () => {
    const bad = spawn(process.execPath, ["bin/tally.mjs", "dev-upstream", "--port", "nope"], {
      cwd: REPO_ROOT,
    });
    let stderr = "";
    bad.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const [code] = await once(bad, "exit");
    expect(code).toBe(2);
    expect(stderr).toContain("--port");
  });
});
