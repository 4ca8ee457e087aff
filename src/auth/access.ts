import { DomainError } from "../domain/errors.ts";
import type { Principal } from "./principal.ts";

/**
 * The access policy: who (the operator's root key, an account admin, a member) may read, create
 * or change (update, delete) what. Every service asks here; "what may a member see" is answered
 * by the MEMBER column of POLICY and nowhere else. A new resource is one row.
 */
export type AccessRole = "root" | "admin" | "member";
export type Action = "read" | "create" | "change";

/**
 * How far a role reaches: `all` accounts, its own `account`, only what its `own` user owns
 * (its records, its key, itself), or `none`.
 */
export type Reach = "all" | "account" | "own" | "none";

interface Row {
  /** the name used in "X not found" */
  label: string;
  read: Record<AccessRole, Reach>;
  create: Record<AccessRole, Reach>;
  change: Record<AccessRole, Reach>;
  /** the FORBIDDEN message, when a role's reach is not enough */
  refusal: Partial<Record<Action, string>>;
}

const ROOT_ONLY: Record<AccessRole, Reach> = { root: "all", admin: "none", member: "none" };
const ADMINS: Record<AccessRole, Reach> = { root: "all", admin: "account", member: "none" };
const ACCOUNT: Record<AccessRole, Reach> = { root: "all", admin: "account", member: "account" };
const OWN: Record<AccessRole, Reach> = { root: "all", admin: "account", member: "own" };
const EVERYONE = ACCOUNT;

const NEEDS_ROOT = "This operation needs the operator (root) key";
const NEEDS_ADMIN = "This operation needs an account admin key";
const operator = { create: NEEDS_ROOT, change: NEEDS_ROOT };

export const POLICY = {
  account: { label: "account", read: ACCOUNT, create: ROOT_ONLY, change: ROOT_ONLY, refusal: operator },
  user: {
    label: "user",
    read: OWN,
    create: ADMINS,
    change: ADMINS,
    refusal: { read: NEEDS_ADMIN, create: NEEDS_ADMIN, change: NEEDS_ADMIN },
  },
  key: {
    label: "key",
    read: OWN,
    create: ADMINS,
    change: ADMINS,
    refusal: { read: NEEDS_ADMIN, create: NEEDS_ADMIN, change: NEEDS_ADMIN },
  },
  /** a usage event, or a record of the usage log: created by any key of the account, corrected by admins */
  usage_record: {
    label: "usage record",
    read: OWN,
    create: ACCOUNT,
    change: ADMINS,
    refusal: {
      read: "Only an account admin or the user itself may read these records",
      change: "Only an account admin may change or delete usage records",
    },
  },
  audit: {
    label: "audit",
    read: ADMINS,
    create: ROOT_ONLY,
    change: ROOT_ONLY,
    refusal: { read: NEEDS_ADMIN },
  },
  /** usage totals and time series of a whole account (the workspace usage API) */
  account_usage: {
    label: "account",
    read: ADMINS,
    create: ROOT_ONLY,
    change: ROOT_ONLY,
    refusal: { read: NEEDS_ADMIN },
  },
  /** what the presenting key sees of itself and its account (seed 003): an account key's own */
  key_stats: {
    label: "account",
    read: { root: "none", admin: "own", member: "own" },
    create: ROOT_ONLY,
    change: ROOT_ONLY,
    refusal: { read: "Key usage statistics need an account key; the root key has none" },
  },
  /** one request admitted against the account's plan windows (`POST /v1/limits/check`) */
  rate_limit: { label: "account", read: ACCOUNT, create: ACCOUNT, change: ROOT_ONLY, refusal: operator },
  model: { label: "model", read: EVERYONE, create: ROOT_ONLY, change: ROOT_ONLY, refusal: operator },
  /** the gateway's upstream servers: where they are is the operator's business only */
  upstream: {
    label: "upstream",
    read: ROOT_ONLY,
    create: ROOT_ONLY,
    change: ROOT_ONLY,
    refusal: { read: NEEDS_ROOT, ...operator },
  },
  plan: { label: "plan", read: ACCOUNT, create: ROOT_ONLY, change: ROOT_ONLY, refusal: operator },
  license: { label: "license", read: ACCOUNT, create: ROOT_ONLY, change: ROOT_ONLY, refusal: operator },
  subscription: {
    label: "subscription",
    read: ACCOUNT,
    create: ROOT_ONLY,
    change: ROOT_ONLY,
    refusal: operator,
  },
  payment: { label: "payment", read: ACCOUNT, create: ROOT_ONLY, change: ROOT_ONLY, refusal: operator },
  // wave 2: each resource is one row
  invoice: {
    label: "invoice",
    read: ADMINS,
    create: ROOT_ONLY,
    change: ROOT_ONLY,
    refusal: { read: NEEDS_ADMIN, ...operator },
  },
  webhook: {
    label: "webhook",
    read: ADMINS,
    create: ADMINS,
    change: ADMINS,
    refusal: { read: NEEDS_ADMIN, create: NEEDS_ADMIN, change: NEEDS_ADMIN },
  },
  alert: {
    label: "alert",
    read: ADMINS,
    create: ADMINS,
    change: ADMINS,
    refusal: { read: NEEDS_ADMIN, create: NEEDS_ADMIN, change: NEEDS_ADMIN },
  },
  budget: {
    label: "budget",
    read: ACCOUNT,
    create: ADMINS,
    change: ADMINS,
    refusal: { create: NEEDS_ADMIN, change: NEEDS_ADMIN },
  },
  /** a one-time dashboard link that signs someone in as an account or user: the operator's to give */
  portal_session: {
    label: "portal session",
    read: ROOT_ONLY,
    create: ROOT_ONLY,
    change: ROOT_ONLY,
    refusal: { read: NEEDS_ROOT, ...operator },
  },
} satisfies Record<string, Row>;

