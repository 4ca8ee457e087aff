import { authorize, listScope } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import { DomainError } from "../domain/errors.ts";
import { uuid7 } from "../domain/ids.ts";
import type {
  DeliveryAttemptRecord,
  NewOutboxMessage,
  OutboxMessageRecord,
  WebhookEndpointRecord,
} from "../store/notify-store.ts";
import type { Page, PageQuery, Store } from "../store/store.ts";
import { subscribers } from "./alert-evaluation.ts";
import {
  buildMessage,
  causedMessageId,
  type EventData,
  type EventType,
  isEventType,
  type MessageBody,
} from "./messages.ts";
import { LAST_STEP } from "./retry-policy.ts";
import { openSecret, sealSecret } from "./secret-box.ts";
import { generateSecret, rotateSecrets } from "./signing.ts";
import {
  checkEndpointUrl,
  type PrivateAddressPolicy,
  type ResolveHost,
  resolveWithSystem,
} from "./url-policy.ts";

export type { DeliveryAttemptRecord, OutboxMessageRecord, WebhookEndpointRecord };

export interface WebhookInput {
  url: string;
  events: string[];
  /** the root names an account (or none: the endpoint hears every account); an admin's is its own */
  account_id?: string | null;
}

export interface ListInput {
  limit: number;
  starting_after?: string;
}

export interface WebhookOptions {
  secretsKey: Buffer | null;
  privateAddresses: PrivateAddressPolicy;
  resolve?: ResolveHost;
}

/** The outbox rows of one event for everyone subscribed to it (empty when nobody is). */
export type Announce = <T extends EventType>(
  type: T,
  accountId: string | null,
  data: EventData[T],
  /** what happened, once: the rows' ids derive from it, so writing it twice writes it once */
  cause: string,
  at: number,
) => Promise<NewOutboxMessage[]>;

/** For services built without webhooks (tests of other things). */
export const ANNOUNCE_NOTHING: Announce = async () => [];

const notInList = () => DomainError.validation(["query", "starting_after"], "is not an item of this list");

/**
 * Webhook endpoints (DESIGN.md "Webhooks and alerts"): create (the secret shown once), list, read,
 * delete, rotate (both secrets sign for 24 h), test, the delivery log and manual retry; and
 * `announce`, which turns an event into the outbox rows its cause's transaction writes.
 */
