import { createRequire } from "node:module";
import type { Compilable, Kysely } from "kysely";
import type { Tables } from "./tables.ts";

// Kysely's CommonJS build: its ESM build is 263 modules, and each one through tsx's ESM loader cost
// a server about 25 MB more peak memory than the same code loaded with require (docs/decisions/0015).
// `sql` is exported from here so that no module imports the ESM build beside it.
const kysely = createRequire(import.meta.url)("kysely") as typeof import("kysely");
const {
  DummyDriver,
  Kysely: KyselyBuilder,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} = kysely;
export const sql = kysely.sql;

/**
 * The SQL that both stores share, written once with Kysely's query builder and compiled once per
 * dialect (docs/decisions/0015): a `Query` is built a single time with stand-ins for its
 * parameters, and each call only puts the arguments in their places. The stores run the text
 * through their own driver handle (a cached better-sqlite3 statement, a named pg statement), so
 * a shared read costs what a hand-written one did, and SQLite stays synchronous where it must.
 */

export type Dialect = "sqlite" | "postgres";
export type Row = Record<string, unknown>;

const compileOnly = (dialect: Dialect): Kysely<Tables> =>
  new KyselyBuilder<Tables>({
    dialect: {
      createAdapter: () => (dialect === "sqlite" ? new SqliteAdapter() : new PostgresAdapter()),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) =>
        dialect === "sqlite" ? new SqliteIntrospector(db) : new PostgresIntrospector(db),
      createQueryCompiler: () =>
        dialect === "sqlite" ? new SqliteQueryCompiler() : new PostgresQueryCompiler(),
    },
  });

const BUILDERS: Record<Dialect, Kysely<Tables>> = {
  sqlite: compileOnly("sqlite"),
  postgres: compileOnly("postgres"),
};

/** One compiled statement: its text and where each parameter comes from. */
interface Compiled {
  sql: string;
  /** per parameter: the argument's name, or a constant the builder put there */
  slots: ({ arg: string } | { value: unknown })[];
}

const STAND_IN = "\u0000tally-arg:";

/** A statement of both dialects; `P` names its arguments. */
export class Query<P extends object = Record<string, never>> {
  private readonly compiled: Partial<Record<Dialect, Compiled>> = {};

  constructor(private readonly build: (db: Kysely<Tables>, p: P, dialect: Dialect) => Compilable) {}

  /** The dialect's text, compiled on first use with a stand-in for every argument. */
  text(dialect: Dialect): Compiled {
    let c = this.compiled[dialect];
    if (!c) {
      const standIns = new Proxy({} as P, { get: (_, name) => `${STAND_IN}${String(name)}` });
      const q = this.build(BUILDERS[dialect], standIns, dialect).compile();
      c = {
        sql: q.sql,
        slots: q.parameters.map((v) =>
          typeof v === "string" && v.startsWith(STAND_IN) ? { arg: v.slice(STAND_IN.length) } : { value: v },
        ),
      };
      this.compiled[dialect] = c;
    }
    return c;
  }

  /** The statement's text and parameter values for `args`. */
  bind(dialect: Dialect, args: P): { sql: string; parameters: unknown[] } {
    const c = this.text(dialect);
    const a = args as Record<string, unknown>;
    return { sql: c.sql, parameters: c.slots.map((s) => ("arg" in s ? a[s.arg] : s.value)) };
  }
}

/** A shared statement; the builder runs once per dialect, with stand-ins for `p`'s fields. */
export function query<P extends object = Record<string, never>>(
  build: (db: Kysely<Tables>, p: P, dialect: Dialect) => Compilable,
): Query<P> {
  return new Query(build);
}

/** A statement with its arguments, for `SqlExecutor.atomically`. */
export interface Step {
  query: Query<object>;
  args: object;
}

export const step = <P extends object>(q: Query<P>, args: P): Step => ({
  query: q as unknown as Query<object>,
  args,
});

/** How the shared store code runs a statement; each dialect's store.ts implements it over its driver. */
export interface SqlExecutor {
  all<P extends object>(q: Query<P>, args: P): Promise<Row[]>;
  first<P extends object>(q: Query<P>, args: P): Promise<Row | undefined>;
  run<P extends object>(q: Query<P>, args: P): Promise<void>;
  /** Runs the statements in order in one transaction; the rows each returned. */
  atomically(steps: Step[]): Promise<Row[][]>;
  /**
   * Runs `reads`, then the steps `decide` makes of their rows, in one transaction, so what the
   * reads saw still holds when the writes commit: on PostgreSQL the reads lock the rows they
   * decide on (`FOR UPDATE`), on SQLite the transaction takes the write lock first (`BEGIN
   * IMMEDIATE`). `decide` is plain code with no I/O; it may run again when PostgreSQL retries a
   * deadlock, and returns no steps to write nothing.
   */
  decideAtomically(reads: Step[], decide: (rows: Row[][]) => Step[]): Promise<void>;
}

/** The named fields of `p` (stand-ins while compiling): an INSERT's column list, written once. */
export function pick<T, K extends keyof T>(p: T, columns: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const c of columns) out[c] = p[c];
  return out;
}
