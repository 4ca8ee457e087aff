import { pick, query, sql } from "./sql.ts";
import type { Tables } from "./tables.ts";

/**
 * Webhook endpoints, the outbox and its delivery log, alert rules and firings (issue 17,
 * docs/decisions/0014). The outbox statements carry the leases that let several instances
 * deliver each message once: a claim stamps a token on due rows (PostgreSQL skips rows another
 * claimer holds locked), and a completion changes a row only while its token still holds.
 */

type EndpointRow = Tables["webhook_endpoints"];
type MessageRow = Tables["webhook_messages"];
type AttemptRow = Omit<Tables["webhook_attempts"], "id">;
type RuleRow = Tables["alert_rules"];
type FiringRow = Tables["alert_firings"];

const ENDPOINT_COLUMNS = [
  "id",
  "account_id",
  "url",
  "events",
  "secret",
  "previous_secret",
  "previous_secret_expires_at",
  "disabled_at",
  "disabled_reason",
  "failing_since",
  "created_at",
] as const;

export const insertEndpoint = query((db, r: EndpointRow) =>
  db.insertInto("webhook_endpoints").values(pick(r, ENDPOINT_COLUMNS)),
);

export const endpointById = query((db, p: { id: string }) =>
  db.selectFrom("webhook_endpoints").selectAll().where("id", "=", p.id),
);

/**
 * The enabled endpoints that may hear a message of `accountId`: the account's own and the
 * operator's (no account); for a message of no account, the operator's only. Both halves are read
 * through the (account_id, ...) index, so the cost grows with the listeners, not the table.
 * It only narrows: `subscribers` (notify/alert-evaluation.ts) decides who hears a message, so
 * this query may keep an endpoint that rule drops, never drop one it keeps.
 */
export const enabledEndpointsHearing = query((db, p: { accountId: string | null }) =>
  db
    .selectFrom("webhook_endpoints")
    .selectAll()
    .where((eb) =>
      p.accountId === null
        ? eb("account_id", "is", null)
        : eb.or([eb("account_id", "is", null), eb("account_id", "=", p.accountId)]),
    )
    .where("disabled_at", "is", null)
    .orderBy("created_at")
    .orderBy("id"),
);

/** Endpoints of one account (root endpoints have none), in creation order from the cursor. */
export const endpointsOfAccountPage = query(
  (db, p: { accountId: string; afterCreatedAt: number; afterId: string; limit: number }) =>
    db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("account_id", "=", p.accountId)
      .where(sql<boolean>`(created_at, id) > (${p.afterCreatedAt}, ${p.afterId})`)
      .orderBy("created_at")
      .orderBy("id")
      .limit(p.limit),
);

/** Every endpoint (the root's list), in creation order from the cursor. */
export const endpointsPage = query((db, p: { afterCreatedAt: number; afterId: string; limit: number }) =>
  db
    .selectFrom("webhook_endpoints")
    .selectAll()
    .where(sql<boolean>`(created_at, id) > (${p.afterCreatedAt}, ${p.afterId})`)
    .orderBy("created_at")
    .orderBy("id")
    .limit(p.limit),
);

export const setEndpointSecrets = query(
  (db, p: { id: string; secret: string; previous: string | null; previousExpiresAt: number | null }) =>
    db
      .updateTable("webhook_endpoints")
      .set({ secret: p.secret, previous_secret: p.previous, previous_secret_expires_at: p.previousExpiresAt })
      .where("id", "=", p.id),
);

// SQLite runs without foreign-key enforcement, so a delete names every table it empties
export const deleteAttemptsOfEndpoint = query((db, p: { id: string }) =>
  db.deleteFrom("webhook_attempts").where("endpoint_id", "=", p.id),
);
export const deleteMessagesOfEndpoint = query((db, p: { id: string }) =>
  db.deleteFrom("webhook_messages").where("endpoint_id", "=", p.id),
);
export const deleteEndpoint = query((db, p: { id: string }) =>
  db.deleteFrom("webhook_endpoints").where("id", "=", p.id).returning("id"),
);

const MESSAGE_COLUMNS = [
  "id",
  "endpoint_id",
  "account_id",
  "type",
  "body",
  "created_at",
  "status",
  "next_attempt_at",
] as const;

