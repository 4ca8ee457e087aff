import { hash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * API key secrets: `tly_` + 40 base62 characters (about 238 bits). Only the SHA-256 of a secret
 * is stored; a high-entropy secret needs no slow hash, and the lookup by digest leaks nothing
 * useful, but digests are still compared in constant time.
 */
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const KEY_PREFIX = "tly_";
const SECRET_LENGTH = 40;

export function generateSecret(): string {
  const out: string[] = [];
  while (out.length < SECRET_LENGTH) {
    for (const b of randomBytes(64)) {
      // rejection sampling keeps every character equally likely
      if (b < 248 && out.length < SECRET_LENGTH) out.push(ALPHABET[b % 62]);
    }
  }
  return KEY_PREFIX + out.join("");
}

export function hashSecret(secret: string): string {
  // the one-shot form: a third of createHash's cost, and every authenticated request pays it
  return hash("sha256", secret, "hex");
}

/** The recognisable, non-secret part shown in listings: `tly_` and the first 6 characters. */
export function displayPrefix(secret: string): string {
  return secret.slice(0, KEY_PREFIX.length + 6);
}

/** `tly_Ab12…WXYZ`: prefix and last four characters, never the secret itself. */
export function maskSecret(secret: string): string {
  return `${displayPrefix(secret)}...${secret.slice(-4)}`;
}

/** A SHA-256 digest's bytes; two scratch buffers decode digests without allocating per request. */
const DIGEST_BYTES = 32;
const left = Buffer.alloc(DIGEST_BYTES);
const right = Buffer.alloc(DIGEST_BYTES);

/**
 * Two SHA-256 digests in hex (hashSecret's) compared in constant time. Anything else is unequal,
 * whatever it holds: a string that is not 64 hex characters decodes short and never matches.
 */
export function digestsEqual(a: string, b: string): boolean {
  if (a.length !== DIGEST_BYTES * 2 || b.length !== DIGEST_BYTES * 2) return false;
  const whole = left.write(a, "hex") === DIGEST_BYTES && right.write(b, "hex") === DIGEST_BYTES;
  // compared even when one did not decode whole, so the time does not tell which
  return timingSafeEqual(left, right) && whole;
}
