import { Command } from "commander";
import { loadConfig } from "../config.ts";
import { createServices } from "../services.ts";
import { openStore } from "../store/open-store.ts";

/** `tally` commands over the same core as the HTTP API. */
const program = new Command()
  .name("tally")
  .description("Tally: usage metering, licensing and billing")
  .showHelpAfterError();

program
  .command("init")
  .description("create the root key if none exists, and print it once")
  .action(async () => {
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
    const store = await openStore(loadConfig());
    await store.close();
    console.log(`migrations applied (${store.dialect})`);
  });

program
  .command("verify")
  .description("recompute every rollup from the raw events; exit 1 on any difference")
  .option("--max <n>", "differences to print", "20")
  .action(async (opts: { max: string }) => {
    const store = await openStore(loadConfig());
    try {
      const diffs = await store.verifyRollups();
      if (diffs.length === 0) {
        console.log("rollups match the raw events");
        return;
      }
      console.error(`${diffs.length} rollup rows differ from the raw events:`);
      for (const d of diffs.slice(0, Number(opts.max))) {
        console.error(`  ${d.key}\n    expected ${d.expected}\n    actual   ${d.actual}`);
      }
      process.exitCode = 1;
    } finally {
      await store.close();
    }
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // one line that says what went wrong (an unreachable database, a bad path), not a stack trace
  console.error(`tally: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
