import pg from "pg";
import { ReferenceMemo } from "../reference-memo.ts";
import type { ReferenceCache } from "../shared/sql-store.ts";

/** The channel the reference tables' triggers notify on (migration 3). */
const REFERENCE_CHANNEL = "tally_reference";

/**
 * Reference rows remembered on PostgreSQL (docs/decisions/0010): only while `listener` hears the
 * reference tables' change notifications, from this and every other instance.
 */
export class PostgresReferenceCache implements ReferenceCache {
  /** moves with every notification: the memo forgets everything when it moves */
  private version = 0;
  private readonly memo = new ReferenceMemo(() => this.version, 0);
  listener: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private reconnect: NodeJS.Timeout | null = null;

  constructor(private readonly connection: pg.ClientConfig) {}

  remember<T>(key: string, read: () => Promise<T>): Promise<T> {
    return this.listening ? this.memo.getAsync(key, read) : read();
  }

  keyRead(): void {}

  forget(): void {
    this.memo.clear();
  }

  /**
   * Listens for the notifications that the reference tables' triggers send on commit. Only while
   * the listener is connected are reference rows remembered: if it drops, every read goes to the
   * database until it is back (retried each second), and the memo starts empty, since
   * notifications sent meanwhile were missed.
   */
  async listen(): Promise<void> {
    if (this.closed || this.listener) return;
    const client = new pg.Client(this.connection);
    this.listener = client;
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = null;
      this.listening = false;
      this.version++;
      void client.end().catch(() => {});
      if (!this.closed) {
        this.reconnect = setTimeout(() => {
          this.reconnect = null;
          void this.listen();
        }, 1000);
        this.reconnect.unref();
      }
    };
    client.on("error", lost);
    client.on("end", lost);
    // the channel is shared by every schema in the database: only this store's schema counts
    let schema: string | null = null;
    client.on("notification", (n) => {
      if (n.payload === schema) this.version++;
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${REFERENCE_CHANNEL}`);
      schema = String((await client.query("SELECT current_schema() AS s")).rows[0].s);
      if (this.listener !== client) return;
      this.version++;
      this.listening = true;
    } catch {
      lost();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnect) clearTimeout(this.reconnect);
    const listener = this.listener;
    this.listener = null;
    this.listening = false;
    await listener?.end().catch(() => {});
  }
}