/** An outbox row; a message id written twice (the same firing seen by two instances) is written once. */
export const insertMessage = query((db, r: Pick<MessageRow, (typeof MESSAGE_COLUMNS)[number]>) =>
  db
    .insertInto("webhook_messages")
    .values(pick(r, MESSAGE_COLUMNS))
    .onConflict((oc) => oc.column("id").doNothing()),
);

export const messageById = query((db, p: { id: string }) =>
  db.selectFrom("webhook_messages").selectAll().where("id", "=", p.id),
);

/** An endpoint's messages, newest first (the delivery log), before the cursor. */
export const messagesOfEndpointPage = query(
  (db, p: { endpointId: string; beforeCreatedAt: number; beforeId: string; limit: number }) =>
    db
      .selectFrom("webhook_messages")
      .selectAll()
      .where("endpoint_id", "=", p.endpointId)
      .where(sql<boolean>`(created_at, id) < (${p.beforeCreatedAt}, ${p.beforeId})`)
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(p.limit),
);

/**
 * Leases due messages of enabled endpoints, oldest due first. PostgreSQL locks the rows it picks
 * and passes over rows another claimer has locked (SKIP LOCKED), so concurrent claims take
 * different rows; SQLite's single writer serializes the statement.
 */
export const claimMessages = query(
  (db, p: { now: number; limit: number; token: string; leaseUntil: number }, dialect) =>
    db
      .updateTable("webhook_messages")
      .set({ lease_token: p.token, lease_until: p.leaseUntil })
      .where("id", "in", (eb) =>
        eb
          .selectFrom("webhook_messages as m")
          .innerJoin("webhook_endpoints as e", "e.id", "m.endpoint_id")
          .select("m.id")
          .where("m.status", "=", "pending")
          .where("m.next_attempt_at", "<=", p.now)
          .where((w) => w.or([w("m.lease_until", "is", null), w("m.lease_until", "<=", p.now)]))
          .where("e.disabled_at", "is", null)
          .orderBy("m.next_attempt_at")
          .limit(p.limit)
          .$if(dialect === "postgres", (q) => q.forUpdate("m").skipLocked()),
      )
      .returningAll(),
);

export const insertAttempt = query((db, r: AttemptRow) =>
  db
    .insertInto("webhook_attempts")
    .values(
      pick(r, [
        "message_id",
        "endpoint_id",
        "attempt_number",
        "attempted_at",
        "status_code",
        "latency_ms",
        "response_excerpt",
        "error",
        "succeeded",
      ]),
    ),
);

/** Whether `token` still holds message `messageId`: the condition of every completion write. */
const leaseHeld = (p: { messageId: string; token: string }) =>
  sql<boolean>`EXISTS (SELECT 1 FROM webhook_messages WHERE id = ${p.messageId} AND lease_token = ${p.token})`;

type LeaseArgs = { endpointId: string; messageId: string; token: string };

export const endpointSucceeded = query((db, p: LeaseArgs) =>
  db
    .updateTable("webhook_endpoints")
    .set({ failing_since: null })
    .where("id", "=", p.endpointId)
    .where(leaseHeld(p)),
);

export const endpointFailed = query((db, p: LeaseArgs & { at: number }) =>
  db
    .updateTable("webhook_endpoints")
    .set({ failing_since: sql`COALESCE(failing_since, ${p.at})` })
    .where("id", "=", p.endpointId)
    .where(leaseHeld(p)),
);

export const endpointDisabled = query((db, p: LeaseArgs & { at: number; reason: string }) =>
  db
    .updateTable("webhook_endpoints")
    .set({
      failing_since: sql`COALESCE(failing_since, ${p.at})`,
      disabled_at: p.at,
      disabled_reason: p.reason,
    })
    .where("id", "=", p.endpointId)
    .where(leaseHeld(p)),
);

/** Applies an attempt's outcome and releases the lease; no row when the lease was lost. */
export const completeMessage = query(
  (
    db,
    p: {
      messageId: string;
      token: string;
      status: string;
      nextAttemptAt: number | null;
      scheduleStep: number | null;
      attemptNumber: number;
      attemptedAt: number;
    },
  ) =>
    db
      .updateTable("webhook_messages")
      .set({
        status: p.status,
        next_attempt_at: sql`COALESCE(${p.nextAttemptAt}, next_attempt_at)`,
        schedule_step: sql`COALESCE(${p.scheduleStep}, schedule_step)`,
        attempt_count: sql`CASE WHEN attempt_count > ${p.attemptNumber} THEN attempt_count ELSE ${p.attemptNumber} END`,
        last_attempt_at: p.attemptedAt,
        lease_token: null,
        lease_until: null,
      })
      .where("id", "=", p.messageId)
      .where("lease_token", "=", p.token)
      .returning("id"),
);

