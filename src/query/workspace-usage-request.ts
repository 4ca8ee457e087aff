import { DomainError } from "../domain/errors.ts";
import {
  autoTimeframe,
  type Bucket,
  bucketsBetween,
  ceilTo,
  DAY_MS,
  floorTo,
  HOUR_MS,
  isValidZone,
  MINUTE_MS,
  parseInstant,
  TIMEFRAMES,
  type Timeframe,
} from "../domain/time.ts";

/**
 * The workspace usage query (seeds/004, DESIGN.md "Workspace usage"), read from raw query-string
 * values into a resolved request: the range, its buckets and the page. Pure: no I/O, `now` given.
 */

export const EXPAND_VALUES = ["time_series", "summary", "auth_method"] as const;
export type Expand = (typeof EXPAND_VALUES)[number];

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1000;
export const MAX_ENDPOINT_IDS = 50;
/**
 * Most buckets one query may span (all pages together), counted in nominal lengths (a minute, an
 * hour, 24 hours, 7 days, 30 days): about 6.9 days of minutes, 416 days of hours. Listing buckets
 * costs a timezone lookup each, so a minute timeframe over a year (525,600 buckets) is a 400, not
 * a slow answer. Only the buckets up to the requested page are listed.
 */
export const MAX_BUCKETS = 10_000;

const NOMINAL_MS: Record<Timeframe, number> = {
  minute: MINUTE_MS,
  hour: HOUR_MS,
  day: DAY_MS,
  week: 7 * DAY_MS,
  month: 30 * DAY_MS,
};

export type RawQuery = Record<string, unknown>;

export interface WorkspaceUsageRequest {
  /** `account_id` as given (required with the operator key), else undefined */
  accountId: string | undefined;
  zone: string;
  timeframe: Timeframe;
  bound: boolean;
  /** the range actually reported: [start, end) after bounding */
  range: Bucket;
  endpointIds: string[] | undefined;
  expand: Set<Expand>;
  limit: number;
  page: number;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i;

function invalid(field: string, msg: string): DomainError {
  return DomainError.validation(["query", field], msg);
}

/** A parameter that may appear once: a string, or undefined when absent. */
function single(query: RawQuery, field: string): string | undefined {
  const v = query[field];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw invalid(field, "must be given at most once");
  if (typeof v !== "string") throw invalid(field, "must be a string");
  return v;
}

/** A list parameter: comma-separated, repeated, or both; empty items are ignored. */
function list(query: RawQuery, field: string): string[] | undefined {
  const v = query[field];
  if (v === undefined) return undefined;
  const parts = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(","));
  return [...new Set(parts.map((p) => p.trim()).filter((p) => p.length > 0))];
}

/**
 * An instant in the seed's forms: a date (`2025-01-01`, midnight in `zone`) or an ISO 8601
 * date-time; without an offset it is read in `zone`. A `+` offset sent unencoded arrives as a
 * space (form decoding) and is read as `+`.
 */
export function readQueryInstant(field: string, text: string, zone: string): number {
  let t = text.trim();
  t = t.replace(/^(\d{4}-\d{2}-\d{2}T[\d:.]+) (\d{2}(:?\d{2})?)$/i, "$1+$2");
  if (DATE_ONLY.test(t) || DATE_TIME.test(t)) {
    const at = parseInstant(t, zone);
    if (at !== null) return at;
  }
  throw invalid(field, "must be a date (2025-01-01) or an ISO 8601 date-time (2025-01-01T00:00:00Z)");
}

export function encodeCursor(page: number): string {
  return Buffer.from(String(page), "utf8").toString("base64");
}

/** The base64 of a page number (`Mg==` is page 2); padding may be left out. */
export function decodeCursor(text: string): number {
  const t = text.trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(t)) {
    const decoded = Buffer.from(t, "base64").toString("utf8");
    if (
      /^[1-9]\d{0,8}$/.test(decoded) &&
      encodeCursor(Number(decoded)).replace(/=+$/, "") === t.replace(/=+$/, "")
    )
      return Number(decoded);
  }
  throw invalid("cursor", "is not a cursor from a previous response (base64 of a page number)");
}

export interface ResolvedRange {
  timeframe: Timeframe;
  range: Bucket;
}

/**
 * The timeframe (auto-detected from the raw range when not given) and the reported range. Bound:
 * start floored and end ceiled to the timeframe's boundaries in `zone`. Unbound: exactly
 * [start, end); its buckets still break at the boundaries (see pageOfBuckets).
 */
