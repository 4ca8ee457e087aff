import type { Command } from "commander";
import { ACCOUNT, changeCommand, changes, getCommand, listCommand } from "./command-shapes.ts";
import {
  commandGroup,
  extraFields,
  type Flag,
  intFlag,
  limitFlag,
  listFlag,
  read,
  remoteCommand,
  send,
  show,
  showSecret,
  table,
  UsageError,
} from "./context.ts";
import { registerInvoiceCommands } from "./invoices.ts";
import { registerNotifyCommands } from "./notify.ts";

/**
 * Operator commands over the native API (README "Operator API"): for each resource `create`,
 * `list` and `get`, and the changes people make (update, disable, rotate, end, refund).
 */

const enc = encodeURIComponent;
const DATA_HELP = 'extra body fields as a JSON object, e.g. \'{"plan_id":"pro"}\'';
const DATA: Flag = { flags: "--data <json>", description: DATA_HELP };

/** `--at`: an instant, `now` (the default) or `never` (no end: reopens). */
function endsAt(at: string | undefined): string | null {
  if (at === undefined || at === "now") return new Date().toISOString();
  if (at === "never") return null;
  return at;
}

function billingMode(value: string | undefined): string | undefined {
  if (value !== undefined && value !== "postpaid" && value !== "prepaid") {
    throw new UsageError("--billing-mode must be postpaid or prepaid");
  }
  return value;
}

function role(value: string | undefined): string | undefined {
  if (value !== undefined && value !== "admin" && value !== "member") {
    throw new UsageError("--role must be admin or member");
  }
  return value;
}

export function registerResourceCommands(program: Command): void {
  registerAccounts(program);
  registerUsers(program);
  registerKeys(program);
  registerModels(program);
  registerPlans(program);
  registerLicenses(program);
  registerSubscriptions(program);
  registerPayments(program);
  registerAudit(program);
  registerInvoiceCommands(program);
  registerNotifyCommands(program);
}

function registerAccounts(program: Command): void {
  const accounts = commandGroup(program, "accounts", "customer accounts");
  remoteCommand<{ name: string; plan?: string; data?: string }>(accounts, {
    name: "create",
    description: "create an account (root key)",
    flags: [
      { flags: "--name <name>", description: "the account's name", required: true },
      { flags: "--plan <id>", description: "its plan" },
      DATA,
    ],
    examples: ["tally accounts create --name Acme --json | jq -r .id"],
    run: async (ctx, opts) => {
      const body = {
        name: opts.name,
        ...(opts.plan ? { plan_id: opts.plan } : {}),
        ...extraFields(opts.data),
      };
      show(ctx, await send(ctx, "POST", "/v1/accounts", body));
      return 0;
    },
  });
  listCommand<{ namePrefix?: string }>(accounts, {
    description: "list accounts in creation order (the root key: all; an account's key: its own)",
    flags: [{ flags: "--name-prefix <text>", description: "only names that start with this" }],
    examples: [
      "tally accounts list",
      "tally accounts list --name-prefix Acme --all --json | jq -r '.data[].id'",
    ],
    path: () => "/v1/accounts",
    query: (o) => ({ name_prefix: o.namePrefix }),
    columns: ["id", "name", "is_enabled", "plan_id", "billing_timezone", "created_at"],
  });
  getCommand(accounts, {
    what: "an account",
    example: "tally accounts get $ACCOUNT",
    path: (id) => `/v1/accounts/${enc(id)}`,
  });
  changeCommand<{ name?: string; timezone?: string; billingMode?: string; data?: string }>(accounts, {
    name: "update",
    description: "rename an account or change how it is billed (root key)",
    flags: [
      { flags: "--name <name>", description: "its new name" },
      { flags: "--timezone <zone>", description: "IANA zone of its billing periods, e.g. Europe/Berlin" },
      { flags: "--billing-mode <mode>", description: "postpaid or prepaid" },
      DATA,
    ],
    example: "tally accounts update $ACCOUNT --name 'Acme GmbH' --timezone Europe/Berlin",
    method: "PATCH",
    path: (id) => `/v1/accounts/${enc(id)}`,
    body: (o) =>
      changes({
        name: o.name,
        billing_timezone: o.timezone,
        billing_mode: billingMode(o.billingMode),
        ...extraFields(o.data),
      }),
  });
  for (const [name, enabled] of [
    ["disable", false],
    ["enable", true],
  ] as const) {
    changeCommand(accounts, {
      name,
      description: enabled
        ? "enable an account again: its keys are accepted again (root key)"
        : "disable an account: its keys are refused on every surface until enabled (root key)",
      example: `tally accounts ${name} $ACCOUNT`,
      method: "PATCH",
      path: (id) => `/v1/accounts/${enc(id)}`,
      body: () => ({ is_enabled: enabled }),
    });
  }
}

