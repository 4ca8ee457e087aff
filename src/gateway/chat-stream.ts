import { createParser, type EventSourceMessage, type EventSourceParser } from "eventsource-parser";
import { collectChunkText } from "./token-estimate.ts";

/** A `usage` that is an object (not the `"usage":null` of every other chunk). */
const USAGE_OBJECT = /"usage"\s*:\s*\{/;

/**
 * Watches a chat completion stream on its way to the client: it finds the usage chunk and keeps
 * the text generated so far for an estimate should the stream end without one (only the text:
 * a thousand long streams open at once must not hold every chunk they passed).
 *
 * When the client asked for usage itself, every upstream chunk is forwarded as it arrived, byte
 * for byte. When Tally added `include_usage`, the usage must not reach the client, so output goes
 * event by event: each event is forwarded the moment its closing blank line arrives, the usage
 * chunk is dropped (or stripped of its usage when it also carries choices), and only the
 * unfinished tail of an event waits for its next bytes.
 */
export class ChatStreamWatcher {
  /** The upstream's usage object, once seen. */
  usage: Record<string, unknown> | null = null;
  /** `data: [DONE]` arrived. */
  done = false;
  private readonly generated: string[] = [];

  private readonly parser: EventSourceParser;
  private readonly decoder = new TextDecoder();
  private out = "";

  constructor(private readonly hideUsage: boolean) {
    this.parser = createParser({
      onEvent: (event) => this.onEvent(event),
      onComment: (comment) => {
        if (this.hideUsage) this.out += `:${comment}\n\n`;
      },
    });
  }

  /** Feeds one upstream chunk; returns what to send to the client now (maybe nothing). */
  push(chunk: Uint8Array): Uint8Array | string {
    this.parser.feed(this.decoder.decode(chunk, { stream: true }));
    if (!this.hideUsage) return chunk;
    const out = this.out;
    this.out = "";
    return out;
  }

  private onEvent(event: EventSourceMessage): void {
    const data = event.data;
    if (data === "[DONE]") {
      this.done = true;
      if (this.hideUsage) this.out += serialize(event, data);
      return;
    }
    if (USAGE_OBJECT.test(data)) {
      const chunk = parseObject(data);
      const usage = chunk?.usage;
      if (chunk && usage !== null && typeof usage === "object") {
        this.usage = usage as Record<string, unknown>;
        collectChunkText(chunk, this.generated);
        if (!this.hideUsage) return;
        const choices = chunk.choices;
        if (Array.isArray(choices) && choices.length > 0) {
          // some servers put usage on the last content chunk: forward the content without it
          delete chunk.usage;
          this.out += serialize(event, JSON.stringify(chunk));
        }
        return;
      }
    }
    const chunk = parseObject(data);
    if (chunk) collectChunkText(chunk, this.generated);
    if (this.hideUsage) this.out += serialize(event, data);
  }

  /** The text generated so far (content, refusals, reasoning, tool arguments, audio transcripts). */
  generatedText(): string {
    return this.generated.join("");
  }
}

function serialize(event: EventSourceMessage, data: string): string {
  let text = "";
  if (event.event) text += `event: ${event.event}\n`;
  if (event.id) text += `id: ${event.id}\n`;
  return `${text}data: ${data.replaceAll("\n", "\ndata: ")}\n\n`;
}

function parseObject(data: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(data);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
