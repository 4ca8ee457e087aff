import { createHmac, randomBytes } from "node:crypto";
import { DomainError } from "../domain/errors.ts";

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): every delivery carries
 * `webhook-id` (the message id, the same on every retry so receivers can deduplicate),
 * `webhook-timestamp` (whole seconds, the time of this attempt) and `webhook-signature`, a
 * space-separated list of `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per secret that
 * is valid at send time. Secrets are `whsec_<base64 of 32 random bytes>`.
 *
 * The body is signed as the exact bytes that go on the wire (see messages.ts): nothing between
 * signing and sending may re-serialize it.
 */

const PREFIX = "whsec_";
const SECRET_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** How long the previous secret keeps signing after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3_600_000;

/** A fresh signing secret, shown to the operator once. */
export function generateSecret(): string {
  return PREFIX + randomBytes(SECRET_BYTES).toString("base64");
}

/** The HMAC key inside a `whsec_` secret; anything else is a validation error on `secret`. */
export function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : "";
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) {
    throw DomainError.validation(["secret"], "must be whsec_ followed by base64");
  }
  return Buffer.from(encoded, "base64");
}

/** One `v1,<base64>` signature of `id.timestamp.body` under `secret`. */
export function signatureOf(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: Uint8Array,
): string {
  const mac = createHmac("sha256", secretKey(secret));
  mac.update(`${messageId}.${timestampSeconds}.`);
  mac.update(body);
  return `v1,${mac.digest("base64")}`;
}

/**
 * An endpoint's secrets: the current one, and during a rotation the previous one until
 * `previousExpiresAt`. Both sign while both are valid, so a receiver still configured with
 * either verifies.
 */
export interface EndpointSecrets {
  current: string;
  previous: string | null;
  previousExpiresAt: number | null;
}

/** The secrets that sign at `now`: the current one first, then the previous while it lasts. */
export function signingSecrets(secrets: EndpointSecrets, now: number): string[] {
  const active = [secrets.current];
  if (secrets.previous !== null && secrets.previousExpiresAt !== null && now < secrets.previousExpiresAt) {
    active.push(secrets.previous);
  }
  return active;
}

/** The secrets after a rotation at `now`: a new current one; the old one signs for 24 h more. */
export function rotateSecrets(
  secrets: EndpointSecrets,
  now: number,
  next = generateSecret(),
): EndpointSecrets {
  return { current: next, previous: secrets.current, previousExpiresAt: now + ROTATION_OVERLAP_MS };
}

export interface WebhookHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/** The three Standard Webhooks headers for one attempt, signed with every secret given. */
export function webhookHeaders(
  messageId: string,
  timestampSeconds: number,
  body: Uint8Array,
  secrets: readonly string[],
): WebhookHeaders {
  if (secrets.length === 0) throw new Error("a webhook needs at least one signing secret");
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": secrets.map((s) => signatureOf(s, messageId, timestampSeconds, body)).join(" "),
  };
}