function registerUsers(program: Command): void {
  const users = commandGroup(program, "users", "users of an account");
  remoteCommand<{ account: string; username: string; role: string; nodeId?: string; data?: string }>(users, {
    name: "create",
    description: "create a user in an account (root, or the account's admin)",
    flags: [
      ACCOUNT,
      { flags: "--username <name>", description: "the user's name", required: true },
      { flags: "--role <role>", description: "admin or member", default: "member" },
      { flags: "--node-id <id>", description: "an external id" },
      DATA,
    ],
    examples: ["tally users create --account $ACCOUNT --username alice --role admin"],
    run: async (ctx, opts) => {
      const body = {
        username: opts.username,
        role: role(opts.role),
        ...(opts.nodeId ? { node_id: opts.nodeId } : {}),
        ...extraFields(opts.data),
      };
      show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/users`, body));
      return 0;
    },
  });
  listCommand<{ account: string }>(users, {
    description: "list an account's users in creation order",
    flags: [ACCOUNT],
    examples: ["tally users list --account $ACCOUNT", "tally users list --account $ACCOUNT --all --json"],
    path: (o) => `/v1/accounts/${enc(o.account)}/users`,
    columns: ["id", "username", "role", "node_id", "created_at"],
  });
  getCommand(users, {
    what: "a user",
    example: "tally users get $USER",
    path: (id) => `/v1/users/${enc(id)}`,
  });
  changeCommand<{ username?: string; role?: string }>(users, {
    name: "update",
    description: "rename a user or change its role (root, or the account's admin)",
    flags: [
      { flags: "--username <name>", description: "its new name" },
      { flags: "--role <role>", description: "admin or member" },
    ],
    example: "tally users update $USER --role admin",
    method: "PATCH",
    path: (id) => `/v1/users/${enc(id)}`,
    body: (o) => changes({ username: o.username, role: role(o.role) }),
  });
}

function registerKeys(program: Command): void {
  const keys = commandGroup(program, "keys", "API keys");
  remoteCommand<{ user: string; label?: string }>(keys, {
    name: "create",
    description: "issue a key for a user; its secret is printed once and never again",
    flags: [
      { flags: "--user <id>", description: "the user the key belongs to", required: true },
      { flags: "--label <label>", description: "e.g. 'Production Key' (default: Key N)" },
    ],
    examples: ["KEY=$(tally keys create --user $USER --label CI --json | jq -r .key)"],
    run: async (ctx, opts) => {
      const body = opts.label ? { label: opts.label } : {};
      showSecret(ctx, await send(ctx, "POST", `/v1/users/${enc(opts.user)}/keys`, body), "key");
      return 0;
    },
  });
  listCommand<{ user?: string; account?: string }>(keys, {
    description: "list a user's or an account's keys in creation order (never a secret)",
    flags: [
      { flags: "--user <id>", description: "the user's keys (with --account: only this user's)" },
      { flags: "--account <id>", description: "the account's keys" },
    ],
    examples: ["tally keys list --account $ACCOUNT", "tally keys list --user $USER --json"],
    path: (o) => {
      if (o.account) return `/v1/accounts/${enc(o.account)}/keys`;
      if (o.user) return `/v1/users/${enc(o.user)}/keys`;
      throw new UsageError("pass --user or --account");
    },
    query: (o) => ({ user_id: o.account ? o.user : undefined }),
    columns: ["id", "user_id", "label", "prefix", "created_at", "last_used_at", "revoked_at"],
  });
  getCommand(keys, { what: "a key", example: "tally keys get $KEY_ID", path: (id) => `/v1/keys/${enc(id)}` });
  changeCommand<{ label?: string }>(keys, {
    name: "update",
    description: "relabel a key",
    flags: [{ flags: "--label <label>", description: "its new label" }],
    example: "tally keys update $KEY_ID --label 'Production Key'",
    method: "PATCH",
    path: (id) => `/v1/keys/${enc(id)}`,
    body: (o) => changes({ label: o.label }),
  });
  changeCommand<{ grace?: string }>(keys, {
    name: "rotate",
    description: "issue a new secret for the same key, printed once; the old one stops now or after --grace",
    flags: [
      { flags: "--grace <seconds>", description: "the old secret still works this long (at most 30 days)" },
    ],
    example: "tally keys rotate $KEY_ID --grace 3600 --json | jq -r .key",
    method: "POST",
    path: (id) => `/v1/keys/${enc(id)}/rotate`,
    body: (o) => (o.grace === undefined ? {} : { grace_seconds: intFlag("--grace", o.grace) }),
    output: (ctx, answer) => showSecret(ctx, answer, "key"),
  });
  remoteCommand(keys, {
    name: "revoke",
    description: "revoke a key: it is refused from then on",
    argument: ["<id>", "the key's id"],
    examples: ["tally keys revoke key_0193..."],
    run: async (ctx, _opts, id) => {
      await send(ctx, "DELETE", `/v1/keys/${enc(id)}`);
      ctx.out(ctx.json ? JSON.stringify({ id, revoked: true }) : `key ${id} revoked`);
      return 0;
    },
  });
}

interface ModelRow {
  id: string;
  unit?: string;
  kind?: string;
  reporting_enabled?: boolean;
  unit_price?: number;
  currency?: string;
  prices?: { unit_price: number; currency: string; effective_from: string }[];
}

interface ModelFlags {
  id: string;
  unit: string;
  kind: string;
  unitPrice: string;
  currency?: string;
  effectiveFrom?: string;
  reporting: boolean;
  data?: string;
}

function registerModels(program: Command): void {
  const models = commandGroup(program, "models", "metered models and their prices");
  remoteCommand<ModelFlags>(models, {
    name: "upsert",
    description: "create or update a model; a new unit price adds a price version from --effective-from",
    flags: [
      { flags: "--id <id>", description: "e.g. flux-1-dev", required: true },
      {
        flags: "--unit <unit>",
        description: "billing unit: image, token, second, request, ...",
        required: true,
      },
      {
        flags: "--kind <kind>",
        description: "chat, embedding, image, video, audio, tts or other",
        required: true,
      },
      { flags: "--unit-price <decimal>", description: "exact decimal, e.g. 0.0043", required: true },
      { flags: "--currency <code>", description: "ISO 4217 (default USD)" },
      { flags: "--effective-from <instant>", description: "ISO 8601 (default now)" },
      { flags: "--no-reporting", description: "refuse license usage reports for this model" },
      DATA,
    ],
    examples: [
      "tally models upsert --id flux-1-dev --unit image --kind image --unit-price 0.0043 \\\n" +
        "    --effective-from 2025-01-01T00:00:00Z",
    ],
    run: async (ctx, opts) => {
      const body = {
        id: opts.id,
        unit: opts.unit,
        kind: opts.kind,
        // as a string: the server reads it digit for digit
        unit_price: opts.unitPrice,
        ...(opts.currency ? { currency: opts.currency } : {}),
        ...(opts.effectiveFrom ? { effective_from: opts.effectiveFrom } : {}),
        ...(opts.reporting ? {} : { reporting_enabled: false }),
        ...extraFields(opts.data),
      };
      show(ctx, await send(ctx, "POST", "/v1/models", body));
      return 0;
    },
  });
  remoteCommand(models, {
    name: "list",
    description: "list models with their current price",
    examples: ["tally models list --json | jq '.[].id'"],
    run: async (ctx) => {
      const body = await read<unknown>(ctx, "/v1/models");
      // `{object: "list", data}` (OpenAI's shape, not paged); a bare array from older servers
      const list = (Array.isArray(body) ? body : ((body as { data?: unknown[] }).data ?? [])) as ModelRow[];
      if (ctx.json) {
        ctx.out(JSON.stringify(list));
        return 0;
      }
      const rows = list.map((m) => {
        const price = m.prices?.at(-1);
        return {
          id: m.id,
          unit: m.unit,
          kind: m.kind,
          reporting: m.reporting_enabled,
          unit_price: price?.unit_price ?? m.unit_price,
          currency: price?.currency ?? m.currency,
          since: price?.effective_from,
        };
      });
      ctx.out(table(rows, ["id", "unit", "kind", "reporting", "unit_price", "currency", "since"]));
      return 0;
    },
  });
  getCommand(models, {
    what: "a model with its price versions",
    example: "tally models get flux-1-dev --json | jq '.prices'",
    path: (id) => `/v1/models/${enc(id)}`,
  });
}

interface PlanFlags {
  id: string;
  rpm: string;
  rpd: string;
  validityDays: string;
  allow?: string;
  block?: string;
  included?: string[];
  data?: string;
}

function registerPlans(program: Command): void {
  const plans = commandGroup(program, "plans", "plans: rate limits, validity, model lists");
  remoteCommand<PlanFlags>(plans, {
    name: "upsert",
    description: "create or update a plan",
    flags: [
      { flags: "--id <id>", description: "e.g. pro", required: true },
      { flags: "--rpm <n>", description: "requests per minute, or 'unlimited'", required: true },
      { flags: "--rpd <n>", description: "requests per day, or 'unlimited'", required: true },
      {
        flags: "--validity-days <n>",
        description: "days a subscription lasts (-999999: unlimited)",
        default: "-999999",
      },
      { flags: "--allow <models>", description: "comma-separated allow list" },
      { flags: "--block <models>", description: "comma-separated block list" },
      { flags: "--included <model=quantity...>", description: "quantities included per model" },
      DATA,
    ],
    examples: ["tally plans upsert --id pro --rpm 600 --rpd unlimited --allow flux-1-dev,flux-tools"],
    run: async (ctx, opts) => {
      const included: Record<string, string> = {};
      for (const pair of opts.included ?? []) {
        const at = pair.indexOf("=");
        if (at < 1) throw new UsageError(`--included ${pair}: expected model=quantity`);
        included[pair.slice(0, at)] = pair.slice(at + 1);
      }
      const body = {
        id: opts.id,
        requests_per_minute: limitFlag("--rpm", opts.rpm),
        requests_per_day: limitFlag("--rpd", opts.rpd),
        validity_days: intFlag("--validity-days", opts.validityDays),
        ...(opts.allow !== undefined ? { model_whitelist: listFlag(opts.allow) } : {}),
        ...(opts.block !== undefined ? { model_blacklist: listFlag(opts.block) } : {}),
        ...(opts.included ? { included } : {}),
        ...extraFields(opts.data),
      };
      show(ctx, await send(ctx, "POST", "/v1/plans", body));
      return 0;
    },
  });
  listCommand(plans, {
    description: "list plans in creation order",
    examples: ["tally plans list"],
    path: () => "/v1/plans",
    columns: ["id", "requests_per_minute", "requests_per_day", "validity_days", "base_fee", "currency"],
  });
  getCommand(plans, { what: "a plan", example: "tally plans get pro", path: (id) => `/v1/plans/${enc(id)}` });
}

/** `end <id> --account`: a license or subscription stops at `--at` (default now). */
function endCommand(group: Command, what: string, collection: string): Command {
  return changeCommand<{ account: string; at?: string }>(group, {
    name: "end",
    description: `end a ${what} at --at (default now); --at never removes its end (root key)`,
    flags: [ACCOUNT, { flags: "--at <instant>", description: "ISO 8601, now (default) or never" }],
    example: `tally ${collection} end $ID --account $ACCOUNT --at 2026-12-31T23:59:59Z`,
    method: "PATCH",
    path: (id, o) => `/v1/accounts/${enc(o.account)}/${collection}/${enc(id)}`,
    body: (o) => ({ ends_at: endsAt(o.at) }),
  });
}

function registerLicenses(program: Command): void {
  const licenses = commandGroup(program, "licenses", "model licenses of accounts");
  remoteCommand<{ account: string; model: string; startsAt?: string; endsAt?: string }>(licenses, {
    name: "create",
    description: "license a model to an account from --starts-at until --ends-at",
    flags: [
      ACCOUNT,
      { flags: "--model <id>", description: "the model", required: true },
      { flags: "--starts-at <instant>", description: "ISO 8601 (default now)" },
      { flags: "--ends-at <instant>", description: "ISO 8601 (default: open-ended)" },
    ],
    examples: ["tally licenses create --account $ACCOUNT --model flux-1-dev"],
    run: async (ctx, opts) => {
      const body = {
        model_id: opts.model,
        ...(opts.startsAt ? { starts_at: opts.startsAt } : {}),
        ...(opts.endsAt ? { ends_at: opts.endsAt } : {}),
      };
      show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/licenses`, body));
      return 0;
    },
  });
  listCommand<{ account: string; model?: string }>(licenses, {
    description: "list an account's licenses in creation order",
    flags: [ACCOUNT, { flags: "--model <id>", description: "only this model's" }],
    examples: ["tally licenses list --account $ACCOUNT --model flux-1-dev"],
    path: (o) => `/v1/accounts/${enc(o.account)}/licenses`,
    query: (o) => ({ model_id: o.model }),
    columns: ["id", "model_id", "starts_at", "ends_at"],
  });
  getCommand<{ account: string }>(licenses, {
    what: "a license",
    flags: [ACCOUNT],
    example: "tally licenses get $LICENSE --account $ACCOUNT",
    path: (id, o) => `/v1/accounts/${enc(o.account)}/licenses/${enc(id)}`,
  });
  endCommand(licenses, "license", "licenses");
}

