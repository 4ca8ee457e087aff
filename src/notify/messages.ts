import { createHash } from "node:crypto";
import type { ThresholdData, ThresholdForecastData } from "../domain/alerts.ts";
import type { Dec } from "../domain/decimal.ts";
import { uuid7 } from "../domain/ids.ts";
import { formatUtc } from "../domain/time.ts";
import { dec, serializeJson } from "../http/json.ts";

/**
 * Webhook message bodies: `{type, timestamp, data}` per DESIGN.md. A message is serialized exactly
 * once, here, to the bytes that the outbox stores, that are signed and that are sent: a signature
 * over one serialization and a body from another (a framework re-serializing, key order, number
 * formatting) is the classic way webhook signatures break, so nothing downstream sees an object.
 */

export const EVENT_TYPES = [
  "usage.threshold_crossed",
  "usage.threshold_forecast",
  "budget.threshold_crossed",
  "invoice.finalized",
  "invoice.voided",
  "key.created",
  "key.revoked",
  "webhook.test",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(value: unknown): value is EventType {
  return typeof value === "string" && (EVENT_TYPES as readonly string[]).includes(value);
}

export interface InvoiceEventData {
  account_id: string;
  invoice_id: string;
  number: string | null;
  status: "finalized" | "void" | "no_charge";
  period: { start: string; end: string; timezone: string };
  currency: string;
  subtotal: Dec;
  total: Dec;
  issued_at: string | null;
}

/** Never a secret: the prefix identifies the key. */
export interface KeyEventData {
  account_id: string;
  user_id: string;
  key_id: string;
  label: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export interface WebhookTestData {
  account_id: string | null;
  endpoint_id: string;
}

/** The `data` of each event type; decimals are `Dec` and leave as exact JSON numbers. */
export interface EventData {
  "usage.threshold_crossed": ThresholdData;
  "usage.threshold_forecast": ThresholdForecastData;
  "budget.threshold_crossed": ThresholdData;
  "invoice.finalized": InvoiceEventData;
  "invoice.voided": InvoiceEventData;
  "key.created": KeyEventData;
  "key.revoked": KeyEventData;
  "webhook.test": WebhookTestData;
}

/** A message ready for the outbox: its id (the `webhook-id`) and the final bytes of its body. */
export interface MessageBody {
  id: string;
  type: EventType;
  /** epoch ms; the body's `timestamp` */
  createdAt: number;
  body: Uint8Array;
}

/** `msg_` + a UUIDv7: unique, and time-ordered so the outbox index stays append-only. */
export function newMessageId(): string {
  return `msg_${uuid7()}`;
}

/** Bigints in `data` are exact decimals (Dec): they become JSON numbers with their exact digits. */
function toWire(value: unknown): unknown {
  if (typeof value === "bigint") return dec(value);
  if (Array.isArray(value)) return value.map(toWire);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toWire(v)]));
  }
  return value;
}

/** Builds and serializes a message once; the returned bytes are what is signed and sent. */
export function buildMessage<T extends EventType>(
  type: T,
  data: EventData[T],
  createdAt: number,
  id: string = newMessageId(),
): MessageBody {
  const text = serializeJson({ type, timestamp: formatUtc(createdAt), data: toWire(data) });
  return { id, type, createdAt, body: new TextEncoder().encode(text) };
}

/**
 * The id of a message caused by something that happens once (a key created, an invoice voided, a
 * threshold crossed in a period), for one endpoint: derived from the cause, so two instances that
 * both write it write the same row, which the outbox keeps once. Formatted as a UUID (version 8,
 * "custom"): the first 122 bits of SHA-256 over the cause and the endpoint.
 */
export function causedMessageId(cause: string, endpointId: string): string {
  const h = createHash("sha256").update(cause).update("\u0000").update(endpointId).digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `msg_${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
