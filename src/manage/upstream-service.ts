import { authorize } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import { DomainError } from "../domain/errors.ts";
import type { Store, Upstream } from "../store/store.ts";

export type { Upstream };

export interface CreateUpstreamInput {
  id: string;
  base_url: string;
  api_key_env?: string | null;
  timeout_ms?: number;
}

/** How long an upstream may take to answer when its record does not say. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000;
const MAX_UPSTREAM_TIMEOUT_MS = 3_600_000;
/** A POSIX environment variable name. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `POST/GET /v1/upstreams`: the servers the gateway forwards to (root only). */
export class UpstreamService {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  async create(p: Principal, input: CreateUpstreamInput): Promise<Upstream> {
    authorize(p, "create", "upstream");
    const upstream: Upstream = {
      id: input.id,
      baseUrl: readBaseUrl(input.base_url),
      apiKeyEnv: input.api_key_env ?? null,
      timeoutMs: input.timeout_ms ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      createdAt: this.now(),
    };
    if (upstream.apiKeyEnv !== null && !ENV_NAME.test(upstream.apiKeyEnv))
      throw DomainError.validation(["body", "api_key_env"], "must be an environment variable name");
    if (
      !Number.isSafeInteger(upstream.timeoutMs) ||
      upstream.timeoutMs < 1 ||
      upstream.timeoutMs > MAX_UPSTREAM_TIMEOUT_MS
    )
      throw DomainError.validation(
        ["body", "timeout_ms"],
        `must be a whole number of milliseconds, 1 to ${MAX_UPSTREAM_TIMEOUT_MS}`,
      );
    await this.store.createUpstream(upstream);
    return upstream;
  }

  async get(p: Principal, id: string): Promise<Upstream> {
    authorize(p, "read", "upstream");
    const upstream = await this.store.getUpstream(id);
    if (!upstream) throw DomainError.notFound("upstream");
    return upstream;
  }

  /** In creation order, `limit` at a time after the id `startingAfter`. */
  async list(
    p: Principal,
    limit: number,
    startingAfter?: string,
  ): Promise<{ data: Upstream[]; hasMore: boolean }> {
    authorize(p, "read", "upstream");
    let all = await this.store.listUpstreams();
    if (startingAfter !== undefined) {
      const at = all.findIndex((u) => u.id === startingAfter);
      if (at < 0)
        throw DomainError.validation(["query", "starting_after"], `unknown upstream ${startingAfter}`);
      all = all.slice(at + 1);
    }
    return { data: all.slice(0, limit), hasMore: all.length > limit };
  }
}

/** An http(s) URL without query or fragment, kept without its trailing slash. */
function readBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw DomainError.validation(["body", "base_url"], "must be an absolute http or https URL");
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash || url.username)
    throw DomainError.validation(
      ["body", "base_url"],
      "must be an http or https URL without query, fragment or credentials",
    );
  return raw.replace(/\/+$/, "");
}
