/** Seeded PRNG (mulberry32): the same seed gives the same data set on every machine. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** 32 random bits as 8 hex digits. */
  hex8(): string {
    return Math.floor(this.next() * 4294967296)
      .toString(16)
      .padStart(8, "0");
  }
}

/** A UUID: v7 (48-bit millisecond timestamp first, so ids arrive in index order) or random v4. */
export function uuidOf(kind: "v7" | "v4", ts: number, rng: Prng): string {
  const a = rng.hex8();
  const b = rng.hex8();
  const c = rng.hex8();
  const variant = ((8 + rng.int(4)) >>> 0).toString(16);
  if (kind === "v7") {
    const t = ts.toString(16).padStart(12, "0");
    return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${a.slice(0, 3)}-${variant}${a.slice(3, 6)}-${b}${c.slice(0, 4)}`;
  }
  const d = rng.hex8();
  return `${d}-${a.slice(0, 4)}-4${a.slice(4, 7)}-${variant}${b.slice(0, 3)}-${b.slice(3, 8)}${c.slice(0, 7)}`;
}
