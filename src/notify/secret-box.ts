import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * Webhook signing secrets at rest. Unlike API keys (stored as hashes), a signing secret must be
 * read back to sign every delivery, so it is stored encrypted when the operator provides a key
 * (the store step's config: `TALLY_SECRETS_KEY`, 32 bytes in base64): AES-256-GCM with a random
 * 96-bit nonce, the endpoint id as associated data (a sealed secret copied to another endpoint's
 * row does not open). Without a key it is stored as `plain:<secret>`, which is what a database
 * dump then reveals; the marker keeps the two apart, so adding a key later re-seals on rotation.
 *
 * Stored form: `aes256gcm:<nonce b64>:<tag b64>:<ciphertext b64>` or `plain:<secret>`.
 */

export class SecretBoxError extends Error {}

/** Parses the configured key; anything but 32 bytes of base64 is a configuration error. */
export function parseSecretsKey(text: string): Buffer {
  const key = Buffer.from(text, "base64");
  if (key.length !== 32 || key.toString("base64") !== text.replace(/\s/g, "")) {
    throw new SecretBoxError("TALLY_SECRETS_KEY must be 32 bytes in base64 (openssl rand -base64 32)");
  }
  return key;
}

export function sealSecret(secret: string, endpointId: string, key: Buffer | null): string {
  if (key === null) return `plain:${secret}`;
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(endpointId));
  const sealed = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return ["aes256gcm", nonce, cipher.getAuthTag(), sealed]
    .map((p) => (typeof p === "string" ? p : p.toString("base64")))
    .join(":");
}

export function openSecret(stored: string, endpointId: string, key: Buffer | null): string {
  if (stored.startsWith("plain:")) return stored.slice("plain:".length);
  const [scheme, nonce, tag, sealed] = stored.split(":");
  if (scheme !== "aes256gcm" || sealed === undefined)
    throw new SecretBoxError("unknown stored secret format");
  if (key === null) throw new SecretBoxError("a sealed webhook secret needs TALLY_SECRETS_KEY to be opened");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(nonce, "base64"));
    decipher.setAAD(Buffer.from(endpointId));
    decipher.setAuthTag(Buffer.from(tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(sealed, "base64")), decipher.final()]).toString("utf8");
  } catch {
    throw new SecretBoxError("the webhook secret does not open with this key and endpoint");
  }
}
