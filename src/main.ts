// first: V8 settings that must hold before any other module allocates
import "./ops/v8-tuning.ts";
import { startInvoiceClosing } from "./billing/invoice-timer.ts";
import { FallbackBudgetReserver } from "./budget/fallback-budget-reserver.ts";
import { RedisBudgetReserver } from "./budget/redis-budget-reserver.ts";
import { type Config, loadConfig, redactUrl, weakRootKey } from "./config.ts";
import { buildApp, REDACT } from "./http/app.ts";
import { RedisRateLimiter } from "./limits/redis-rate-limiter.ts";
import { DeliveryWorker } from "./notify/delivery.ts";
import { httpWebhookSender } from "./notify/send-webhook.ts";
import { StoreOutbox } from "./notify/store-outbox.ts";
import { createLog, type Log } from "./ops/log.ts";
import { createServices } from "./services.ts";
import { openStore } from "./store/open-store.ts";
import type { Store } from "./store/store.ts";

/** How long start-up waits for Redis before serving with per-instance counters. */
const REDIS_START_WAIT_MS = 2000;

// every line Tally writes is one JSON object: the level is set once the configuration is read
const log = createLog("info", REDACT);

// a rejected promise nobody awaited is a bug to find in the log, never a silent exit
process.on("unhandledRejection", (reason) => {
  log.error({ err: reason }, "unhandled promise rejection");
});
process.on("uncaughtException", (err) => {
  log.fatal({ err }, "uncaught exception: exiting");
  process.exit(1);
});

/** Composition root: read config once, open the store, build services, mount surfaces, listen. */
async function main(): Promise<void> {
  const config = loadConfig();
  log.level = config.logLevel;
  const store = await openStoreWaiting(config, log);
  // REDIS_URL: rate-limit counters shared by every instance; else in this process's memory
  const redis = config.redisUrl ? new RedisRateLimiter(config.redisUrl) : undefined;
  // not there yet: Tally starts anyway, on per-instance counters (the limiter logs so), and
  // switches to Redis when it answers
  if (redis && !(await redis.waitReady(REDIS_START_WAIT_MS))) {
    log.warn({ redis: redactUrl(config.redisUrl!) }, "Redis is not reachable at start");
  }
  const services = createServices(store, {
    rootKey: config.adminKey,
    redis,
    // budget holds in Redis, atomic across instances; in memory while Redis is out
    budgetReserver: config.redisUrl
      ? new FallbackBudgetReserver(new RedisBudgetReserver(config.redisUrl))
      : undefined,
    log,
    maxFutureMs: config.maxFutureMs,
    invoiceOperator: config.invoiceOperator,
    secretsKey: config.secretsKey,
    webhookPrivate: config.webhookPrivate,
  });
  const app = await buildApp(services, { loggerInstance: log, metricsToken: config.metricsToken });
  if (config.adminKey) {
    const weak = weakRootKey(config.adminKey);
    if (weak)
      log.warn({ reason: weak }, "TALLY_ADMIN_KEY is weak: use a long random key (npx tally init makes one)");
  } else if (!(await store.hasRootKey())) {
    log.warn("no root key yet: set TALLY_ADMIN_KEY or run `npx tally init` to create one");
  }

  // periods close by themselves TALLY_INVOICE_GRACE_HOURS after they end (idempotent across instances)
  const invoiceClosing = startInvoiceClosing(services.invoices, config.invoiceGraceMs, log);
  // webhooks: every instance delivers from the one outbox (leases keep a message to one sender)
  const sender = httpWebhookSender(config.webhookPrivate);
  const delivery = new DeliveryWorker({
    outbox: new StoreOutbox(store, config.secretsKey),
    send: sender.send,
    onError: (err) => log.error({ err }, "webhooks: a delivery could not be recorded"),
    onAttempt: (a) => {
      services.metrics.webhookAttempts.inc({ outcome: a.succeeded ? "succeeded" : "failed" });
      services.metrics.webhookSeconds.observe(a.latencyMs / 1000);
    },
  });
  delivery.start();
  // alert rules: evaluated after commits, and all of them again (with forecasts) every sweep
  services.alerts.start(config.alertSweepMs);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal, grace_ms: config.shutdownGraceMs }, "shutting down: finishing in-flight requests");
    // requests still running after the grace lose their connections; buffered writes still commit
    const cutOff = setTimeout(() => {
      log.warn("shutdown grace is over: closing the connections still open");
      app.server.closeAllConnections();
    }, config.shutdownGraceMs);
    // connections with nothing in flight are closed as soon as the last answer is out: a browser's
    // idle or preconnected sockets would otherwise hold the close until the grace runs out
    const drain = setInterval(() => {
      if (services.metrics.inFlight === 0) app.server.closeAllConnections();
    }, 100);
    let code = 0;
    try {
      await app.close();
      clearTimeout(cutOff);
      clearInterval(drain);
      await invoiceClosing.stop();
      // the round in flight finishes and records its attempts; what is left stays in the outbox
      await delivery.stop();
      await sender.close();
      // commits what is buffered (group commit, key uses), then closes the limiter and the store
      await services.close();
      log.info("stopped");
    } catch (err) {
      log.error({ err }, "shutdown failed");
      code = 1;
    }
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  await app.listen({ port: config.port, host: config.host });
  log.info({ store: store.dialect, host: config.host, port: config.port }, "tally listening");
}

/**
 * Opens the store; a PostgreSQL that is not up yet (the usual order of a compose file or a
 * reboot) is retried with backoff for `storeWaitMs`, each attempt logged. SQLite fails at once.
 */
async function openStoreWaiting(config: Config, log: Log): Promise<Store> {
  const deadline = Date.now() + config.storeWaitMs;
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await openStore(config, log);
    } catch (err) {
      if (!config.databaseUrl || Date.now() + delay > deadline) throw err;
      log.warn({ err, attempt, retry_in_ms: delay }, "PostgreSQL is not reachable yet: retrying");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

main().catch((err) => {
  log.fatal({ err }, "tally could not start");
  process.exit(1);
});
