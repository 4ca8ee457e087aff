import { readdirSync, readFileSync } from "node:fs";

/** User + system CPU in a /proc/<pid>/stat text, in microseconds (utime and stime, fields 14 and 15, in 1/100 s). */
function cpuOfStat(stat: string): number {
  const fields = stat.split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** User + system CPU a process has used, in microseconds (Linux /proc; 0 when unreadable). */
export function processCpuMicros(pid: number): number {
  try {
    return cpuOfStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return 0;
  }
}

/**
 * CPU used so far by every PostgreSQL server process on this machine (postmaster, backends, WAL
 * writer, checkpointer, autovacuum), in microseconds; null when none is visible (a remote
 * server). Ended backends no longer count, so read it around a run whose connections stay open.
 */
export function postgresCpuMicros(): number | null {
  let total = 0;
  let seen = false;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (!stat.includes("(postgres)")) continue;
      seen = true;
      total += cpuOfStat(stat);
    } catch {
      // gone meanwhile
    }
  }
  return seen ? total : null;
}
