import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openSecret, parseSecretsKey, sealSecret } from "./secret-box.ts";
import { generateSecret } from "./signing.ts";

describe("secret box", () => {
  const key = randomBytes(32);

  it("seals and opens a secret; the stored form does not contain it", () => {
    const secret = generateSecret();
    const stored = sealSecret(secret, "ep_1", key);
    expect(stored).toMatch(/^aes256gcm:/);
    expect(stored).not.toContain(secret.slice(6, 20));
    expect(openSecret(stored, "ep_1", key)).toBe(secret);
    expect(sealSecret(secret, "ep_1", key)).not.toBe(stored); // fresh nonce each time
  });

  it("does not open under another key, for another endpoint, or tampered", () => {
    const stored = sealSecret(generateSecret(), "ep_1", key);
    expect(() => openSecret(stored, "ep_1", randomBytes(32))).toThrow(/does not open/);
    expect(() => openSecret(stored, "ep_2", key)).toThrow(/does not open/);
    const parts = stored.split(":");
    const flipped = Buffer.from(parts[3], "base64");
    flipped[0] ^= 1;
    parts[3] = flipped.toString("base64");
    expect(() => openSecret(parts.join(":"), "ep_1", key)).toThrow(/does not open/);
    expect(() => openSecret(stored, "ep_1", null)).toThrow(/TALLY_SECRETS_KEY/);
  });

  it("without a key stores a marked plain secret", () => {
    const secret = generateSecret();
    expect(sealSecret(secret, "ep_1", null)).toBe(`plain:${secret}`);
    expect(openSecret(`plain:${secret}`, "ep_1", key)).toBe(secret);
    expect(() => openSecret("rot13:abc", "ep_1", key)).toThrow(/format/);
  });

  it("accepts only a 32-byte base64 key", () => {
    expect(parseSecretsKey(key.toString("base64"))).toEqual(key);
    expect(() => parseSecretsKey(randomBytes(16).toString("base64"))).toThrow(/32 bytes/);
    expect(() => parseSecretsKey("not base64 at all!")).toThrow(/32 bytes/);
  });
});