export function resolveRange(
  start: number,
  end: number,
  zone: string,
  timeframe: Timeframe | undefined,
  bound: boolean,
): ResolvedRange {
  if (!(start < end))
    throw invalid("start", "must be before end (start defaults to 24 hours ago, end to now)");
  const tf = timeframe ?? autoTimeframe(start, end);
  const range = bound ? { start: floorTo(start, tf, zone), end: ceilTo(end, tf, zone) } : { start, end };
  if ((range.end - range.start) / NOMINAL_MS[tf] > MAX_BUCKETS) {
    throw invalid(
      "timeframe",
      `the range spans more than ${MAX_BUCKETS} ${tf} buckets: choose a larger timeframe or a shorter range`,
    );
  }
  return { timeframe: tf, range };
}

export interface BucketPage {
  buckets: Bucket[];
  hasMore: boolean;
}

/**
 * Page `page` (from 1) of `limit` buckets of the range, in order; the first starts at the range's
 * start (labelled with it even when unbound). Past the last page: no buckets.
 */
export function pageOfBuckets(
  range: Bucket,
  timeframe: Timeframe,
  zone: string,
  page: number,
  limit: number,
): BucketPage {
  const from = (page - 1) * limit;
  const listed = bucketsBetween(range.start, range.end, timeframe, zone, from + limit + 1);
  return { buckets: listed.slice(from, from + limit), hasMore: listed.length > from + limit };
}

/** Reads every parameter; throws VALIDATION naming the first bad one. */
export function parseWorkspaceUsageQuery(query: RawQuery, now: number): WorkspaceUsageRequest {
  const accountId = single(query, "account_id");

  const zone = (single(query, "timezone") ?? "UTC").trim();
  if (!isValidZone(zone)) throw invalid("timezone", `unknown IANA timezone '${zone}'`);

  const timeframeText = single(query, "timeframe");
  if (timeframeText !== undefined && !(TIMEFRAMES as readonly string[]).includes(timeframeText))
    throw invalid("timeframe", `must be one of ${TIMEFRAMES.join(", ")}`);
  const timeframe = timeframeText as Timeframe | undefined;

  const boundText = single(query, "bound_to_timeframe");
  if (boundText !== undefined && boundText !== "true" && boundText !== "false")
    throw invalid("bound_to_timeframe", "must be 'true' or 'false'");
  const bound = boundText !== "false";

  const startText = single(query, "start");
  const endText = single(query, "end");
  const start = startText === undefined ? now - DAY_MS : readQueryInstant("start", startText, zone);
  const end = endText === undefined ? now : readQueryInstant("end", endText, zone);

  const endpointIds = list(query, "endpoint_id");
  if (endpointIds !== undefined) {
    if (endpointIds.length === 0) throw invalid("endpoint_id", "must name at least one endpoint id");
    if (endpointIds.length > MAX_ENDPOINT_IDS)
      throw invalid("endpoint_id", `must name at most ${MAX_ENDPOINT_IDS} endpoint ids`);
    const long = endpointIds.find((id) => id.length > 200);
    if (long !== undefined) throw invalid("endpoint_id", "an endpoint id is at most 200 characters");
  }

  const expandList = list(query, "expand") ?? [];
  const unknown = expandList.find((e) => !(EXPAND_VALUES as readonly string[]).includes(e));
  if (unknown !== undefined)
    throw invalid("expand", `unknown value '${unknown}'; valid values: ${EXPAND_VALUES.join(", ")}`);
  const expand = new Set<Expand>(expandList.length > 0 ? (expandList as Expand[]) : ["time_series"]);
  if (!expand.has("time_series") && !expand.has("summary"))
    throw invalid("expand", "must include time_series or summary");

  const limitText = single(query, "limit");
  let limit = DEFAULT_LIMIT;
  if (limitText !== undefined) {
    if (!/^\d{1,9}$/.test(limitText.trim())) throw invalid("limit", "must be an integer");
    limit = Number(limitText.trim());
    if (limit < 1) throw invalid("limit", "must be at least 1");
    if (limit > MAX_LIMIT) throw invalid("limit", `must be at most ${MAX_LIMIT}`);
  }

  const cursorText = single(query, "cursor");
  const page = cursorText === undefined || cursorText === "" ? 1 : decodeCursor(cursorText);

  const resolved = resolveRange(start, end, zone, timeframe, bound);
  return { accountId, zone, bound, endpointIds, expand, limit, page, ...resolved };
}
