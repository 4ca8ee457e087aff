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
    expect(digestsEqual(d.toUpperCase(), d)).toBe(true);
  });

  it("are unequal when either is not a whole SHA-256 digest in hex, whatever was compared before", () => {
    const d = hashSecret("tly_secret");
    expect(digestsEqual(d, d)).toBe(true);
    // the same non-hex text on both sides decodes short: never equal, even after an equal pair
    const notHex = `zz${d.slice(2)}`;
    expect(digestsEqual(notHex, notHex)).toBe(false);
    expect(digestsEqual(`${d.slice(0, 63)}z`, `${d.slice(0, 63)}z`)).toBe(false);
    expect(digestsEqual("", "")).toBe(false);
    expect(digestsEqual(`${d}00`, `${d}00`)).toBe(false);
  });
});
