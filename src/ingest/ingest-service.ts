import { can } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import { type Dec, sumDec, ZERO } from "../domain/decimal.ts";
import { DomainError } from "../domain/errors.ts";
import { COST_RULE, PRICE_RULE, QUANTITY_RULE, readDecimal } from "../domain/fields.ts";
import { uuid7 } from "../domain/ids.ts";
import {
  costOfQuantities,
  isMeter,
  type Meter,
  type MeteredCost,
  type MeterPrices,
  parseQuantities,
  type Quantities,
  tokensOf,
} from "../domain/meters.ts";
import { costOf, type PricePoint, priceAt, unitPriceOfCost } from "../domain/pricing.ts";
import type { AppendOutcome, Store, UsageEvent } from "../store/store.ts";
import { DEFAULT_MAX_FUTURE_MS, type EventInput, readEventTime, validateEventInput } from "./event-input.ts";
import type { GroupCommitter } from "./group-committer.ts";
import type { ModelCatalog } from "./model-catalog.ts";

export const MAX_BATCH = 10_000;

/** An event after parsing, before pricing: what every surface hands to the core. */
export interface NewEvent {
  eventId: string;
  accountId: string;
  ts: number;
  userId: string | null;
  keyId: string | null;
  modelId: string;
  apiName: string | null;
  endpoint: string | null;
  kind?: string;
  unit?: string;
  /** the quantity in the model's unit; for a model priced per meter, the sum of `quantities` */
  quantity: Dec;
  /** per meter, for a model priced per meter (DESIGN.md "Meters") */
  quantities?: Quantities;
  unitPrice?: Dec;
  cost?: Dec;
  currency?: string;
  tokensPrompt: number;
  tokensCompletion: number;
  metadata: Record<string, unknown> | null;
  apiKeyUsed: string | null;
  statusActive?: boolean;
  /** already counted by an allowed limits check: not counted against the rate limits again */
  admitted?: boolean;
}

export interface PrepareOptions {
  /** usage-log records may name an api that is not a model: unit "unit", kind "other" */
  allowUnknownModel?: boolean;
  /** usage-log records: a given cost implies the unit price (cost / quantity), even for a known model */
  unitPriceFromCost?: boolean;
}

export interface BatchResult {
  accepted: number;
  duplicates: number;
  rejected: { index: number; error: string; field?: string }[];
  results: { index: number; id: string; usage_id: string; status: AppendOutcome["status"] }[];
}

export interface IngestOptions {
  /** how far past now an event's timestamp may lie (default one day) */
  maxFutureMs?: number;
  /** told how many items of a batch were refused (metrics) */
  onRejected?: (count: number) => void;
}

/** The write path: validate, authorize, price, append idempotently (group-committed). */
export class IngestService {
  private readonly maxFutureMs: number;

  constructor(
    private readonly store: Store,
    private readonly catalog: ModelCatalog,
    private readonly committer: GroupCommitter,
    private readonly now: () => number,
    private readonly options: IngestOptions = {},
  ) {
    this.maxFutureMs = options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  }

