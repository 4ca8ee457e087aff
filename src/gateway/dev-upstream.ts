import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A deterministic OpenAI-compatible model server for development, tests and the bench: the same
 * request always gets the same text, vectors, audio bytes and usage, with no external account.
 *
 * Behaviour controls for tests, either as `x-dev-*` headers or after a colon in the model name
 * (`dev-chat:chunk_delay=50,words=40`), so a gateway route can select them through its upstream
 * model name:
 * - `fail=<status>`: answer that status with an OpenAI error before the first byte
 * - `delay=<ms>`: wait before answering; `hang`: never answer (until the client gives up)
 * - `chunk_delay=<ms>`: pause between stream chunks; `words=<n>`: length of the answer
 * - `cut=<n>`: end the connection after n content chunks, with no usage and no [DONE]
 * - `cached=<n>`, `reasoning=<n>`: report that many cached prompt / reasoning tokens
 */
export interface DevUpstreamOptions {
  port?: number;
  host?: string;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
}

/** What the server saw of one request (also served at `GET /_dev/requests`). */
export interface DevUpstreamRecord {
  seq: number;
  path: string;
  model: string | null;
  stream: boolean;
  authorization: string | null;
  /** the client went away before the answer was complete */
  aborted: boolean;
  completed: boolean;
  receivedAt: number;
  firstByteAt: number | null;
  lastByteAt: number | null;
  /** the usage the answer reported, if any */
  usage: unknown;
}

export interface DevUpstream {
  url: string;
  port: number;
  requests: DevUpstreamRecord[];
  close(): Promise<void>;
}

interface Controls {
  fail?: number;
  delay?: number;
  hang?: boolean;
  chunkDelay?: number;
  words?: number;
  cut?: number;
  cached?: number;
  reasoning?: number;
}

const MAX_BODY = 32 * 1024 * 1024;
const KEEP = 1000;

const VOCABULARY = (
  "the quick brown fox jumps over a lazy dog while bright stars shine on quiet hills and " +
  "small rivers carry cold water past old stone bridges toward the open sea"
).split(" ");

/** 1x1 transparent PNG. */
const PNG_BASE64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

const AUDIO_TYPES: Record<string, string> = {
  mp3: "audio/mpeg",
  opus: "audio/ogg",
  aac: "audio/aac",
  flac: "audio/flac",
  wav: "audio/wav",
  pcm: "audio/pcm",
};

export async function startDevUpstream(options: DevUpstreamOptions = {}): Promise<DevUpstream> {
  const requests: DevUpstreamRecord[] = [];
  let seq = 0;
  const server: Server = createServer((req, res) => {
    const record: DevUpstreamRecord = {
      seq: ++seq,
      path: (req.url ?? "/").split("?")[0],
      model: null,
      stream: false,
      authorization: req.headers.authorization ?? null,
      aborted: false,
      completed: false,
      receivedAt: Date.now(),
      firstByteAt: null,
      lastByteAt: null,
      usage: undefined,
    };
    requests.push(record);
    if (requests.length > KEEP) requests.shift();
    res.on("close", () => {
      if (!res.writableFinished) record.aborted = true;
    });
    handle(req, res, record, requests, options).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, `dev upstream failed: ${String(err)}`, "server_error");
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? "127.0.0.1";
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  record: DevUpstreamRecord,
  requests: DevUpstreamRecord[],
  options: DevUpstreamOptions,
): Promise<void> {
  if (req.method === "GET" && record.path === "/_dev/requests") return sendJson(res, 200, { data: requests });
  if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
    return sendError(res, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key");
  }
  if (req.method === "GET" && record.path === "/v1/models") return sendJson(res, 200, modelList());
  if (req.method !== "POST") return sendError(res, 404, `no route ${req.method} ${record.path}`);

  const raw = await readBody(req);
  const contentType = req.headers["content-type"] ?? "";
  let body: Record<string, unknown>;
  let form: FormData | null = null;
  if (contentType.startsWith("multipart/form-data")) {
    form = await new Response(raw, { headers: { "content-type": contentType } }).formData();
    body = {};
    for (const [k, v] of form) if (typeof v === "string") body[k] = v;
  } else {
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      return sendError(res, 400, "body is not valid JSON");
    }
  }
  const model = typeof body.model === "string" ? body.model : null;
  record.model = model;
  record.stream = body.stream === true;
  const controls = readControls(model, req.headers);

  if (controls.hang) return; // never answer; the record shows whether the client gave up
  if (controls.delay) {
    await sleep(controls.delay);
    if (record.aborted) return;
  }
  if (controls.fail) {
    return sendError(res, controls.fail, `dev upstream failed as asked (${controls.fail})`, "server_error");
  }
  const mark = () => {
    const now = Date.now();
    record.firstByteAt ??= now;
    record.lastByteAt = now;
  };
  switch (record.path) {
    case "/v1/chat/completions":
      return chat(res, body, controls, record, mark);
    case "/v1/embeddings":
      return embeddings(res, body, record);
    case "/v1/images/generations":
      return images(res, body);
    case "/v1/audio/speech":
      return speech(res, body, controls, record, mark);
    case "/v1/audio/transcriptions":
      return transcription(res, body, form);
    default:
      return sendError(res, 404, `no route POST ${record.path}`);
  }
}

