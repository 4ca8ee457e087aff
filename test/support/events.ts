import { v7 as uuidv7 } from "uuid";
import { ONE } from "../../src/domain/decimal.ts";
import type { UsageEvent } from "../../src/store/store.ts";

/**
 * A live usage event as the stores take it: one image of model "m" at 1 USD, with no key, user,
 * tokens or metadata, created when it happened. `e` names it and replaces any default.
 */
export function usageEvent(
  e: Pick<UsageEvent, "accountId" | "eventId" | "ts"> & Partial<UsageEvent>,
): UsageEvent {
  return {
    usageId: uuidv7(),
    userId: null,
    keyId: null,
    modelId: "m",
    apiName: null,
    endpoint: null,
    kind: "image",
    unit: "image",
    quantity: ONE,
    unitPrice: ONE,
    cost: ONE,
    currency: "USD",
    tokensPrompt: 0,
    tokensCompletion: 0,
    statusActive: true,
    metadata: null,
    apiKeyUsed: null,
    createdAt: e.ts,
    updatedAt: e.ts,
    ...e,
  };
}
