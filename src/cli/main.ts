import { Command, CommanderError, Option } from "commander";
import { EXIT_USAGE } from "./remote/context.ts";
import { registerEventsCommands } from "./remote/events-send.ts";
import { registerResourceCommands } from "./remote/resources.ts";
import { registerUsageCommand } from "./remote/usage.ts";

/**
 * `tally`: local commands on the store (init, migrate, verify), and commands that speak to a
 * running server (--url, --key). Exit codes: 0 done, 1 refused or partly done, 2 usage error.
 */
/** The store and the services load only for the local commands: a remote command starts faster. */
const local = async () => {
  const [{ loadConfig }, { createServices }, { openStore }] = await Promise.all([
    import("../config.ts"),
    import("../services.ts"),
    import("../store/open-store.ts"),
  ]);
  return { loadConfig, createServices, openStore };
};

/**
 * The configuration of a command that reads or writes whole tables (verify, export, import): no
 * statement timeout unless TALLY_DB_STATEMENT_TIMEOUT_MS sets one. The server's default (15 s,
 * for a stalled database) would end a verify of a few hundred thousand events on PostgreSQL.
 */
const batchConfig = async () => {
  const { loadConfig, openStore } = await local();
  const config = loadConfig();
  const databaseTimeouts = {
    ...config.databaseTimeouts,
    statementTimeoutMs: config.databaseTimeouts.statementTimeoutMs ?? 0,
  };
  return { config: { ...config, databaseTimeouts }, openStore };
};

const program = new Command()
  .name("tally")
  .description("Tally: usage metering, licensing and billing")
  .showHelpAfterError()
  // a usage error exits 2 (commander's default is 1, which scripts read as "the server refused")
  .exitOverride()
  .addOption(new Option("--url <url>", "a running Tally server").env("TALLY_URL"))
  .addOption(new Option("--key <key>", "the API key to use").env("TALLY_KEY"))
  .option("--json", "machine-readable output on stdout")
  .option("--timeout <seconds>", "per request (default 60)")
  .addHelpText(
    "after",
    `
Local commands (init, migrate, verify, invoices close) work on the store named by TALLY_DB or DATABASE_URL.
Every other command speaks to a running server: --url and --key, or TALLY_URL and TALLY_KEY.
Exit codes: 0 done, 1 the server refused (or only part was done), 2 usage error.

Examples:
  export TALLY_URL=http://localhost:8787 TALLY_KEY=$TALLY_ADMIN_KEY
  ACCOUNT=$(tally accounts create --name Acme --json | jq -r .id)
  tally models upsert --id flux-1-dev --unit image --kind image --unit-price 0.0043
  tally events send usage.jsonl --account $ACCOUNT
  tally usage --timezone Europe/Berlin --key $CUSTOMER_KEY`,
  );

program
  .command("init")
  .description("create the root key if none exists, and print it once")
  .action(async () => {
    const { loadConfig, createServices, openStore } = await local();
    const config = loadConfig();
    const services = createServices(await openStore(config), { rootKey: config.adminKey });
    try {
      const secret = await services.manage.initRootKey();
      if (secret) {
        console.log("Root key (shown once, store it safely):");
        console.log(secret);
      } else {
        console.log("A root key exists already; nothing created.");
      }
    } finally {
      await services.close();
    }
  });

program
  .command("migrate")
  .description("apply pending schema migrations")
  .action(async () => {
    const { loadConfig, openStore } = await local();
    const store = await openStore(loadConfig());
    await store.close();
    console.log(`migrations applied (${store.dialect})`);
  });

program
  .command("verify")
  .description(
    "recompute every rollup from the raw events (and on PostgreSQL check every event's idempotency claim); exit 1 on any difference",
  )
  .option("--max <n>", "differences to print", "20")
  .action(async (opts: { max: string }) => {
    const { config, openStore } = await batchConfig();
    const store = await openStore(config);
    try {
      const diffs = await store.verifyRollups();
      if (diffs.length === 0) {
        console.log("rollups match the raw events");
        return;
      }
      const rollups = diffs.filter((d) => d.table === "usage_rollups").length;
      if (rollups > 0) console.error(`${rollups} rollup rows differ from the raw events`);
      if (diffs.length > rollups)
        console.error(`${diffs.length - rollups} events have no matching idempotency claim (event_ids)`);
      for (const d of diffs.slice(0, Number(opts.max))) {
        console.error(`  ${d.key}\n    expected ${d.expected}\n    actual   ${d.actual}`);
      }
      process.exitCode = 1;
    } finally {
      await store.close();
    }
  });

