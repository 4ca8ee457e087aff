import type Database from "better-sqlite3";
import type { Query, Row, SqlExecutor, Step } from "../shared/sql.ts";
import { guardedSync } from "../store-errors.ts";

/**
 * Runs the shared statements on better-sqlite3: each text prepared once and kept (preparing costs
 * more than running most of them), synchronously, so a transaction's statements run with nothing
 * in between. int64 columns come back as bigint: money columns exceed 2^53 (a price of 9007.2 in
 * pico units).
 */
export class SqliteExecutor implements SqlExecutor {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  /** The prepared statement of `sql`, made once. */
  statement(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (stmt.reader) stmt.safeIntegers(true);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  allSync<P extends object>(q: Query<P>, args: P): Row[] {
    const { sql, parameters } = q.bind("sqlite", args);
    const stmt = this.statement(sql);
    if (!stmt.reader) {
      stmt.run(...parameters);
      return [];
    }
    return stmt.all(...parameters) as Row[];
  }

  firstSync<P extends object>(q: Query<P>, args: P): Row | undefined {
    const { sql, parameters } = q.bind("sqlite", args);
    return this.statement(sql).get(...parameters) as Row | undefined;
  }

  async all<P extends object>(q: Query<P>, args: P): Promise<Row[]> {
    return guardedSync(() => this.allSync(q, args));
  }

  async first<P extends object>(q: Query<P>, args: P): Promise<Row | undefined> {
    return guardedSync(() => this.firstSync(q, args));
  }

  async run<P extends object>(q: Query<P>, args: P): Promise<void> {
    guardedSync(() => this.allSync(q, args));
  }

  async atomically(steps: Step[]): Promise<Row[][]> {
    return guardedSync(() => this.db.transaction(() => steps.map((s) => this.allSync(s.query, s.args)))());
  }

  async decideAtomically(reads: Step[], decide: (rows: Row[][]) => Step[]): Promise<void> {
    guardedSync(() =>
      this.db
        .transaction(() => {
          const rows = reads.map((s) => this.allSync(s.query, s.args));
          for (const s of decide(rows)) this.allSync(s.query, s.args);
        })
        .immediate(),
    );
  }
}
