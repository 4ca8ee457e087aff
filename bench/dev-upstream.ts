import { startDevUpstream } from "../src/gateway/dev-upstream.ts";

/** The development upstream in its own process, for the gateway figures (PORT from bench/run.ts). */
const upstream = await startDevUpstream({ port: Number(process.env.PORT), host: "127.0.0.1" });
process.on("SIGTERM", () => void upstream.close().then(() => process.exit(0)));
