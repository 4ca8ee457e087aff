import { v7 as uuidv7 } from "uuid";
import { type Dec, parseDec } from "../../src/domain/decimal.ts";
import { hashSecret } from "../../src/domain/keys.ts";
import { costOf } from "../../src/domain/pricing.ts";
import type { Store, UsageEvent } from "../../src/store/store.ts";
import { Prng, uuidOf } from "./prng.ts";

/**
 * The benchmark world: one account holding all the data (the worst case for per-account
 * queries), 20 models (10 chat models priced per token, 10 image models priced per image, every
 * image model licensed) and 10 users with one key each; user 0 is the account admin.
 */
export const ACCOUNT_ID = "acct-bench";
export const MODEL_COUNT = 20;
export const KEY_COUNT = 10;
export const ZONE = "America/New_York";
/** 30 New York days, 2026-10-15 .. 2026-11-13, across the DST change of 2026-11-01. */
export const RANGE = { startDate: "2026-10-15", endDate: "2026-11-14" };
export const DATA_START = Date.UTC(2026, 9, 15, 4); // 2026-10-15T00:00-04:00
export const DATA_END = Date.UTC(2026, 10, 14, 5); // 2026-11-14T00:00-05:00
export const DST_CHANGE = Date.UTC(2026, 10, 1, 6); // 2026-11-01T02:00-04:00 = 01:00-05:00

export interface BenchModel {
  id: string;
  kind: "chat" | "image";
  unit: string;
  unitPrice: Dec;
}

export interface BenchKey {
  id: string;
  userId: string;
  secret: string;
}

export const MODELS: BenchModel[] = Array.from({ length: MODEL_COUNT }, (_, i) =>
  i < MODEL_COUNT / 2
    ? { id: `chat-${i}`, kind: "chat", unit: "token", unitPrice: parseDec(`0.00000${(i % 9) + 1}`) }
    : { id: `image-${i}`, kind: "image", unit: "image", unitPrice: parseDec(`0.0${(i % 9) + 1}`) },
);

/** Deterministic secrets (this is a throwaway benchmark database). */
export const KEYS: BenchKey[] = Array.from({ length: KEY_COUNT }, (_, i) => {
  const rng = new Prng(1000 + i);
  let secret = "tly_";
  while (secret.length < 44) secret += rng.hex8();
  return { id: `key-${i}`, userId: `user-${i}`, secret: secret.slice(0, 44) };
});

export const IMAGE_MODEL = MODELS.find((m) => m.kind === "image")!;

/** Creates the world directly in the store (the same rows the native API would write). */
export async function createWorld(store: Store): Promise<void> {
  const at = Date.UTC(2026, 0, 1);
  await store.createAccount({ id: ACCOUNT_ID, name: "Bench", isEnabled: true, planId: null, createdAt: at });
  for (const [i, k] of KEYS.entries()) {
    await store.createUser({
      id: k.userId,
      accountId: ACCOUNT_ID,
      username: `user${i}`,
      role: i === 0 ? "admin" : "member",
      nodeId: null,
      createdAt: at,
    });
    await store.createKey({
      id: k.id,
      userId: k.userId,
      accountId: ACCOUNT_ID,
      isRoot: false,
      label: `bench ${i}`,
      prefix: k.secret.slice(0, 10),
      hash: hashSecret(k.secret),
      createdAt: at,
      lastUsedAt: null,
      revokedAt: null,
    });
  }
  for (const m of MODELS) {
    await store.upsertModel(
      { id: m.id, unit: m.unit, kind: m.kind, reportingEnabled: true, createdAt: at, updatedAt: at },
      { modelId: m.id, effectiveFrom: 0, unitPrice: m.unitPrice, currency: "USD" },
    );
    if (m.kind === "image") {
      await store.createLicense({
        id: `lic-${m.id}`,
        accountId: ACCOUNT_ID,
        modelId: m.id,
        startsAt: 0,
        endsAt: null,
        createdAt: at,
      });
    }
  }
}

/** One event as a client sends it to POST /v1/events, and as the core prices and stores it. */
export interface GeneratedEvent {
  id: string;
  ts: number;
  model: BenchModel;
  key: BenchKey;
  quantity: number;
  tokensPrompt: number;
  tokensCompletion: number;
}

/**
 * `count` events in time order over [start, end) (a replay of history), drawn from a seeded PRNG.
 * Chat events carry 1..4,000 tokens, image events 1..4 images.
 */
export function* generateEvents(
  count: number,
  options: { seed: number; start?: number; end?: number; ids?: "v7" | "v4" },
): Generator<GeneratedEvent> {
  const rng = new Prng(options.seed);
  const start = options.start ?? DATA_START;
  const span = (options.end ?? DATA_END) - start;
  const ids = options.ids ?? "v7";
  for (let i = 0; i < count; i++) {
    const ts = start + Math.floor(((i + rng.next()) * span) / count);
    const model = MODELS[rng.int(MODEL_COUNT)];
    const key = KEYS[rng.int(KEY_COUNT)];
    let quantity: number;
    let tokensPrompt = 0;
    let tokensCompletion = 0;
    if (model.kind === "chat") {
      tokensPrompt = 1 + rng.int(3000);
      tokensCompletion = rng.int(1000);
      quantity = tokensPrompt + tokensCompletion;
    } else {
      quantity = 1 + rng.int(4);
    }
    yield { id: uuidOf(ids, ts, rng), ts, model, key, quantity, tokensPrompt, tokensCompletion };
  }
}

/** The JSON item for POST /v1/events. */
export function eventJson(e: GeneratedEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: e.id,
    timestamp: e.ts,
    model_id: e.model.id,
    quantity: e.quantity,
    key_id: e.key.id,
  };
  if (e.model.kind === "chat") out.tokens = { prompt: e.tokensPrompt, completion: e.tokensCompletion };
  return out;
}

/** The stored row the core makes of it: priced at the model's price, like IngestService.price. */
export function toUsageEvent(e: GeneratedEvent, createdAt: number): UsageEvent {
  const quantity = BigInt(e.quantity) * 10n ** 18n;
  return {
    usageId: uuidv7(),
    accountId: ACCOUNT_ID,
    eventId: e.id,
    ts: e.ts,
    userId: e.key.userId,
    keyId: e.key.id,
    modelId: e.model.id,
    apiName: null,
    endpoint: null,
    kind: e.model.kind,
    unit: e.model.unit,
    quantity,
    unitPrice: e.model.unitPrice,
    cost: costOf(quantity, e.model.unitPrice),
    currency: "USD",
    tokensPrompt: e.tokensPrompt,
    tokensCompletion: e.tokensCompletion,
    statusActive: true,
    metadata: null,
    apiKeyUsed: null,
    createdAt,
    updatedAt: createdAt,
  };
}

/**
 * Loads `count` events into the store through its appendEvents (the ingestion code path: events
 * and every rollup in one durable transaction per batch of 10,000). Returns the seconds taken.
 */
export async function loadEvents(
  store: Store,
  count: number,
  seed: number,
  progress?: (done: number) => void,
): Promise<number> {
  const t0 = performance.now();
  let batch: UsageEvent[] = [];
  let done = 0;
  const createdAt = Date.now();
  for (const e of generateEvents(count, { seed })) {
    batch.push(toUsageEvent(e, createdAt));
    if (batch.length === 10_000) {
      await store.appendEvents(batch);
      done += batch.length;
      batch = [];
      if (done % 1_000_000 === 0) progress?.(done);
    }
  }
  if (batch.length > 0) await store.appendEvents(batch);
  return (performance.now() - t0) / 1000;
}
