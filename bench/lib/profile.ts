import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  hitCount?: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** Top functions by self time in the .cpuprofile files of a directory (node --cpu-prof). */
export function topFunctions(dir: string, count = 12): { fn: string; ms: number; share: number }[] {
  const self = new Map<string, number>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
    const p = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
      nodes: ProfileNode[];
      startTime: number;
      endTime: number;
      samples: number[];
    };
    const perSample = (p.endTime - p.startTime) / Math.max(1, p.samples.length) / 1000;
    for (const n of p.nodes) {
      const where = n.callFrame.url.replace(/^.*\/(src|node_modules)\//, "$1/");
      const key = `${n.callFrame.functionName || "(anonymous)"} ${where}:${n.callFrame.lineNumber + 1}`;
      const ms = (n.hitCount ?? 0) * perSample;
      self.set(key, (self.get(key) ?? 0) + ms);
      if (!key.startsWith("(idle)")) total += ms;
    }
  }
  return [...self]
    .filter(([k]) => !k.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([fn, ms]) => ({ fn, ms: Math.round(ms), share: total === 0 ? 0 : ms / total }));
}