async function chat(
  res: ServerResponse,
  body: Record<string, unknown>,
  controls: Controls,
  record: DevUpstreamRecord,
  mark: () => void,
): Promise<void> {
  const prompt = promptText(body.messages);
  const limit = numberOr(body.max_completion_tokens ?? body.max_tokens, Number.POSITIVE_INFINITY);
  const words = answerWords(prompt, Math.min(controls.words ?? 12, limit));
  const promptTokens = wordCount(prompt) + 3 * (Array.isArray(body.messages) ? body.messages.length : 0);
  const reasoning = controls.reasoning ?? 0;
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: words.length + reasoning,
    total_tokens: promptTokens + words.length + reasoning,
    prompt_tokens_details: { cached_tokens: Math.min(controls.cached ?? 0, promptTokens), audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0 },
  };
  const id = `chatcmpl-dev-${record.seq}`;
  const created = Math.floor(record.receivedAt / 1000);
  const model = String(body.model);

  if (body.stream !== true) {
    record.usage = usage;
    mark();
    return sendJson(res, 200, {
      id,
      object: "chat.completion",
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: words.join(""), refusal: null },
          logprobs: null,
          finish_reason: "stop",
        },
      ],
      usage,
      system_fingerprint: null,
    });
  }

  const options = body.stream_options as Record<string, unknown> | undefined;
  const includeUsage = options?.include_usage === true;
  const chunk = (delta: unknown, finish: string | null) => {
    const c: Record<string, unknown> = {
      id,
      object: "chat.completion.chunk",
      created,
      model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
    if (includeUsage) c.usage = null;
    return `data: ${JSON.stringify(c)}\n\n`;
  };
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
  const write = async (text: string) => {
    if (record.aborted) return false;
    res.write(text);
    mark();
    if (controls.chunkDelay) await sleep(controls.chunkDelay);
    return !record.aborted;
  };
  if (!(await write(chunk({ role: "assistant", content: "", refusal: null }, null)))) return;
  for (let i = 0; i < words.length; i++) {
    if (controls.cut !== undefined && i >= controls.cut) {
      // let what was written reach the client first, then break the connection mid-stream
      await sleep(20);
      res.destroy();
      return;
    }
    if (!(await write(chunk({ content: words[i] }, null)))) return;
  }
  if (!(await write(chunk({}, "stop")))) return;
  if (includeUsage) {
    record.usage = usage;
    const last = {
      id,
      object: "chat.completion.chunk",
      created,
      model,
      system_fingerprint: null,
      choices: [],
      usage,
    };
    if (!(await write(`data: ${JSON.stringify(last)}\n\n`))) return;
  }
  res.end("data: [DONE]\n\n");
  record.completed = true;
}

function embeddings(res: ServerResponse, body: Record<string, unknown>, record: DevUpstreamRecord): void {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const dimensions = numberOr(body.dimensions, 8);
  let tokens = 0;
  const data = inputs.map((input, index) => {
    const text = typeof input === "string" ? input : JSON.stringify(input);
    tokens += Array.isArray(input) ? input.length : wordCount(text);
    const vector = new Float32Array(dimensions);
    const digest = hashBytes(text, dimensions);
    for (let i = 0; i < dimensions; i++) vector[i] = digest[i] / 127.5 - 1;
    const embedding =
      body.encoding_format === "base64" ? Buffer.from(vector.buffer).toString("base64") : Array.from(vector);
    return { object: "embedding", index, embedding };
  });
  const usage = { prompt_tokens: tokens, total_tokens: tokens };
  record.usage = usage;
  record.completed = true;
  sendJson(res, 200, { object: "list", data, model: body.model, usage });
}