  /** Prices an event: the model's unit and kind, the price version in force at its timestamp. */
  async price(e: NewEvent, loc: (string | number)[], options: PrepareOptions = {}): Promise<UsageEvent> {
    const entry = await this.catalog.get(e.modelId);
    if (!entry && !options.allowUnknownModel)
      throw DomainError.validation([...loc, "model_id"], `unknown model ${e.modelId}`);
    // the price version in force, looked up once: it decides per unit or per meter
    const version = entry ? priceAt(entry.prices, e.ts) : null;
    const metered = entry && version?.meters ? this.meterLines(e, entry, version, version.meters, loc) : null;
    if (metered) {
      const tokens = tokensOf(metered.quantities);
      return this.priced(e, {
        kind: e.kind ?? entry!.model.kind,
        unit: entry!.model.unit,
        quantity: metered.cost.totalQuantity,
        unitPrice: ZERO,
        cost: metered.cost.total,
        currency: metered.currency,
        tokensPrompt: e.tokensPrompt || tokens.prompt,
        tokensCompletion: e.tokensCompletion || tokens.completion,
        meters: metered.cost.lines,
      });
    }
    if (e.quantities) {
      throw DomainError.validation(
        [...loc, "quantities"],
        `model ${e.modelId} is not priced per meter: send quantity`,
      );
    }
    let unitPrice = e.unitPrice;
    let currency = e.currency;
    if (unitPrice === undefined) {
      if (e.cost !== undefined && (entry === null || options.unitPriceFromCost)) {
        unitPrice = unitPriceOfCost(e.cost, e.quantity);
      } else {
        if (!version) {
          throw DomainError.validation(
            [...loc, "model_id"],
            `model ${e.modelId} has no price in force at ${new Date(e.ts).toISOString()}`,
          );
        }
        if (currency !== undefined && currency !== version.currency) {
          throw DomainError.validation(
            [...loc, "currency"],
            `model ${e.modelId} is priced in ${version.currency}`,
          );
        }
        unitPrice = version.unitPrice;
        currency = version.currency;
      }
    }
    let cost = e.cost;
    if (cost === undefined) {
      try {
        cost = costOf(e.quantity, unitPrice);
      } catch {
        throw DomainError.validation(
          [...loc, "quantity"],
          "quantity x unit_price needs more than 18 decimal places",
        );
      }
    }
    return this.priced(e, {
      kind: e.kind ?? entry?.model.kind ?? "other",
      unit: e.unit ?? entry?.model.unit ?? "unit",
      quantity: e.quantity,
      unitPrice,
      cost,
      currency: currency ?? "USD",
      tokensPrompt: e.tokensPrompt,
      tokensCompletion: e.tokensCompletion,
    });
  }

  /** The stored event of `e` with its price and amounts. */
  private priced(
    e: NewEvent,
    amounts: Pick<
      UsageEvent,
      "kind" | "unit" | "quantity" | "unitPrice" | "cost" | "currency" | "tokensPrompt" | "tokensCompletion"
    > & { meters?: UsageEvent["meters"] },
  ): UsageEvent {
    const at = this.now();
    return {
      usageId: uuid7(),
      accountId: e.accountId,
      eventId: e.eventId,
      ts: e.ts,
      userId: e.userId,
      keyId: e.keyId,
      modelId: e.modelId,
      apiName: e.apiName,
      endpoint: e.endpoint,
      // fields named one by one: this runs for every event ingested, and spreads cost more
      kind: amounts.kind,
      unit: amounts.unit,
      quantity: amounts.quantity,
      unitPrice: amounts.unitPrice,
      cost: amounts.cost,
      currency: amounts.currency,
      tokensPrompt: amounts.tokensPrompt,
      tokensCompletion: amounts.tokensCompletion,
      statusActive: e.statusActive ?? true,
      metadata: e.metadata,
      apiKeyUsed: e.apiKeyUsed,
      createdAt: at,
      updatedAt: at,
      ...(amounts.meters ? { meters: amounts.meters } : {}),
      ...(e.admitted ? { admitted: true } : {}),
    };
  }

  /**
   * The meter lines of an event of a model whose price version in force is per meter. `quantities` name the meters; a plain `quantity` is accepted when the model's
   * unit is one of its meters (a license report of images). A unit price or cost cannot be given:
   * the meters price the event.
   */
  private meterLines(
    e: NewEvent,
    entry: NonNullable<Awaited<ReturnType<ModelCatalog["get"]>>>,
    version: PricePoint,
    meters: MeterPrices,
    loc: (string | number)[],
  ): { quantities: Quantities; cost: MeteredCost; currency: string } {
    if (e.unitPrice !== undefined || e.cost !== undefined) {
      throw DomainError.validation(
        [...loc, e.cost !== undefined ? "cost" : "unit_price"],
        `model ${e.modelId} is priced per meter`,
      );
    }
    if (e.currency !== undefined && e.currency !== version.currency) {
      throw DomainError.validation(
        [...loc, "currency"],
        `model ${e.modelId} is priced in ${version.currency}`,
      );
    }
    let quantities = e.quantities;
    if (!quantities) {
      const unit = entry.model.unit;
      if (!isMeter(unit) || meters[unit] === undefined) {
        throw DomainError.validation(
          [...loc, "quantities"],
          `model ${e.modelId} is priced per meter (${Object.keys(meters).join(", ")}): send quantities`,
        );
      }
      quantities = { [unit]: e.quantity };
    }
    for (const [meter, q] of Object.entries(quantities)) {
      if (q !== undefined && q > ZERO && meters[meter as Meter] === undefined) {
        throw DomainError.validation(
          [...loc, "quantities", meter],
          `model ${e.modelId} has no price for this meter`,
        );
      }
    }
    return { quantities, cost: costOfQuantities(quantities, meters), currency: version.currency };
  }