/**
 * A manual retry: due now; a message that is no longer pending gets exactly one more attempt
 * (its schedule at the last step). SET reads the row as it was, so `status` is the old one.
 */
export const retryMessage = query((db, p: { id: string; now: number; lastStep: number }) =>
  db
    .updateTable("webhook_messages")
    .set({
      schedule_step: sql`CASE WHEN status = 'pending' THEN schedule_step ELSE ${p.lastStep} END`,
      status: "pending",
      next_attempt_at: p.now,
    })
    .where("id", "=", p.id)
    .returning(["id", "status", "next_attempt_at"]),
);

/** An operator retrying says the receiver is back: its endpoint is enabled again. */
export const enableEndpointOfMessage = query((db, p: { id: string }) =>
  db
    .updateTable("webhook_endpoints")
    .set({ disabled_at: null, disabled_reason: null, failing_since: null })
    .where("id", "=", (eb) => eb.selectFrom("webhook_messages").select("endpoint_id").where("id", "=", p.id)),
);

/** The attempts of the messages of one delivery-log page (the same bounds as messagesOfEndpointPage). */
export const attemptsOfEndpointPage = query(
  (db, p: { endpointId: string; beforeCreatedAt: number; beforeId: string; limit: number }) =>
    db
      .selectFrom("webhook_attempts")
      .selectAll()
      .where("message_id", "in", (eb) =>
        eb
          .selectFrom("webhook_messages as wm")
          .select("wm.id")
          .where("wm.endpoint_id", "=", p.endpointId)
          .where(sql<boolean>`(wm.created_at, wm.id) < (${p.beforeCreatedAt}, ${p.beforeId})`)
          .orderBy("wm.created_at", "desc")
          .orderBy("wm.id", "desc")
          .limit(p.limit),
      )
      .orderBy("message_id")
      .orderBy("attempt_number")
      .orderBy("id"),
);

export const attemptsOfMessage = query((db, p: { id: string }) =>
  db
    .selectFrom("webhook_attempts")
    .selectAll()
    .where("message_id", "=", p.id)
    .orderBy("attempt_number")
    .orderBy("id"),
);

export const insertRule = query((db, r: RuleRow) =>
  db
    .insertInto("alert_rules")
    .values(
      pick(r, [
        "id",
        "account_id",
        "metric",
        "model_id",
        "period",
        "thresholds",
        "basis",
        "value",
        "created_at",
      ]),
    ),
);

export const ruleById = query((db, p: { id: string }) =>
  db.selectFrom("alert_rules").selectAll().where("id", "=", p.id),
);

export const rulesOfAccount = query((db, p: { accountId: string }) =>
  db
    .selectFrom("alert_rules")
    .selectAll()
    .where("account_id", "=", p.accountId)
    .orderBy("created_at")
    .orderBy("id"),
);

/** The accounts that have a rule: the periodic sweep's work list. */
export const accountsWithRules = query((db) => db.selectFrom("alert_rules").select("account_id").distinct());

export const deleteFiringsOfRule = query((db, p: { id: string }) =>
  db.deleteFrom("alert_firings").where("rule_id", "=", p.id),
);
export const deleteRule = query((db, p: { id: string }) =>
  db.deleteFrom("alert_rules").where("id", "=", p.id).returning("id"),
);

export const firingsOf = query((db, p: { ruleId: string; periodStart: number }) =>
  db
    .selectFrom("alert_firings")
    .selectAll()
    .where("rule_id", "=", p.ruleId)
    .where("period_start", "=", p.periodStart),
);

/** A firing; the second instance to record the same one records nothing. */
export const insertFiring = query((db, r: FiringRow) =>
  db
    .insertInto("alert_firings")
    .values(
      pick(r, ["rule_id", "period_start", "kind", "threshold", "fired_at", "value", "limit", "forecast_at"]),
    )
    .onConflict((oc) => oc.columns(["rule_id", "period_start", "kind", "threshold"]).doNothing()),
);
