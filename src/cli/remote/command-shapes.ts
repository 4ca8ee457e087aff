import type { Command } from "commander";
import type { HttpAnswer } from "../../../packages/client/src/index.ts";
import {
  type Flag,
  type RemoteCommandSpec,
  type RemoteContext,
  readAnswer,
  remoteCommand,
  send,
  show,
  table,
  UsageError,
} from "./context.ts";

/**
 * The shapes most commands take, written once: `list` (paged), `get <id>`, a change to one thing
 * by id, and `delete <id>`.
 *
 * Every `list` command: one page of `{data, has_more}` (`--limit`, `--starting-after`) or all of
 * them (`--all` follows `has_more`), as a table for people or the server's own JSON for scripts.
 */

type Item = Record<string, unknown>;

/** `--account <id>`, required: the account a list or a thing belongs to. */
export const ACCOUNT: Flag = { flags: "--account <id>", description: "the account", required: true };

interface PageFlags {
  limit?: string;
  startingAfter?: string;
  all?: boolean;
}

/** `get <id>`: the record for people, the server's JSON for scripts. */
export function getCommand<O>(
  group: Command,
  spec: { what: string; example: string; flags?: Flag[]; path: (id: string, opts: O) => string },
): Command {
  return remoteCommand<O>(group, {
    name: "get",
    description: `read ${spec.what}`,
    argument: ["<id>", "its id"],
    flags: spec.flags,
    examples: [spec.example],
    run: async (ctx, opts, id) => {
      show(ctx, await readAnswer(ctx, spec.path(id, opts)));
      return 0;
    },
  });
}

/** A change to one thing by id: the body from the flags, the changed thing shown. */
export function changeCommand<O>(
  group: Command,
  spec: {
    name: string;
    description: string;
    example: string;
    flags?: Flag[];
    method: "PATCH" | "POST";
    path: (id: string, opts: O) => string;
    body: (opts: O) => Record<string, unknown>;
    output?: (ctx: RemoteContext, answer: HttpAnswer) => void;
  },
): Command {
  return remoteCommand<O>(group, {
    name: spec.name,
    description: spec.description,
    argument: ["<id>", "its id"],
    flags: spec.flags,
    examples: [spec.example],
    run: async (ctx, opts, id) => {
      const answer = await send(ctx, spec.method, spec.path(id, opts), spec.body(opts));
      (spec.output ?? show)(ctx, answer);
      return 0;
    },
  });
}

/** Only the fields a flag was given for: a PATCH changes nothing else; none at all is a usage error. */
export function changes(fields: Record<string, unknown>): Record<string, unknown> {
  const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  if (Object.keys(given).length === 0) throw new UsageError("nothing to change: pass a flag (see --help)");
  return given;
}

/** `delete <id>`: the server answers 204; scripts get `{id, deleted: true}`. */
export function deleteCommand(
  group: Command,
  spec: { what: string; example: string; path: (id: string) => string },
): Command {
  return remoteCommand(group, {
    name: "delete",
    description: `delete ${spec.what}`,
    argument: ["<id>", "its id"],
    examples: [spec.example],
    run: async (ctx, _opts, id) => {
      await send(ctx, "DELETE", spec.path(id));
      ctx.out(ctx.json ? JSON.stringify({ id, deleted: true }) : `${id} deleted`);
      return 0;
    },
  });
}

interface ListSpec<O> {
  /** default `list` */
  name?: string;
  description: string;
  /** the positional argument, when the list belongs to one thing (`deliveries <id>`) */
  argument?: [string, string];
  flags?: Flag[];
  examples: string[];
  path: (opts: O, arg: string) => string;
  query?: (opts: O) => Record<string, string | undefined>;
  /** the table's columns: the few that matter */
  columns: string[];
  /** flattens an item for the table (nested fields), when its own fields will not do */
  row?: (item: Item) => Item;
  /** false for a route that answers everything at once (no limit, no cursor) */
  paged?: boolean;
}

