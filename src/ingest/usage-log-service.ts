import { randomUUID } from "node:crypto";
import { authorize } from "../auth/access.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import type { Principal, UserPrincipal } from "../auth/principal.ts";
import { USAGE_LOG_IDEMPOTENCY_NAMESPACE } from "../domain/constants.ts";
import { DomainError } from "../domain/errors.ts";
import { COST_RULE, QUANTITY_RULE, readDecimal } from "../domain/fields.ts";
import { uuid7 } from "../domain/ids.ts";
import { maskSecret } from "../domain/keys.ts";
import type { AuditEntry, EventPatch, Store, UsageEvent } from "../store/store.ts";
import type { IngestService } from "./ingest-service.ts";

/** `POST /usage` as the surface hands it over: types checked, decimals still raw. */
export interface CreateUsageRecordInput {
  api_name: string;
  endpoint: string;
  units_used: unknown;
  cost_usd: unknown;
  api_key_used?: string | null;
  /** the request's Idempotency-Key header: a retry with the same key counts once */
  idempotencyKey?: string;
}

/** `PUT /usage/{id}`: a partial correction. */
export interface UpdateUsageRecordInput {
  units_used?: unknown;
  cost_usd?: unknown;
  status_active?: boolean;
}

/** Corrections and deletions of usage records are for account admins (and the operator). */
export function requireUsageLogAdmin(p: Principal): void {
  authorize(p, "change", "usage_record");
}

const recordNotFound = () => new DomainError("NOT_FOUND", "Usage record not found");

/**
 * The usage log's write verbs (seed 001). A record is an ordinary usage event of the key's user
 * and key, so it flows into every total; corrections go through the store's atomic
 * update/delete, which move the rollups and write the audit entry in one transaction.
 */
export class UsageLogService {
  constructor(
    private readonly store: Store,
    private readonly ingest: IngestService,
    private readonly auth: Authenticator,
    private readonly now: () => number,
  ) {}

  async createRecord(p: Principal, input: CreateUsageRecordInput): Promise<UsageEvent> {
    if (p.kind !== "user") {
      throw new DomainError("FORBIDDEN", "A usage record belongs to a user: log it with a user's key");
    }
    const quantity = readDecimal(input.units_used, ["body", "units_used"], QUANTITY_RULE);
    const cost = readDecimal(input.cost_usd, ["body", "cost_usd"], COST_RULE);
    const apiKeyUsed = await this.storedKeyText(input.api_key_used);
    const eventId =
      input.idempotencyKey === undefined
        ? randomUUID()
        : USAGE_LOG_IDEMPOTENCY_NAMESPACE + input.idempotencyKey;
    const { event, outcome } = await this.ingest.recordOne(
      {
        eventId,
        accountId: p.accountId,
        ts: this.now(),
        userId: p.userId,
        keyId: p.keyId,
        modelId: input.api_name,
        apiName: input.api_name,
        endpoint: input.endpoint,
        quantity,
        cost,
        currency: "USD",
        tokensPrompt: 0,
        tokensCompletion: 0,
        metadata: null,
        apiKeyUsed,
      },
      { allowUnknownModel: true, unitPriceFromCost: true },
    );
    if (outcome.status === "inserted") return event;
    return this.replayed(p, outcome.usageId);
  }

  async updateRecord(p: Principal, usageId: string, input: UpdateUsageRecordInput): Promise<UsageEvent> {
    requireUsageLogAdmin(p);
    const current = await this.find(p, usageId);
    authorize(p, "change", "usage_record", current, { notFound: recordNotFound });
    const patch: EventPatch = {};
    // a record priced per meter has one quantity and cost per meter: a single new number cannot
    // say how it splits between them (delete the record and record it again instead)
    if (current.meters && (input.units_used !== undefined || input.cost_usd !== undefined)) {
      throw DomainError.validation(
        ["body", input.units_used !== undefined ? "units_used" : "cost_usd"],
        "this record is priced per meter: only status_active can change (or delete it and record it again)",
      );
    }
    if (input.units_used !== undefined)
      patch.quantity = readDecimal(input.units_used, ["body", "units_used"], QUANTITY_RULE);
    if (input.cost_usd !== undefined)
      patch.cost = readDecimal(input.cost_usd, ["body", "cost_usd"], COST_RULE);
    if (input.status_active !== undefined) patch.statusActive = input.status_active;
    if (patch.quantity !== undefined || patch.cost !== undefined) {
      // the unit price follows the corrected values, as it does for a new record; the store derives
      // it from the row it locked, so concurrent corrections cannot leave a stale price
      patch.repriceFromCost = true;
    }
    const updated = await this.store.updateEvent(
      current.accountId,
      usageId,
      patch,
      this.audit(p, current, "update"),
    );
    if (!updated) throw recordNotFound();
    return updated;
  }

  async deleteRecord(p: Principal, usageId: string): Promise<void> {
    requireUsageLogAdmin(p);
    const current = await this.find(p, usageId);
    authorize(p, "change", "usage_record", current, { notFound: recordNotFound });
    const deleted = await this.store.deleteEvent(
      current.accountId,
      usageId,
      this.audit(p, current, "delete"),
    );
    if (!deleted) throw recordNotFound();
  }

  /** A live key's secret is never stored in clear: prefix and last four characters only. */
  private async storedKeyText(value: string | null | undefined): Promise<string | null> {
    if (value === undefined || value === null) return null;
    return (await this.auth.isLiveSecret(value)) ? maskSecret(value) : value;
  }

  /** The record first stored under a retried Idempotency-Key, if it is still the caller's. */
  private async replayed(p: UserPrincipal, usageId: string): Promise<UsageEvent> {
    const first = await this.store.getEvent(p.accountId, usageId);
    if (!first || first.userId !== p.userId) {
      throw new DomainError("CONFLICT", "This Idempotency-Key was already used");
    }
    return first;
  }

  /** Admin scope: the caller's own account (other accounts' ids are simply not found). */
  private async find(p: Principal, usageId: string): Promise<UsageEvent> {
    const event =
      p.kind === "root"
        ? await this.store.findEventByUsageId(usageId)
        : await this.store.getEvent(p.accountId, usageId);
    if (!event) throw recordNotFound();
    return event;
  }

  private audit(
    p: Principal,
    event: UsageEvent,
    action: AuditEntry["action"],
  ): Omit<AuditEntry, "before" | "after"> {
    return {
      id: uuid7(),
      accountId: event.accountId,
      usageId: event.usageId,
      action,
      actorKeyId: p.keyId,
      actorUserId: p.kind === "user" ? p.userId : null,
      at: this.now(),
    };
  }
}