program
  .command("export")
  .description("write the whole installation as JSON lines (exact; no server should be writing)")
  .option("--out <file>", "write here instead of stdout")
  .addHelpText("after", "\nExample:\n  TALLY_DB=./data/tally.db tally export --out tally.jsonl")
  .action(async (opts: { out?: string }) => {
    const { config, openStore } = await batchConfig();
    const { exportStore } = await import("./transfer.ts");
    const { createWriteStream } = await import("node:fs");
    const store = await openStore(config);
    const out = opts.out ? createWriteStream(opts.out) : process.stdout;
    try {
      const counts = await exportStore(store, out, Date.now());
      console.error(`exported ${summary(counts)}`);
    } finally {
      if (opts.out)
        await new Promise<void>((resolve, reject) =>
          out.end((err?: Error | null) => (err ? reject(err) : resolve())),
        );
      await store.close();
    }
  });

program
  .command("import")
  .description("read an export into an empty store and recount its rollups")
  .argument("[file]", "the export (default: stdin)")
  .addHelpText(
    "after",
    "\nExample (SQLite to PostgreSQL):\n  TALLY_DB=./data/tally.db tally export --out tally.jsonl\n  DATABASE_URL=postgres://... tally import tally.jsonl && DATABASE_URL=postgres://... tally verify",
  )
  .action(async (file: string | undefined) => {
    const { config, openStore } = await batchConfig();
    const { importStore, ImportError } = await import("./transfer.ts");
    const { createReadStream } = await import("node:fs");
    const store = await openStore(config);
    try {
      const counts = await importStore(store, file ? createReadStream(file) : process.stdin);
      console.log(`imported ${summary(counts)}; rollups recounted`);
    } catch (err) {
      if (!(err instanceof ImportError)) throw err;
      console.error(`import refused: ${err.message}`);
      process.exitCode = 1;
    } finally {
      await store.close();
    }
  });

program
  .command("invoices")
  .description("invoices: close on the local store; list, read, void on a running server")
  .command("close")
  .description(
    "finalize a month's invoices (idempotent): one account's, or every account with usage or a base fee",
  )
  .requiredOption("--period <yyyy-mm>", "the month, e.g. 2026-11, in each account's billing timezone")
  .option("--account <id>", "only this account")
  .action(async (opts: { period: string; account?: string }) => {
    const { loadConfig, createServices, openStore } = await local();
    const [{ OPERATOR }, { invoiceDocument }, { DomainError }, { formatDec }] = await Promise.all([
      import("../billing/invoice-service.ts"),
      import("../billing/invoice-builder.ts"),
      import("../domain/errors.ts"),
      import("../domain/decimal.ts"),
    ]);
    const config = loadConfig();
    const services = createServices(await openStore(config), { invoiceOperator: config.invoiceOperator });
    try {
      const invoices = await services.invoices.close(OPERATOR, opts.period, opts.account);
      if (program.opts().json) {
        console.log(
          JSON.stringify({ invoices: invoices.map((i) => invoiceDocument(i, { decimal: formatDec })) }),
        );
      } else {
        for (const i of invoices) {
          console.log(
            `${i.id}  ${i.accountId}  ${i.period.label}  ${i.status}  ${i.number ?? "-"}  ${formatDec(i.total)} ${i.currency}`,
          );
        }
        console.log(`${invoices.length} invoice(s) for ${opts.period}`);
      }
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      console.error(`tally: ${err.message}`);
      process.exitCode = err.code === "VALIDATION" ? 2 : 1;
    } finally {
      await services.close();
    }
  });

program
  .command("dev-upstream")
  .description("serve a deterministic OpenAI-compatible model server on localhost (for trying the gateway)")
  .option("--port <n>", "port to listen on", "8790")
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .option("--api-key <key>", "require this bearer key")
  .action(async (opts: { port: string; host: string; apiKey?: string }) => {
    const port = Number(opts.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      console.error("--port: must be an integer from 0 to 65535");
      process.exitCode = 2;
      return;
    }
    const { startDevUpstream } = await import("../gateway/dev-upstream.ts");
    const upstream = await startDevUpstream({ port, host: opts.host, apiKey: opts.apiKey });
    console.log(`dev upstream listening on ${upstream.url} (OpenAI-compatible, base URL ${upstream.url}/v1)`);
    const stop = () => void upstream.close().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });

registerResourceCommands(program);
registerEventsCommands(program);
registerUsageCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // help and --version end with exit code 0; every other parse failure is a usage error
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    // one line that says what went wrong (an unreachable database, a bad path), not a stack trace
    console.error(`tally: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

function summary(counts: Record<string, number>): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([t, n]) => `${n} ${t}`);
  return parts.length > 0 ? parts.join(", ") : "nothing";
}