export class WebhookService {
  private readonly resolve: ResolveHost;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    private readonly options: WebhookOptions,
  ) {
    this.resolve = options.resolve ?? resolveWithSystem;
  }

  readonly announce: Announce = async (type, accountId, data, cause, at) =>
    this.rowsFor(buildMessage(type, data, at), accountId, cause);

  /** The outbox rows of a built message: one per enabled endpoint subscribed to its type and account. */
  async rowsFor(message: MessageBody, accountId: string | null, cause: string): Promise<NewOutboxMessage[]> {
    const endpoints = await this.store.listWebhookEndpointsHearing(accountId);
    const listening = subscribers(
      endpoints.map((e) => ({
        id: e.id,
        accountId: e.accountId,
        events: e.events.filter(isEventType),
        disabled: e.disabledAt !== null,
      })),
      message.type,
      accountId,
    );
    const body = new TextDecoder().decode(message.body);
    return listening.map((e) => ({
      id: causedMessageId(cause, e.id),
      endpointId: e.id,
      accountId,
      type: message.type,
      body,
      createdAt: message.createdAt,
    }));
  }

  async create(
    p: Principal,
    input: WebhookInput,
  ): Promise<{ endpoint: WebhookEndpointRecord; secret: string }> {
    const accountId = p.kind === "root" ? (input.account_id ?? null) : (input.account_id ?? p.accountId);
    authorize(p, "create", "webhook", { accountId }, { notFound: () => DomainError.notFound("account") });
    if (accountId !== null && !(await this.store.getAccount(accountId)))
      throw DomainError.notFound("account");
    const events = readEvents(input.events);
    const url = await checkEndpointUrl(input.url, this.options.privateAddresses, this.resolve);
    const id = `wh_${uuid7()}`;
    const secret = generateSecret();
    const endpoint: WebhookEndpointRecord = {
      id,
      accountId,
      url: url.toString(),
      events,
      secret: sealSecret(secret, id, this.options.secretsKey),
      previousSecret: null,
      previousSecretExpiresAt: null,
      disabledAt: null,
      disabledReason: null,
      failingSince: null,
      createdAt: this.now(),
    };
    await this.store.createWebhookEndpoint(endpoint);
    return { endpoint, secret };
  }

  async list(p: Principal, input: ListInput & { account_id?: string }): Promise<Page<WebhookEndpointRecord>> {
    const scope = listScope(p, "webhook");
    // the root lists one account's endpoints when it names one, else all (root endpoints included)
    const accountId = scope.reach === "all" ? (input.account_id ?? null) : scope.accountId;
    if (scope.reach !== "all" && input.account_id !== undefined && input.account_id !== accountId) {
      throw DomainError.notFound("account");
    }
    let q: PageQuery = { limit: input.limit, after: null };
    if (input.starting_after !== undefined) {
      const item = await this.store.getWebhookEndpoint(input.starting_after);
      if (!item || (accountId !== null && item.accountId !== accountId)) throw notInList();
      q = { limit: input.limit, after: { createdAt: item.createdAt, id: item.id } };
    }
    return this.store.listWebhookEndpointPage(accountId, q);
  }

  async get(p: Principal, id: string): Promise<WebhookEndpointRecord> {
    return this.endpoint(p, "read", id);
  }

  async delete(p: Principal, id: string): Promise<void> {
    await this.endpoint(p, "change", id);
    if (!(await this.store.deleteWebhookEndpoint(id))) throw DomainError.notFound("webhook");
  }

  /** A new secret, shown once; the previous one keeps signing for 24 hours. */
  async rotate(p: Principal, id: string): Promise<{ endpoint: WebhookEndpointRecord; secret: string }> {
    const e = await this.endpoint(p, "change", id);
    const key = this.options.secretsKey;
    const now = this.now();
    const next = rotateSecrets(
      { current: openSecret(e.secret, e.id, key), previous: null, previousExpiresAt: null },
      now,
    );
    const sealed = sealSecret(next.current, e.id, key);
    const previous = next.previous === null ? null : sealSecret(next.previous, e.id, key);
    await this.store.setWebhookSecrets(e.id, sealed, previous, next.previousExpiresAt);
    return {
      endpoint: {
        ...e,
        secret: sealed,
        previousSecret: previous,
        previousSecretExpiresAt: next.previousExpiresAt,
      },
      secret: next.current,
    };
  }

  /** Queues one `webhook.test` message to this endpoint alone; the worker sends it within a second. */
  async test(p: Principal, id: string): Promise<OutboxMessageRecord> {
    const e = await this.endpoint(p, "change", id);
    const at = this.now();
    const message = buildMessage("webhook.test", { account_id: e.accountId, endpoint_id: e.id }, at);
    const row: NewOutboxMessage = {
      id: message.id,
      endpointId: e.id,
      accountId: e.accountId,
      type: message.type,
      body: new TextDecoder().decode(message.body),
      createdAt: at,
    };
    await this.store.enqueueMessages([row]);
    return (await this.store.getOutboxMessage(row.id))!;
  }

  /** The endpoint's messages, newest first, each with its attempts. */
  async deliveries(
    p: Principal,
    id: string,
    input: ListInput,
  ): Promise<{
    data: { message: OutboxMessageRecord; attempts: DeliveryAttemptRecord[] }[];
    hasMore: boolean;
  }> {
    await this.endpoint(p, "read", id);
    let before: { createdAt: number; id: string } | null = null;
    if (input.starting_after !== undefined) {
      const m = await this.store.getOutboxMessage(input.starting_after);
      if (!m || m.endpointId !== id) throw notInList();
      before = { createdAt: m.createdAt, id: m.id };
    }
    const { messages, attempts } = await this.store.listDeliveries(id, { limit: input.limit + 1, before });
    const page = messages.slice(0, input.limit);
    return {
      data: page.map((message) => ({
        message,
        attempts: attempts.filter((a) => a.messageId === message.id),
      })),
      hasMore: messages.length > input.limit,
    };
  }

  /**
   * Manual retry of one delivery: due now. A failed or delivered message gets one more attempt; a
   * pending one is brought forward. Enables its endpoint again (the operator says the receiver is back).
   */
  async retry(p: Principal, messageId: string): Promise<OutboxMessageRecord> {
    const m = await this.store.getOutboxMessage(messageId);
    if (!m) throw DomainError.notFound("delivery");
    await this.endpoint(p, "change", m.endpointId, () => DomainError.notFound("delivery"));
    if (!(await this.store.retryDelivery(messageId, this.now(), LAST_STEP)))
      throw DomainError.notFound("delivery");
    return (await this.store.getOutboxMessage(messageId))!;
  }

  private async endpoint(
    p: Principal,
    action: "read" | "change",
    id: string,
    notFound = () => DomainError.notFound("webhook"),
  ): Promise<WebhookEndpointRecord> {
    const e = await this.store.getWebhookEndpoint(id);
    if (!e) throw notFound();
    authorize(p, action, "webhook", { accountId: e.accountId }, { notFound });
    return e;
  }
}

/** `events`: known types, at least one, each once; a refusal names the item. */
function readEvents(raw: unknown): EventType[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw DomainError.validation(["body", "events"], "must list at least one event type");
  }
  const out: EventType[] = [];
  raw.forEach((t, i) => {
    if (!isEventType(t))
      throw DomainError.validation(["body", "events", i], `unknown event type ${JSON.stringify(t)}`);
    if (!out.includes(t)) out.push(t);
  });
  return out;
}
