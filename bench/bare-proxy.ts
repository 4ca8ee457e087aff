import Fastify from "fastify";
import { Agent } from "undici";

/**
 * Baseline for the gateway figures: a bare proxy (Fastify 5 + undici, the same keep-alive pool
 * settings as Tally's UpstreamClient) forwarding the request's bytes to UPSTREAM_URL and streaming
 * the answer back, with no auth, no admission and no metering. Run as its own process.
 */
const upstream = new URL(process.env.UPSTREAM_URL ?? "");
const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, bytes, done) => done(null, bytes));
app.get("/healthz", async () => ({ status: "ok" }));
app.post("/v1/*", async (request, reply) => {
  const res = await agent.request({
    origin: upstream.origin,
    path: request.url,
    method: "POST",
    headers: { "content-type": request.headers["content-type"] ?? "application/json", accept: "*/*" },
    body: request.body as Buffer,
  });
  reply.code(res.statusCode);
  const type = res.headers["content-type"];
  if (typeof type === "string") reply.header("content-type", type);
  return reply.send(res.body);
});
await app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
