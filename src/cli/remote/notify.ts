import type { Command } from "commander";
import { ACCOUNT, deleteCommand, getCommand, listCommand } from "./command-shapes.ts";
import { commandGroup, listFlag, remoteCommand, send, show, showSecret, UsageError } from "./context.ts";

/** `tally webhooks` and `tally alerts` (DESIGN.md "Webhooks and alerts"). */

const enc = encodeURIComponent;

function registerWebhooks(program: Command): void {
  const webhooks = commandGroup(program, "webhooks", "webhook endpoints and their deliveries");
  // `--endpoint`, not `--url`: that one names the Tally server
  remoteCommand<{ endpoint: string; events: string; account?: string }>(webhooks, {
    name: "create",
    description: "add an endpoint; its signing secret is printed once",
    flags: [
      { flags: "--endpoint <url>", description: "where to deliver (http or https)", required: true },
      {
        flags: "--events <types>",
        description: "comma-separated, e.g. invoice.finalized,usage.threshold_crossed",
        required: true,
      },
      { flags: "--account <id>", description: "the account it hears (root key; default: every account)" },
    ],
    examples: [
      "tally webhooks create --endpoint https://example.com/hooks --events invoice.finalized --account $ACCOUNT",
    ],
    run: async (ctx, opts) => {
      const body = {
        url: opts.endpoint,
        events: listFlag(opts.events),
        ...(opts.account ? { account_id: opts.account } : {}),
      };
      showSecret(ctx, await send(ctx, "POST", "/v1/webhooks", body), "secret");
      return 0;
    },
  });
  listCommand<{ account?: string }>(webhooks, {
    description: "list endpoints in creation order (root key: all, or --account's)",
    flags: [{ flags: "--account <id>", description: "only this account's" }],
    examples: ["tally webhooks list --account $ACCOUNT"],
    path: () => "/v1/webhooks",
    query: (o) => ({ account_id: o.account }),
    columns: ["id", "account_id", "url", "events", "status", "failing_since"],
    row: (e) => ({ ...e, events: (e.events as string[]).join(",") }),
  });
  getCommand(webhooks, {
    what: "an endpoint",
    example: "tally webhooks get $ENDPOINT",
    path: (id) => `/v1/webhooks/${enc(id)}`,
  });
  deleteCommand(webhooks, {
    what: "an endpoint and its delivery log",
    example: "tally webhooks delete $ENDPOINT",
    path: (id) => `/v1/webhooks/${enc(id)}`,
  });
  remoteCommand(webhooks, {
    name: "test",
    description: "send a webhook.test message to an endpoint (see it with `deliveries`)",
    argument: ["<id>", "the endpoint's id"],
    examples: ["tally webhooks test $ENDPOINT"],
    run: async (ctx, _opts, id) => {
      show(ctx, await send(ctx, "POST", `/v1/webhooks/${enc(id)}/test`));
      return 0;
    },
  });
  listCommand(webhooks, {
    name: "deliveries",
    description: "an endpoint's deliveries, newest first, each with its attempts (--json)",
    argument: ["<id>", "the endpoint's id"],
    examples: [
      "tally webhooks deliveries $ENDPOINT",
      "tally webhooks deliveries $ENDPOINT --json | jq '.data[0].attempts'",
    ],
    path: (_o, id) => `/v1/webhooks/${enc(id)}/deliveries`,
    columns: ["id", "type", "status", "attempt_count", "created_at", "next_attempt_at"],
  });
}

interface AlertFlags {
  account: string;
  metric: string;
  period: string;
  basis: string;
  thresholds: string;
  model?: string;
  value?: string;
}

function registerAlerts(program: Command): void {
  const alerts = commandGroup(program, "alerts", "alert rules: thresholds of usage, cost or requests");
  remoteCommand<AlertFlags>(alerts, {
    name: "create",
    description: "add an alert rule to an account; each threshold fires once per period",
    flags: [
      ACCOUNT,
      { flags: "--metric <metric>", description: "quantity, cost or requests", required: true },
      { flags: "--period <period>", description: "day or month (billing timezone)", required: true },
      { flags: "--basis <basis>", description: "included, budget or absolute", required: true },
      { flags: "--thresholds <percents>", description: "comma-separated, e.g. 50,80,100", required: true },
      { flags: "--model <id>", description: "only this model (default: all)" },
      { flags: "--value <decimal>", description: "the limit of an absolute rule" },
    ],
    examples: [
      "tally alerts create --account $ACCOUNT --metric cost --period month --basis absolute \\\n" +
        "    --value 500 --thresholds 50,80,100",
    ],
    run: async (ctx, opts) => {
      const thresholds = (listFlag(opts.thresholds) ?? []).map((t) => {
        if (!/^\d+(\.\d+)?$/.test(t)) throw new UsageError(`--thresholds: ${t} is not a percentage`);
        return t;
      });
      const body = {
        metric: opts.metric,
        period: opts.period,
        basis: opts.basis,
        thresholds,
        ...(opts.model ? { model_id: opts.model } : {}),
        ...(opts.value !== undefined ? { value: opts.value } : {}),
      };
      show(ctx, await send(ctx, "POST", `/v1/accounts/${enc(opts.account)}/alerts`, body));
      return 0;
    },
  });
  listCommand<{ account: string }>(alerts, {
    description: "an account's alert rules with this period's total and forecast",
    flags: [ACCOUNT],
    examples: ["tally alerts list --account $ACCOUNT"],
    path: (o) => `/v1/accounts/${enc(o.account)}/alerts`,
    paged: false,
    columns: ["id", "metric", "model_id", "period", "basis", "thresholds", "total", "limit"],
    row: (r) => ({ ...r, thresholds: (r.thresholds as unknown[]).join(",") }),
  });
  getCommand(alerts, {
    what: "an alert rule",
    example: "tally alerts get $RULE",
    path: (id) => `/v1/alerts/${enc(id)}`,
  });
  deleteCommand(alerts, {
    what: "an alert rule and its firings",
    example: "tally alerts delete $RULE",
    path: (id) => `/v1/alerts/${enc(id)}`,
  });
}

export function registerNotifyCommands(program: Command): void {
  registerWebhooks(program);
  registerAlerts(program);
}