export type Resource = keyof typeof POLICY;

/** What a request is about: its account, and the user owning it where there is one. */
export interface Target {
  accountId: string | null;
  userId?: string | null;
}

/** Why a principal may not: another account's thing (not found), not its own, or too low a role. */
export type Verdict = "allowed" | "other_account" | "not_owner" | "forbidden";

export function roleOf(p: Principal): AccessRole {
  return p.kind === "root" ? "root" : p.role;
}

export function reachOf(p: Principal, action: Action, resource: Resource): Reach {
  return (POLICY[resource] as Row)[action][roleOf(p)];
}

/** The verdict for `target`; without a target, whether the role may act on this kind of thing at all. */
export function decide(p: Principal, action: Action, resource: Resource, target?: Target): Verdict {
  const reach = reachOf(p, action, resource);
  if (reach === "all") return "allowed";
  if (p.kind === "root") return "forbidden";
  // another account's things are not found before any role is looked at: their existence does not leak
  if (target && target.accountId !== p.accountId) return "other_account";
  if (reach === "none") return "forbidden";
  if (reach === "own" && target && target.userId !== undefined && target.userId !== p.userId) {
    return "not_owner";
  }
  return "allowed";
}

export interface AuthorizeOptions {
  /** the error for another account's thing; default `<label> not found` */
  notFound?: () => DomainError;
  /** a thing of the account that is not the caller's own answers not found too, rather than forbidden */
  hideNotOwned?: boolean;
}

/** Throws NOT_FOUND or FORBIDDEN unless `decide` allows. */
export function authorize(
  p: Principal,
  action: Action,
  resource: Resource,
  target?: Target,
  options: AuthorizeOptions = {},
): void {
  const verdict = decide(p, action, resource, target);
  if (verdict === "allowed") return;
  const row = POLICY[resource] as Row;
  const notFound = options.notFound ?? (() => DomainError.notFound(row.label));
  if (verdict === "other_account" || (verdict === "not_owner" && options.hideNotOwned)) throw notFound();
  throw new DomainError("FORBIDDEN", row.refusal[action] ?? NEEDS_ADMIN);
}

/** Whether `decide` allows. */
export function can(p: Principal, action: Action, resource: Resource, target?: Target): boolean {
  return decide(p, action, resource, target) === "allowed";
}

/**
 * What a listing covers for a principal: every account (the root key then names one), its own
 * account, or its own user's things within it. FORBIDDEN when the role reaches none.
 */
export type ListScope =
  | { reach: "all" }
  | { reach: "account"; accountId: string }
  | { reach: "own"; accountId: string; userId: string };

export function listScope(p: Principal, resource: Resource): ListScope {
  authorize(p, "read", resource);
  const reach = reachOf(p, "read", resource);
  if (p.kind === "root" || reach === "all") return { reach: "all" };
  if (reach === "own") return { reach: "own", accountId: p.accountId, userId: p.userId };
  return { reach: "account", accountId: p.accountId };
}
