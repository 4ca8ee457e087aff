import Fastify from "fastify";

/**
 * Baseline for the license report: a bare Fastify 5 server (logger off, no schema, no store)
 * answering the same POST with the same body. Run as its own process by bench/run.ts.
 */
const app = Fastify({ logger: false });
app.get("/healthz", async () => ({ status: "ok" }));
app.post("/v1/licenses/models/:slug/usage", async () => ({ message: "Usage recorded successfully" }));
app.post("/v1/events", async () => ({ accepted: 1, duplicates: 0, rejected: [] }));
await app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
