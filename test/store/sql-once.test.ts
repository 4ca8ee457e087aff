import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * SQL is written once: outside the hot-path files, no statement or table definition may appear
 * in both dialect folders. What both dialects run belongs in src/store/shared/ (Kysely query
 * modules, shared/schema.ts); a dialect folder keeps only what only that dialect says.
 */

const STORE = join(import.meta.dirname, "../../src/store");
/** Hand-tuned per dialect on purpose (measured; docs/decisions/0015): append, aggregate, series interning. */
const HOT_PATHS = new Set(["append.ts", "aggregate.ts"]);

const STATEMENT_START =
  /\b(SELECT|INSERT\s+INTO|UPDATE\s+\w+(\s+\w+)?\s+SET|DELETE\s+FROM|CREATE\s+(TEMP\s+)?TABLE|CREATE\s+(UNIQUE\s+)?INDEX|ALTER\s+TABLE|DROP\s+TABLE|WITH\s+\w+\s+AS)\b/i;

/** The SQL statements in a source text's string literals, normalized so the dialects' spellings compare equal. */
function sqlStatements(source: string): string[] {
  const literals = [...source.matchAll(/`((?:\\.|[^`\\])*)`|"((?:\\.|[^"\\])*)"/g)].map((m) => m[1] ?? m[2]);
  const out: string[] = [];
  for (const literal of literals) {
    for (const piece of literal.split(";")) {
      const at = piece.search(STATEMENT_START);
      if (at < 0) continue;
      const text = normalize(piece.slice(at));
      if (text.split(" ").length >= 3) out.push(text);
    }
  }
  return out;
}

function normalize(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, " ")
    .replace(/\$\{[^}]*\}/g, "?") // interpolations
    .replace(/\$\d+|\?|@\w+/g, "?") // placeholders of either dialect
    .replace(/::\w+(\[\])?/g, "") // PostgreSQL casts
    .replace(/\b(INTEGER|BIGINT|INT8)\b/gi, "int")
    .replace(/\s+/g, " ")
    .replace(/\s*([(),])\s*/g, "$1")
    .trim()
    .toLowerCase();
}

function statementsOf(dialect: "sqlite" | "postgres"): Map<string, string> {
  const dir = join(STORE, dialect);
  const found = new Map<string, string>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".ts") || file.endsWith(".test.ts") || HOT_PATHS.has(file)) continue;
    for (const s of sqlStatements(readFileSync(join(dir, file), "utf8"))) found.set(s, `${dialect}/${file}`);
  }
  return found;
}

describe("SQL written once", () => {
  it("finds statements and table definitions, whatever the dialect's spelling", () => {
    const sqlite = sqlStatements(
      'run("SELECT * FROM accounts WHERE id = ?"); `CREATE TABLE t (\n  n INTEGER\n);`',
    );
    const postgres = sqlStatements('q("SELECT * FROM accounts WHERE id = $1"); `CREATE TABLE t (n BIGINT)`');
    expect(sqlite).toEqual(postgres);
    expect(sqlite).toEqual(["select * from accounts where id = ?", "create table t(n int)"]);
    expect(
      sqlStatements("`UPDATE api_keys k SET last_used_at = u.at FROM unnest($1::text[]) AS u(id)`"),
    ).toEqual(["update api_keys k set last_used_at = u.at from unnest(?)as u(id)"]);
    // a statement both folders wrote is reported
    const both = sqlStatements('"DELETE FROM plans WHERE id = ?"');
    expect(both.filter((x) => sqlStatements("`DELETE FROM plans WHERE id = $1`").includes(x))).toHaveLength(
      1,
    );
  });

  it("no statement outside the hot paths is written in both dialect folders", () => {
    const sqlite = statementsOf("sqlite");
    const postgres = statementsOf("postgres");
    // the extractor sees each folder's own SQL (so an empty result cannot pass by accident)
    expect(sqlite.size).toBeGreaterThan(0);
    expect(postgres.size).toBeGreaterThan(0);
    const twice = [...sqlite.keys()]
      .filter((s) => postgres.has(s))
      .map((s) => `${sqlite.get(s)} and ${postgres.get(s)}: ${s}`);
    expect(twice, "move these to src/store/shared/").toEqual([]);
  });
});
