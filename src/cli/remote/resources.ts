import type { Command } from "commander";
import {
  action,
  extraFields,
  intFlag,
  limitFlag,
  listFlag,
  read,
  record,
  remoteContext,
  send,
  show,
  table,
  UsageError,
} from "./context.ts";

/** Operator commands over the native API (DESIGN.md, "Native API"): one subcommand per route. */

const enc = encodeURIComponent;
const DATA_HELP = 'extra body fields as a JSON object, e.g. \'{"plan_id":"pro"}\'';

export function registerResourceCommands(program: Command): void {
  const accounts = program.command("accounts").description("customer accounts");
  accounts
    .command("create")
    .description("create an account (root key)")
    .requiredOption("--name <name>", "the account's name")
    .option("--plan <id>", "its plan")
    .option("--data <json>", DATA_HELP)
    .addHelpText("after", "\nExample:\n  tally accounts create --name Acme --json | jq -r .id")
    .action(
      action(async (opts: { name: string; plan?: string; data?: string }, cmd: Command) => {
        const ctx = remoteContext(cmd);
        const body = {
          name: opts.name,
          ...(opts.plan ? { plan_id: opts.plan } : {}),
          ...extraFields(opts.data),
        };
        show(ctx, await send(ctx, "POST", "/v1/accounts", body));
        return 0;
      }),
    );

  const users = program.command("users").description("users of an account");
  users
    .command("create")
    .description("create a user in an account (root, or the account's admin)")
    .requiredOption("--account <id>", "the account")
    .requiredOption("--username <name>", "the user's name")
    .option("--role <role>", "admin or member", "member")
    .option("--node-id <id>", "an external id")
    .option("--data <json>", DATA_HELP)
    .addHelpText("after", "\nExample:\n  tally users create --account $ACCOUNT --username alice --role admin")
    .action(
      action(
        async (
          opts: { account: string; username: string; role: string; nodeId?: string; data?: string },
          cmd: Command,
        ) => {
          const ctx = remoteContext(cmd);
          if (opts.role !== "admin" && opts.role !== "member") {
            throw new UsageError("--role must be admin or member");
          }
          const body = {
            username: opts.username,
            role: opts.role,
            ...(opts.nodeId ? { node_id: opts.nodeId } : {}),
            ...extraFields(opts.data),
          };
          show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/users`, body));
          return 0;
        },
      ),
    );

  const keys = program.command("keys").description("API keys");
  keys
    .command("create")
    .description("issue a key for a user; its secret is printed once and never again")
    .requiredOption("--user <id>", "the user the key belongs to")
    .option("--label <label>", "e.g. 'Production Key' (default: Key N)")
    .addHelpText(
      "after",
      "\nExample:\n  KEY=$(tally keys create --user $USER --label CI --json | jq -r .key)",
    )
    .action(
      action(async (opts: { user: string; label?: string }, cmd: Command) => {
        const ctx = remoteContext(cmd);
        const answer = await send(ctx, "POST", `/v1/users/${enc(opts.user)}/keys`, {
          ...(opts.label ? { label: opts.label } : {}),
        });
        if (ctx.json) {
          ctx.out(answer.text);
          return 0;
        }
        const { key, ...rest } = answer.body as Record<string, unknown>;
        ctx.out(record(rest));
        ctx.out(`\nSecret (shown once, store it safely):\n${key}`);
        return 0;
      }),
    );
  keys
    .command("revoke")
    .description("revoke a key: it is refused from then on")
    .argument("<id>", "the key's id")
    .addHelpText("after", "\nExample:\n  tally keys revoke key_0193...")
    .action(
      action(async (id: string, _opts: unknown, cmd: Command) => {
        const ctx = remoteContext(cmd);
        await send(ctx, "DELETE", `/v1/keys/${enc(id)}`);
        ctx.out(ctx.json ? JSON.stringify({ id, revoked: true }) : `key ${id} revoked`);
        return 0;
      }),
    );

  const models = program.command("models").description("metered models and their prices");
  models
    .command("upsert")
    .description("create or update a model; a new unit price adds a price version from --effective-from")
    .requiredOption("--id <id>", "e.g. flux-1-dev")
    .requiredOption("--unit <unit>", "billing unit: image, token, second, request, ...")
    .requiredOption("--kind <kind>", "chat, embedding, image, video, audio, tts or other")
    .requiredOption("--unit-price <decimal>", "exact decimal, e.g. 0.0043")
    .option("--currency <code>", "ISO 4217 (default USD)")
    .option("--effective-from <instant>", "ISO 8601 (default now)")
    .option("--no-reporting", "refuse license usage reports for this model")
    .option("--data <json>", DATA_HELP)
    .addHelpText(
      "after",
      "\nExample:\n  tally models upsert --id flux-1-dev --unit image --kind image --unit-price 0.0043 \\\n" +
        "    --effective-from 2025-01-01T00:00:00Z",
    )
    .action(
      action(
        async (
          opts: {
            id: string;
            unit: string;
            kind: string;
            unitPrice: string;
            currency?: string;
            effectiveFrom?: string;
            reporting: boolean;
            data?: string;
          },
          cmd: Command,
        ) => {
          const ctx = remoteContext(cmd);
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
      ),
    );
  models
    .command("list")
    .description("list models with their current price")
    .addHelpText("after", "\nExample:\n  tally models list --json | jq '.[].id'")
    .action(
      action(async (_opts: unknown, cmd: Command) => {
        const ctx = remoteContext(cmd);
        const body = await read<unknown>(ctx, "/v1/models");
        // a bare array today; `{object: "list", data}` once the gateway answers this route
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
      }),
    );

  const plans = program.command("plans").description("plans: rate limits, validity, model lists");
  plans
    .command("upsert")
    .description("create or update a plan")
    .requiredOption("--id <id>", "e.g. pro")
    .requiredOption("--rpm <n>", "requests per minute, or 'unlimited'")
    .requiredOption("--rpd <n>", "requests per day, or 'unlimited'")
    .option("--validity-days <n>", "days a subscription lasts (-999999: unlimited)", "-999999")
    .option("--allow <models>", "comma-separated allow list")
    .option("--block <models>", "comma-separated block list")
    .option("--included <model=quantity...>", "quantities included per model")
    .option("--data <json>", DATA_HELP)
    .addHelpText(
      "after",
      "\nExample:\n  tally plans upsert --id pro --rpm 600 --rpd unlimited --allow flux-1-dev,flux-tools",
    )
    .action(
      action(
        async (
          opts: {
            id: string;
            rpm: string;
            rpd: string;
            validityDays: string;
            allow?: string;
            block?: string;
            included?: string[];
            data?: string;
          },
          cmd: Command,
        ) => {
          const ctx = remoteContext(cmd);
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
      ),
    );

  const licenses = program.command("licenses").description("model licenses of accounts");
  licenses
    .command("create")
    .description("license a model to an account from --starts-at until --ends-at")
    .requiredOption("--account <id>", "the account")
    .requiredOption("--model <id>", "the model")
    .option("--starts-at <instant>", "ISO 8601 (default now)")
    .option("--ends-at <instant>", "ISO 8601 (default: open-ended)")
    .addHelpText("after", "\nExample:\n  tally licenses create --account $ACCOUNT --model flux-1-dev")
    .action(
      action(
        async (
          opts: { account: string; model: string; startsAt?: string; endsAt?: string },
          cmd: Command,
        ) => {
          const ctx = remoteContext(cmd);
          const body = {
            model_id: opts.model,
            ...(opts.startsAt ? { starts_at: opts.startsAt } : {}),
            ...(opts.endsAt ? { ends_at: opts.endsAt } : {}),
          };
          show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/licenses`, body));
          return 0;
        },
      ),
    );

  const subscriptions = program.command("subscriptions").description("plan activations of accounts");
  subscriptions
    .command("create")
    .description("activate a plan for an account (it becomes the current plan; history is kept)")
    .requiredOption("--account <id>", "the account")
    .requiredOption("--plan <id>", "the plan")
    .option("--activated-at <instant>", "ISO 8601 (default now)")
    .addHelpText("after", "\nExample:\n  tally subscriptions create --account $ACCOUNT --plan pro")
    .action(
      action(async (opts: { account: string; plan: string; activatedAt?: string }, cmd: Command) => {
        const ctx = remoteContext(cmd);
        const body = { plan_id: opts.plan, ...(opts.activatedAt ? { activated_at: opts.activatedAt } : {}) };
        show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/subscriptions`, body));
        return 0;
      }),
    );

  const payments = program.command("payments").description("payments received");
  payments
    .command("create")
    .description("record a payment")
    .requiredOption("--account <id>", "the account")
    .requiredOption("--amount <decimal>", "in USD, exact, e.g. 49.90")
    .option("--paid-at <instant>", "ISO 8601 (default now)")
    .option("--reference <text>", "e.g. an invoice or transfer number")
    .addHelpText(
      "after",
      "\nExample:\n  tally payments create --account $ACCOUNT --amount 49.90 --reference INV-7",
    )
    .action(
      action(
        async (
          opts: { account: string; amount: string; paidAt?: string; reference?: string },
          cmd: Command,
        ) => {
          const ctx = remoteContext(cmd);
          const body = {
            amount_usd: opts.amount,
            ...(opts.paidAt ? { paid_at: opts.paidAt } : {}),
            ...(opts.reference ? { reference: opts.reference } : {}),
          };
          show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/payments`, body));
          return 0;
        },
      ),
    );
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