  /**
   * Appends priced events durably; resolves after their transaction has committed, which may
   * wait up to `lingerMs` for other events to share it (see GroupCommitter.submit).
   */
  append(events: UsageEvent[], lingerMs = 0): Promise<AppendOutcome[]> {
    return this.committer.submit(events, lingerMs);
  }

  /** Prices and appends one event that a surface has already parsed and authorized. */
  async recordOne(
    e: NewEvent,
    options: PrepareOptions = {},
  ): Promise<{ event: UsageEvent; outcome: AppendOutcome }> {
    const event = await this.price(e, ["body"], options);
    const [outcome] = await this.append([event]);
    return { event, outcome };
  }

  /** `POST /v1/events`: one event or `{events: [...]}`; each item accepted or rejected on its own. */
  async recordBatch(p: Principal, body: unknown): Promise<BatchResult> {
    const { items, wrapperAccount } = splitBody(body);
    if (items.length > MAX_BATCH) {
      throw DomainError.validation(["body", "events"], `at most ${MAX_BATCH} events per request`);
    }
    const rejected: BatchResult["rejected"] = [];
    const priced: { index: number; event: UsageEvent }[] = [];
    const owners = new OwnerCache(this.store);
    const now = this.now();
    for (let i = 0; i < items.length; i++) {
      const loc = Array.isArray((body as { events?: unknown })?.events) ? ["events", i] : [];
      try {
        const input = validateEventInput(items[i], loc);
        const accountId = await this.resolveAccount(p, input.account_id ?? wrapperAccount, loc);
        const attribution = await owners.attribution(p, accountId, input.user_id, input.key_id, loc);
        const ts =
          input.timestamp === undefined
            ? now
            : readEventTime(input.timestamp, [...loc, "timestamp"], now, this.maxFutureMs);
        const amounts = readAmounts(input, loc);
        // fields written out: an object with a spread before other fields costs V8's slow path
        // for each of them (decision 0021, "Spreads"), and this runs for every event
        const event = await this.price(
          {
            eventId: input.id,
            accountId,
            ts,
            userId: attribution.userId,
            keyId: attribution.keyId,
            modelId: input.model_id,
            apiName: input.api_name ?? null,
            endpoint: input.endpoint ?? null,
            kind: input.kind,
            unit: input.unit,
            quantity: amounts.quantity,
            quantities: amounts.quantities,
            unitPrice:
              input.unit_price === undefined
                ? undefined
                : readDecimal(input.unit_price, [...loc, "unit_price"], PRICE_RULE),
            cost: input.cost === undefined ? undefined : readDecimal(input.cost, [...loc, "cost"], COST_RULE),
            currency: input.currency,
            tokensPrompt: input.tokens?.prompt ?? 0,
            tokensCompletion: input.tokens?.completion ?? 0,
            metadata: input.metadata ?? null,
            apiKeyUsed: null,
            admitted: input.admitted === true,
          },
          loc,
        );
        priced.push({ index: i, event });
      } catch (err) {
        if (!(err instanceof DomainError) || err.code === "INTERNAL" || err.code === "UNAVAILABLE") throw err;
        rejected.push({
          index: i,
          error: err.message,
          field: err.issues[0]?.loc.filter((x) => x !== "body").join("."),
        });
      }
    }
    if (rejected.length > 0) this.options.onRejected?.(rejected.length);
    const outcomes = await this.append(priced.map((x) => x.event));
    const results = priced.map((x, j) => ({
      index: x.index,
      id: x.event.eventId,
      usage_id: outcomes[j].usageId,
      status: outcomes[j].status,
    }));
    const accepted = outcomes.filter((o) => o.status === "inserted").length;
    return { accepted, duplicates: outcomes.length - accepted, rejected, results };
  }

