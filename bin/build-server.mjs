#!/usr/bin/env node
// Builds what `npm start` runs (`prestart`): src/main.ts and every module it imports, compiled by
// esbuild into one ES module, dist/main.mjs (with its source map; packages stay in node_modules),
// and the dashboard's static files beside it in dist/static. Run through tsx instead, the server
// compiled its modules at each start and kept tsx's loader thread alive: 45 MB more RSS and more
// CPU per request (docs/decisions/0021). Takes well under a second.
import { copyFileSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const root = join(import.meta.dirname, "..");
const dist = join(root, "dist");

/** Writes a file under a temporary name, then renames it: a server starting meanwhile reads a whole file. */
function put(path, write) {
  const tmp = `${path}.${process.pid}.tmp`;
  write(tmp);
  renameSync(tmp, path);
}

mkdirSync(join(dist, "static"), { recursive: true });
const result = await build({
  entryPoints: [join(root, "src/main.ts")],
  outfile: join(dist, "main.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  write: false,
  logLevel: "warning",
});
// the map first: a server that reads the new bundle finds the map that goes with it
const files = [...result.outputFiles].sort(
  (a, b) => Number(b.path.endsWith(".map")) - Number(a.path.endsWith(".map")),
);
for (const file of files) put(file.path, (tmp) => writeFileSync(tmp, file.contents));

const staticDir = join(root, "src/dashboard/static");
for (const name of readdirSync(staticDir)) {
  put(join(dist, "static", name), (tmp) => copyFileSync(join(staticDir, name), tmp));
}