function registerSubscriptions(program: Command): void {
  const subscriptions = commandGroup(program, "subscriptions", "plan activations of accounts");
  remoteCommand<{ account: string; plan: string; activatedAt?: string }>(subscriptions, {
    name: "create",
    description: "activate a plan for an account (it becomes the current plan; history is kept)",
    flags: [
      ACCOUNT,
      { flags: "--plan <id>", description: "the plan", required: true },
      { flags: "--activated-at <instant>", description: "ISO 8601 (default now)" },
    ],
    examples: ["tally subscriptions create --account $ACCOUNT --plan pro"],
    run: async (ctx, opts) => {
      const body = { plan_id: opts.plan, ...(opts.activatedAt ? { activated_at: opts.activatedAt } : {}) };
      show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/subscriptions`, body));
      return 0;
    },
  });
  listCommand<{ account: string }>(subscriptions, {
    description: "list an account's subscriptions (its plan history) in creation order",
    flags: [ACCOUNT],
    examples: ["tally subscriptions list --account $ACCOUNT"],
    path: (o) => `/v1/accounts/${enc(o.account)}/subscriptions`,
    columns: ["id", "plan_id", "activated_at", "ends_at"],
  });
  getCommand<{ account: string }>(subscriptions, {
    what: "a subscription",
    flags: [ACCOUNT],
    example: "tally subscriptions get $SUBSCRIPTION --account $ACCOUNT",
    path: (id, o) => `/v1/accounts/${enc(o.account)}/subscriptions/${enc(id)}`,
  });
  endCommand(subscriptions, "subscription", "subscriptions");
}

function registerPayments(program: Command): void {
  const payments = commandGroup(program, "payments", "payments received");
  remoteCommand<{ account: string; amount: string; paidAt?: string; reference?: string }>(payments, {
    name: "create",
    description: "record a payment",
    flags: [
      ACCOUNT,
      { flags: "--amount <decimal>", description: "in USD, exact, e.g. 49.90", required: true },
      { flags: "--paid-at <instant>", description: "ISO 8601 (default now)" },
      { flags: "--reference <text>", description: "e.g. an invoice or transfer number" },
    ],
    examples: ["tally payments create --account $ACCOUNT --amount 49.90 --reference INV-7"],
    run: async (ctx, opts) => {
      const body = {
        amount_usd: opts.amount,
        ...(opts.paidAt ? { paid_at: opts.paidAt } : {}),
        ...(opts.reference ? { reference: opts.reference } : {}),
      };
      show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/payments`, body));
      return 0;
    },
  });
  listCommand<{ account: string }>(payments, {
    description: "list an account's payments and refunds in creation order",
    flags: [ACCOUNT],
    examples: ["tally payments list --account $ACCOUNT"],
    path: (o) => `/v1/accounts/${enc(o.account)}/payments`,
    columns: ["id", "amount_usd", "paid_at", "reference", "refund_of"],
  });
  getCommand<{ account: string }>(payments, {
    what: "a payment",
    flags: [ACCOUNT],
    example: "tally payments get $PAYMENT --account $ACCOUNT",
    path: (id, o) => `/v1/accounts/${enc(o.account)}/payments/${enc(id)}`,
  });
  changeCommand<{ account: string; amount?: string; reference?: string }>(payments, {
    name: "refund",
    description: "refund a payment, whole (default) or --amount of it, as a new negative payment (root key)",
    flags: [
      ACCOUNT,
      { flags: "--amount <decimal>", description: "in USD, exact (default: what is left of it)" },
      { flags: "--reference <text>", description: "e.g. a credit note number" },
    ],
    example: "tally payments refund $PAYMENT --account $ACCOUNT --amount 10.00 --reference CN-3",
    method: "POST",
    path: (id, o) => `/v1/accounts/${enc(o.account)}/payments/${enc(id)}/refund`,
    body: (o) => ({
      ...(o.amount !== undefined ? { amount_usd: o.amount } : {}),
      ...(o.reference !== undefined ? { reference: o.reference } : {}),
    }),
  });
}

function registerAudit(program: Command): void {
  const audit = commandGroup(program, "audit", "who changed what, when, before and after");
  listCommand<{ account?: string; resourceType?: string; resourceId?: string; usageId?: string }>(audit, {
    description: "list changes, newest first (the root key names --account)",
    flags: [
      { flags: "--account <id>", description: "the account (required with the root key)" },
      {
        flags: "--resource-type <type>",
        description: "usage_record, account, user, key, license, subscription or payment",
      },
      { flags: "--resource-id <id>", description: "only changes to this resource" },
      { flags: "--usage-id <id>", description: "only changes to this usage record" },
    ],
    examples: [
      "tally audit list --account $ACCOUNT --resource-type key",
      "tally audit list --account $ACCOUNT --resource-id $USER --all --json",
    ],
    path: () => "/v1/audit",
    query: (o) => ({
      account_id: o.account,
      resource_type: o.resourceType,
      resource_id: o.resourceId,
      usage_id: o.usageId,
    }),
    columns: ["at", "action", "resource_type", "resource_id", "actor_user_id"],
  });
}
