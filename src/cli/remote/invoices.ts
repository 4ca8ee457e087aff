import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { HttpAnswer } from "../../../packages/client/src/index.ts";
import { ACCOUNT, changeCommand, listCommand } from "./command-shapes.ts";
import { commandGroup, type RemoteContext, readAnswer, record, remoteCommand, table } from "./context.ts";

/**
 * `tally invoices` against a running server, beside the local `invoices close` (main.ts): list,
 * the upcoming draft, one invoice as a summary, JSON, CSV or PDF, and void.
 */

const enc = encodeURIComponent;

interface InvoiceJson {
  id: string;
  number: string | null;
  account_id: string;
  period: { label: string; start: string; end: string; timezone: string };
  status: string;
  currency: string;
  lines: {
    model_id: string | null;
    meter: string;
    quantity: number;
    billable_quantity: number;
    amount: number;
  }[];
  adjustments: { period: string; model_id: string | null; quantity: number; amount: number }[];
  subtotal: number;
  total: number;
  issued_at: string | null;
}

/** An invoice for people: its head, a table of lines, late adjustments, the total. */
function invoiceText(inv: InvoiceJson): string {
  const head = record({
    id: inv.id,
    number: inv.number ?? "-",
    account: inv.account_id,
    period: `${inv.period.label} (${inv.period.timezone})`,
    status: inv.status,
    issued_at: inv.issued_at ?? "-",
  });
  const parts = [
    head,
    "",
    table(inv.lines, ["model_id", "description", "quantity", "billable_quantity", "amount"]),
  ];
  if (inv.adjustments.length > 0) {
    parts.push("", "Adjustments:", table(inv.adjustments, ["period", "model_id", "quantity", "amount"]));
  }
  parts.push("", `total ${inv.total} ${inv.currency}`);
  return parts.join("\n");
}

function showInvoice(ctx: RemoteContext, answer: HttpAnswer): void {
  ctx.out(ctx.json ? answer.text : invoiceText(answer.body as InvoiceJson));
}

/** Text or bytes to `--out` (`-` or none: stdout, as is). */
function emit(out: string | undefined, content: string | Uint8Array, ctx: RemoteContext): void {
  if (out === undefined || out === "-") {
    process.stdout.write(content);
    return;
  }
  writeFileSync(out, content);
  ctx.err(
    `wrote ${out} (${typeof content === "string" ? Buffer.byteLength(content) : content.length} bytes)`,
  );
}

export function registerInvoiceCommands(program: Command): void {
  const invoices = commandGroup(program, "invoices", "invoices");
  listCommand<{ account: string }>(invoices, {
    description: "list an account's invoices",
    flags: [ACCOUNT],
    examples: ["tally invoices list --account $ACCOUNT", "tally invoices list --account $ACCOUNT --json"],
    path: (o) => `/v1/accounts/${enc(o.account)}/invoices`,
    paged: false,
    columns: ["id", "number", "period", "status", "total", "currency", "issued_at"],
    row: (i) => ({ ...i, period: (i as unknown as InvoiceJson).period.label }),
  });
  remoteCommand<{ account: string }>(invoices, {
    name: "upcoming",
    description: "the open period's invoice as it stands now (a draft)",
    flags: [ACCOUNT],
    examples: ["tally invoices upcoming --account $ACCOUNT"],
    run: async (ctx, opts) => {
      showInvoice(ctx, await readAnswer(ctx, `/v1/accounts/${enc(opts.account)}/invoices/upcoming`));
      return 0;
    },
  });
  remoteCommand(invoices, {
    name: "get",
    description: "read an invoice: a summary for people, the whole document with --json",
    argument: ["<id>", "the invoice's id"],
    examples: ["tally invoices get $INVOICE", "tally invoices get $INVOICE --json | jq .total"],
    run: async (ctx, _opts, id) => {
      showInvoice(ctx, await readAnswer(ctx, `/v1/invoices/${enc(id)}`));
      return 0;
    },
  });
  remoteCommand<{ out?: string }>(invoices, {
    name: "csv",
    description: "an invoice as CSV (one row per line and tier), to stdout or --out",
    argument: ["<id>", "the invoice's id"],
    flags: [{ flags: "--out <file>", description: "write it here (default: stdout)" }],
    examples: [
      "tally invoices csv $INVOICE --out invoice.csv",
      "tally invoices csv $INVOICE | column -s, -t",
    ],
    run: async (ctx, opts, id) => {
      emit(opts.out, (await readAnswer(ctx, `/v1/invoices/${enc(id)}.csv`)).text, ctx);
      return 0;
    },
  });
  remoteCommand<{ out: string }>(invoices, {
    name: "pdf",
    description: "the PDF rendered when the invoice was finalized, to --out (- for stdout)",
    argument: ["<id>", "the invoice's id"],
    flags: [{ flags: "--out <file>", description: "where to write it", required: true }],
    examples: ["tally invoices pdf $INVOICE --out invoice.pdf"],
    run: async (ctx, opts, id) => {
      emit(opts.out, await ctx.download(`/v1/invoices/${enc(id)}.pdf`), ctx);
      return 0;
    },
  });
  changeCommand(invoices, {
    name: "void",
    description: "void a finalized invoice (root key)",
    example: "tally invoices void $INVOICE",
    method: "POST",
    path: (id) => `/v1/invoices/${enc(id)}/void`,
    body: () => ({}),
    output: showInvoice,
  });
}
