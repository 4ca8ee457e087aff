import { loadConfig } from "./config.ts";
import { buildApp, REDACT } from "./http/app.ts";
import { RedisRateLimiter } from "./limits/redis-rate-limiter.ts";
import { createServices } from "./services.ts";
import { openStore } from "./store/open-store.ts";

/** Composition root: read config once, open the store, build services, mount surfaces, listen. */
async function main(): Promise<void> {
  const config = loadConfig();
  const store = await openStore(config);
  // REDIS_URL: rate-limit counters shared by every instance; else in this process's memory
  const rateLimiter = config.redisUrl ? new RedisRateLimiter(config.redisUrl) : undefined;
  const services = createServices(store, { rootKey: config.adminKey, rateLimiter });
  const app = await buildApp(services, { logger: { level: config.logLevel, redact: REDACT } });
  if (!config.adminKey && !(await store.hasRootKey())) {
    app.log.warn("no root key yet: set TALLY_ADMIN_KEY or run `npx tally init` to create one");
  }
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, "shutting down");
    await app.close();
    await services.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  await app.listen({ port: config.port, host: config.host });
  app.log.info({ store: store.dialect, port: config.port }, "tally listening");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
