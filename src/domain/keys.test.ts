import { describe, expect, it } from "vitest";
import { digestsEqual, hashSecret } from "./keys.ts";

describe("key digests", () => {
  it("are SHA-256 in hex of the secret's UTF-8 bytes, so digests stored by any release still match", () => {
    // FIPS 180-2's "abc" vector, and a non-ASCII secret
    expect(hashSecret("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(hashSecret("\u00e9")).toBe("4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c");
  });

  it("compare equal only when equal", () => {
    const d = hashSecret("tly_secret");
    expect(digestsEqual(d, hashSecret("tly_secret"))).toBe(true);
    expect(digestsEqual(d, hashSecret("tly_secreT"))).toBe(false);
    expect(digestsEqual(d, d.slice(0, 62))).toBe(false);
  });
});
