/** Core constants that more than one layer names; each is defined here once. */

/** What a model is, for per-kind counts and for the catalog. */
export const MODEL_KINDS = ["chat", "embedding", "image", "video", "audio", "tts", "other"] as const;

/** The seeds' marker for an unlimited number (a plan's validity_days, a key-stats limit). */
export const UNLIMITED = -999999;

/** An event id (the client's idempotency key, unique per account) is at most this long. */
export const MAX_EVENT_ID_LENGTH = 200;

/** The license report's Idempotency-Key header is at most this long (its event id adds a namespace). */
export const MAX_LICENSE_IDEMPOTENCY_KEY_LENGTH = 200;

/** The usage log's Idempotency-Key, with its namespace in front, must still fit an event id. */
export const USAGE_LOG_IDEMPOTENCY_NAMESPACE = "usage-log:";
export const MAX_USAGE_LOG_IDEMPOTENCY_KEY_LENGTH =
  MAX_EVENT_ID_LENGTH - USAGE_LOG_IDEMPOTENCY_NAMESPACE.length;

const MIB = 1024 * 1024;
/** Request bodies are at most this large, except event batches. */
export const BODY_LIMIT = MIB;
/** `POST /v1/events` takes batches up to this size. */
export const EVENTS_BODY_LIMIT = 16 * MIB;