  private async resolveAccount(
    p: Principal,
    named: string | undefined,
    loc: (string | number)[],
  ): Promise<string> {
    if (p.kind === "user") {
      if (!can(p, "create", "usage_record", { accountId: named ?? p.accountId }))
        throw DomainError.validation([...loc, "account_id"], "unknown account");
      return p.accountId;
    }
    if (named === undefined)
      throw DomainError.validation([...loc, "account_id"], "Field required with the root key");
    return named;
  }
}

function splitBody(body: unknown): { items: unknown[]; wrapperAccount: string | undefined } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw DomainError.validation(["body"], "must be an event object or {events: [...]}");
  }
  const b = body as Record<string, unknown>;
  if ("events" in b) {
    if (!Array.isArray(b.events)) throw DomainError.validation(["body", "events"], "must be an array");
    const extra = Object.keys(b).find((k) => k !== "events" && k !== "account_id");
    if (extra) throw DomainError.validation(["body", extra], "unknown field");
    if (b.account_id !== undefined && typeof b.account_id !== "string") {
      throw DomainError.validation(["body", "account_id"], "must be a string");
    }
    return { items: b.events, wrapperAccount: b.account_id as string | undefined };
  }
  return { items: [body], wrapperAccount: undefined };
}

/** Checks that named users and keys belong to the event's account, one lookup per id per request. */
class OwnerCache {
  private readonly accounts = new Map<string, boolean>();
  private readonly users = new Map<string, string | null>();
  private readonly keys = new Map<string, { accountId: string | null; userId: string | null } | null>();

  constructor(private readonly store: Store) {}

  async attribution(
    p: Principal,
    accountId: string,
    userId: string | undefined,
    keyId: string | undefined,
    loc: (string | number)[],
  ): Promise<{ userId: string | null; keyId: string | null }> {
    if (p.kind === "root") {
      if (!this.accounts.has(accountId))
        this.accounts.set(accountId, (await this.store.getAccount(accountId)) !== null);
      if (!this.accounts.get(accountId))
        throw DomainError.validation([...loc, "account_id"], "unknown account");
    }
    let user = userId ?? null;
    let key = keyId ?? null;
    if (key !== null) {
      if (!this.keys.has(key)) {
        const k = await this.store.getKey(key);
        this.keys.set(key, k ? { accountId: k.accountId, userId: k.userId } : null);
      }
      const k = this.keys.get(key);
      if (!k || k.accountId !== accountId) throw DomainError.validation([...loc, "key_id"], "unknown key");
      if (user !== null && user !== k.userId)
        throw DomainError.validation([...loc, "user_id"], "does not own key_id");
      user = k.userId;
    }
    if (user !== null && key === null) {
      if (!this.users.has(user)) this.users.set(user, (await this.store.getUser(user))?.accountId ?? null);
      if (this.users.get(user) !== accountId)
        throw DomainError.validation([...loc, "user_id"], "unknown user");
    }
    // events sent with an account key and no attribution belong to that key and its user
    if (user === null && key === null && p.kind === "user") {
      user = p.userId;
      key = p.keyId;
    }
    return { userId: user, keyId: key };
  }
}

/** `quantity`, or `quantities` per meter: exactly one of the two. */
function readAmounts(
  input: EventInput,
  loc: (string | number)[],
): { quantity: Dec; quantities?: Quantities } {
  if ((input.quantity === undefined) === (input.quantities === undefined)) {
    throw DomainError.validation([...loc, "quantity"], "give quantity, or quantities per meter (not both)");
  }
  if (input.quantities !== undefined) {
    const quantities = parseQuantities(input.quantities, [...loc, "quantities"]);
    return { quantity: sumDec(Object.values(quantities)), quantities };
  }
  return { quantity: readDecimal(input.quantity, [...loc, "quantity"], QUANTITY_RULE) };
}