const PAGING: Flag[] = [
  { flags: "--limit <n>", description: "items per page, 1 to 1000 (the server's default: 50)" },
  { flags: "--starting-after <id>", description: "start after this id (the last of the previous page)" },
  { flags: "--all", description: "every page: follow has_more to the end" },
];

/** With `--all` and no `--limit`, pages are as large as the server allows: fewer round trips. */
const ALL_PAGE_SIZE = 1000;

export function listCommand<O>(group: Command, spec: ListSpec<O>): Command {
  const paged = spec.paged !== false;
  const command: RemoteCommandSpec<O & PageFlags> = {
    name: spec.name ?? "list",
    description: spec.description,
    argument: spec.argument,
    flags: [...(spec.flags ?? []), ...(paged ? PAGING : [])],
    examples: spec.examples,
    run: async (ctx, opts, arg) => {
      const pages = await readPages(ctx, spec.path(opts, arg), spec.query?.(opts) ?? {}, paged ? opts : {});
      printList(ctx, pages, spec);
      return 0;
    },
  };
  return remoteCommand(group, command);
}

interface Pages {
  answers: HttpAnswer[];
  items: Item[];
  hasMore: boolean;
  all: boolean;
}

async function readPages(
  ctx: RemoteContext,
  path: string,
  query: Record<string, string | undefined>,
  flags: PageFlags,
): Promise<Pages> {
  let limit: number | undefined;
  if (flags.limit !== undefined) {
    if (!/^\d+$/.test(flags.limit) || Number(flags.limit) < 1 || Number(flags.limit) > 1000) {
      throw new UsageError("--limit must be a whole number from 1 to 1000");
    }
    limit = Number(flags.limit);
  } else if (flags.all) {
    limit = ALL_PAGE_SIZE;
  }
  const all = Boolean(flags.all);
  const answers: HttpAnswer[] = [];
  const items: Item[] = [];
  let after = flags.startingAfter;
  let hasMore: boolean;
  do {
    const answer = await readAnswer(ctx, path, { ...query, limit, starting_after: after });
    const page = answer.body as { data?: unknown; has_more?: unknown };
    if (!Array.isArray(page?.data)) throw new Error(`GET ${path}: the answer is not a list`);
    const data = page.data as Item[];
    answers.push(answer);
    items.push(...data);
    hasMore = page.has_more === true;
    after = data.length > 0 ? String(data[data.length - 1].id) : undefined;
    // an empty page that claims more would loop for ever
  } while (all && hasMore && after !== undefined);
  return { answers, items, hasMore, all };
}

function printList<O>(ctx: RemoteContext, pages: Pages, spec: ListSpec<O>): void {
  if (ctx.json) {
    if (pages.answers.length === 1) ctx.out(pages.answers[0].text);
    else {
      const texts = pages.answers.flatMap((a) => itemTexts(a));
      ctx.out(`{"data":[${texts.join(",")}],"has_more":${pages.hasMore}}`);
    }
    return;
  }
  ctx.out(table(pages.items.map(spec.row ?? ((i) => i)), spec.columns));
  if (pages.hasMore && !pages.all) {
    const last = pages.items.at(-1)?.id;
    ctx.err(`more: --starting-after ${String(last)}, or --all`);
  }
}

/**
 * Each item of a list answer as the server wrote it, so pages joined by `--all --json` keep exact
 * decimals exact (JSON.parse would round a cost of 19 digits). The server writes `{"data":[...`
 * first; any other layout falls back to the parsed items.
 */
export function itemTexts(answer: HttpAnswer): string[] {
  const data = (answer.body as { data: unknown[] }).data;
  const head = '{"data":[';
  const text = answer.text;
  const items: string[] = [];
  if (text.startsWith(head)) {
    let depth = 0;
    let inString = false;
    let start = head.length;
    for (let i = start; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === "\\") i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (depth > 0 && (c === "}" || c === "]")) depth--;
      else if (depth === 0 && (c === "," || c === "]")) {
        if (i > start) items.push(text.slice(start, i));
        start = i + 1;
        if (c === "]") break;
      }
    }
  }
  return items.length === data.length ? items : data.map((d) => JSON.stringify(d));
}
