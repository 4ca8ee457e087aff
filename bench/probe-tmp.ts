// per-request server CPU for the single license report (temporary probe, never committed)

import { execSync } from "node:child_process";
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import { startTally } from "./lib/server.ts";
import { createBenchStore } from "./lib/stores.ts";
import { createWorld, IMAGE_MODEL, KEYS } from "./lib/world.ts";

const path = `/v1/licenses/models/${IMAGE_MODEL.id}/usage`;
const cpu = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000; // µs (CLK_TCK 100)
};
const run = (url: string, amount: number) =>
  new Promise<autocannon.Result>((res, rej) =>
    autocannon(
      {
        url: url + path,
        method: "POST",
        headers: { "x-key": KEYS[0].secret, "content-type": "application/json" },
        body: '{"number_of_generations":1}',
        connections: 50,
        amount,
      },
      (e, r) => (e ? rej(e) : res(r)),
    ),
  );
const bs = await createBenchStore("sqlite", "probe");
await createWorld(bs.store);
await bs.store.close();
const t = await startTally(bs.env, "tly_bench_root_key_0000000000000000000000000", null);
execSync(`taskset -a -p -c 0 ${t.pid}`);
await run(t.url, 20_000);
const out: string[] = [];
for (let i = 0; i < 3; i++) {
  const c0 = cpu(t.pid);
  const r = await run(t.url, 40_000);
  const c1 = cpu(t.pid);
  out.push(`${((c1 - c0) / 40_000).toFixed(1)}µs ${Math.round(r.requests.average)}rps`);
}
console.log(process.cwd(), out.join(" | "));
await t.stop();
await bs.cleanup();
process.exit(0);