function images(res: ServerResponse, body: Record<string, unknown>): void {
  const n = numberOr(body.n, 1);
  const data = Array.from({ length: n }, () =>
    body.response_format === "b64_json"
      ? { b64_json: PNG_BASE64, revised_prompt: String(body.prompt ?? "") }
      : { url: `data:image/png;base64,${PNG_BASE64}`, revised_prompt: String(body.prompt ?? "") },
  );
  sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data });
}

async function speech(
  res: ServerResponse,
  body: Record<string, unknown>,
  controls: Controls,
  record: DevUpstreamRecord,
  mark: () => void,
): Promise<void> {
  const input = String(body.input ?? "");
  const format = typeof body.response_format === "string" ? body.response_format : "mp3";
  const audio = hashBytes(`${body.voice}:${input}`, 1000 + 100 * [...input].length);
  res.writeHead(200, { "content-type": AUDIO_TYPES[format] ?? "application/octet-stream" });
  for (let at = 0; at < audio.length; at += 4096) {
    if (record.aborted) return;
    res.write(audio.subarray(at, at + 4096));
    mark();
    if (controls.chunkDelay) await sleep(controls.chunkDelay);
  }
  res.end();
  record.completed = true;
}

async function transcription(
  res: ServerResponse,
  body: Record<string, unknown>,
  form: FormData | null,
): Promise<void> {
  const file = form?.get("file");
  if (!file || typeof file === "string")
    return sendError(res, 400, "file is required", undefined, null, "file");
  // as if 16 kHz 16-bit mono: 32,000 bytes a second
  const duration = Math.max(1, Math.round((file.size / 32_000) * 100)) / 100;
  const text = `Transcribed ${file.size} bytes of audio.`;
  if (body.response_format === "text") {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end(text);
    return;
  }
  const answer: Record<string, unknown> = { text, duration, usage: { type: "duration", seconds: duration } };
  if (body.response_format === "verbose_json") {
    Object.assign(answer, { task: "transcribe", language: "english", segments: [] });
  }
  sendJson(res, 200, answer);
}

function modelList() {
  const created = 1_767_225_600;
  const ids = ["dev-chat", "dev-embedding", "dev-image", "dev-tts", "dev-transcribe"];
  return {
    object: "list",
    data: ids.map((id) => ({ id, object: "model", created, owned_by: "dev-upstream" })),
  };
}

function readControls(model: string | null, headers: IncomingMessage["headers"]): Controls {
  const pairs = new Map<string, string>();
  const colon = model?.indexOf(":") ?? -1;
  if (model && colon >= 0) {
    for (const part of model.slice(colon + 1).split(",")) {
      const [k, v = ""] = part.split("=");
      if (k) pairs.set(k.trim(), v.trim());
    }
  }
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith("x-dev-") && typeof value === "string")
      pairs.set(name.slice(6).replace(/-/g, "_"), value);
  }
  const num = (k: string) => (pairs.has(k) ? Number(pairs.get(k)) || 0 : undefined);
  return {
    fail: num("fail"),
    delay: num("delay"),
    hang: pairs.has("hang"),
    chunkDelay: num("chunk_delay"),
    words: num("words"),
    cut: num("cut"),
    cached: num("cached"),
    reasoning: num("reasoning"),
  };
}

/** The text of chat messages: string contents and text parts. */
function promptText(messages: unknown): string {
  if (!Array.isArray(messages)) return "";
  const parts: string[] = [];
  for (const m of messages) {
    const content = (m as Record<string, unknown> | null)?.content;
    if (typeof content === "string") parts.push(content);
    else if (Array.isArray(content)) {
      for (const p of content) if (typeof p?.text === "string") parts.push(p.text);
    }
  }
  return parts.join("\n");
}

/** Deterministic words chosen by the prompt's hash, each with its leading space. */
function answerWords(prompt: string, count: number): string[] {
  const n = Math.max(0, Math.floor(count));
  const digest = hashBytes(prompt, n);
  return Array.from(digest, (b, i) => (i === 0 ? "" : " ") + VOCABULARY[b % VOCABULARY.length]);
}

function wordCount(text: string): number {
  const t = text.trim();
  return t ? t.split(/\s+/).length : 0;
}

/** `length` deterministic bytes from a SHA-256 chain over `seed`. */
function hashBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash("sha256").update(seed).digest();
  for (let at = 0; at < length; at += block.length) {
    block.copy(out, at, 0, Math.min(block.length, length - at));
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

function numberOr(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : fallback;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error("body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  type = "invalid_request_error",
  code: string | null = null,
  param: string | null = null,
): void {
  sendJson(res, status, { error: { message, type, param, code } });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
