import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const HTTP = join(ROOT, "src/http");
const STORE = join(ROOT, "src/store");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Every module a file names: static imports and re-exports (types included), and dynamic imports. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) found.push(m[1]);
  return found;
}

/**
 * The one-way rule (STYLE.md): a surface validates input, calls a service verb and maps errors.
 * It never reaches the store, not even for a type: what it answers with comes from the services.
 */
describe("src/http depends on services, never on the store", () => {
  const files = sourceFiles(HTTP);

  it("finds the surfaces' files", () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it("no file under src/http imports from src/store", () => {
    const offending = files.flatMap((file) =>
      specifiers(readFileSync(file, "utf8"))
        .filter((s) => s.startsWith("."))
        .filter((s) => {
          const target = resolve(dirname(file), s);
          return target === STORE || target.startsWith(`${STORE}/`);
        })
        .map((s) => `${relative(ROOT, file)} imports ${s}`),
    );
    expect(offending).toEqual([]);
  });

  it("no file under src/http reaches the store through the services object", () => {
    const offending = files
      .filter((file) => /\bservices\.store\b/.test(readFileSync(file, "utf8")))
      .map((file) => relative(ROOT, file));
    expect(offending).toEqual([]);
  });

  it("the check sees an import of the store when there is one", () => {
    const sample = 'import type { Account } from "../../store/store.ts";';
    const [spec] = specifiers(sample);
    expect(resolve(join(HTTP, "native"), spec).startsWith(`${STORE}/`)).toBe(true);
  });
});
