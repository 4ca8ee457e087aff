import pg from "pg";
import type { Query, Row, SqlExecutor, Step } from "../shared/sql.ts";
import { guarded } from "../store-errors.ts";

export type Db = pg.Pool | pg.PoolClient | pg.Client;

/** pg takes int64 parameters as text: a bigint is sent as its decimal digits. */
export const sqlValue = (v: unknown): unknown => (typeof v === "bigint" ? v.toString() : v);

/**
 * Runs the shared statements on the pg pool, or on a transaction's client. Statements run as
 * named prepared statements: each connection parses and plans a text once, not on every request
 * (a license report makes five such reads). The texts are a bounded set.
 */
export class PostgresExecutor implements SqlExecutor {
  /** SQL text -> name of its prepared statement */
  private readonly names = new Map<string, string>();

  constructor(private readonly pool: pg.Pool) {}

  /** Rows of `sql` as a named prepared statement, on `db` (the pool unless in a transaction). */
  async rows(sql: string, params: unknown[], db: Db = this.pool): Promise<Row[]> {
    let name = this.names.get(sql);
    if (name === undefined) {
      name = `tally_${this.names.size + 1}`;
      this.names.set(sql, name);
    }
    const { rows } = await db.query({ name, text: sql, values: params.map(sqlValue) });
    return rows;
  }

  /** A shared statement's rows, on `db`. */
  on<P extends object>(db: Db, q: Query<P>, args: P): Promise<Row[]> {
    const { sql, parameters } = q.bind("postgres", args);
    return this.rows(sql, parameters, db);
  }

  all<P extends object>(q: Query<P>, args: P): Promise<Row[]> {
    return guarded(() => this.on(this.pool, q, args));
  }

  async first<P extends object>(q: Query<P>, args: P): Promise<Row | undefined> {
    return (await this.all(q, args))[0];
  }

  async run<P extends object>(q: Query<P>, args: P): Promise<void> {
    await this.all(q, args);
  }

  atomically(steps: Step[]): Promise<Row[][]> {
    return guarded(() =>
      this.tx(async (c) => {
        const out: Row[][] = [];
        for (const s of steps) out.push(await this.on(c, s.query, s.args));
        return out;
      }),
    );
  }

  async decideAtomically(reads: Step[], decide: (rows: Row[][]) => Step[]): Promise<void> {
    await guarded(() =>
      this.tx(async (c) => {
        const rows: Row[][] = [];
        for (const s of reads) rows.push(await this.on(c, s.query, s.args));
        for (const s of decide(rows)) await this.on(c, s.query, s.args);
      }),
    );
  }

  /**
   * Runs `fn` in a transaction. A deadlock or serialization failure rolls everything back, so the
   * whole transaction is simply run again (a few times at most): `fn` must start from scratch.
   */
  tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return retryingConflicts(async () => {
      const client = await this.pool.connect();
      // A checked-out client is not watched by the pool: without a listener of our own, a
      // connection lost mid-transaction (PostgreSQL stopped) is an unhandled 'error' that ends
      // the process. The statement in flight rejects with it; the client is then discarded.
      let broken: Error | undefined;
      const lost = (err: Error) => {
        broken = err;
      };
      client.on("error", lost);
      try {
        await client.query("BEGIN");
        const result = await fn(client);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        if (err instanceof pg.DatabaseError) {
          await client.query("ROLLBACK").catch((rollbackErr: Error) => {
            broken ??= rollbackErr;
          });
        } else {
          // not the server's answer (a timeout, a lost connection): the connection's state is
          // unknown, so it is discarded rather than rolled back and handed to the next caller
          broken ??= err instanceof Error ? err : new Error(String(err));
        }
        throw err;
      } finally {
        client.off("error", lost);
        client.release(broken);
      }
    });
  }
}

/**
 * Runs `attempt` again (a few times at most) when PostgreSQL aborted it for a deadlock or a
 * serialization failure: it was rolled back whole, so running it again is safe.
 */
export async function retryingConflicts<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code === "40P01" || code === "40001") && n < 4) continue;
      throw err;
    }
  }
}
