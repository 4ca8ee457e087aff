import { createHash, randomBytes } from "node:crypto";
import { authorize } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import { DomainError } from "../domain/errors.ts";
import type { PortalLinkRecord } from "../store/session-store.ts";
import type { Store } from "../store/store.ts";

export type { PortalLinkRecord };

export interface PortalInput {
  account_id: string;
  user_id?: string | null;
  /** how long the dashboard session the link opens lasts, in seconds */
  ttl_s?: number;
}

/** A link must be used this soon after it is made: it is handed to a person who is about to click it. */
export const PORTAL_LINK_VALID_MS = 10 * 60_000;
const DEFAULT_TTL_S = 3600;
const MAX_TTL_S = 7 * 86_400;

const digest = (token: string) => createHash("sha256").update(token, "utf8").digest("hex");

/**
 * Portal sessions (DESIGN.md "Dashboard"): an operator embeds Tally's dashboard in its own site by
 * asking for a one-time sign-in link for one account (read-only) or one of its users (that user's
 * view and rights). Only the link's digest is stored; the first visit consumes it.
 */
export class PortalService {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  async createLink(p: Principal, input: PortalInput): Promise<{ token: string; link: PortalLinkRecord }> {
    const accountId = input.account_id;
    authorize(
      p,
      "create",
      "portal_session",
      { accountId },
      { notFound: () => DomainError.notFound("account") },
    );
    const account = await this.store.getAccount(accountId);
    if (!account) throw DomainError.notFound("account");
    const userId = input.user_id ?? null;
    if (userId !== null) {
      const user = await this.store.getUser(userId);
      if (!user || user.accountId !== accountId) {
        throw DomainError.validation(["body", "user_id"], "is not a user of this account");
      }
    }
    const ttl = input.ttl_s ?? DEFAULT_TTL_S;
    if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_TTL_S) {
      throw DomainError.validation(["body", "ttl_s"], `must be whole seconds from 60 to ${MAX_TTL_S}`);
    }
    const token = randomBytes(32).toString("base64url");
    const at = this.now();
    const link: PortalLinkRecord = {
      linkHash: digest(token),
      accountId,
      userId,
      sessionTtlMs: ttl * 1000,
      createdAt: at,
      expiresAt: at + PORTAL_LINK_VALID_MS,
    };
    await this.store.createPortalLink(link);
    return { token, link };
  }

  /** The link of a token, taken now (once); null when unknown, used or expired. */
  consume(token: string): Promise<PortalLinkRecord | null> {
    return this.store.consumePortalLink(digest(token), this.now());
  }
}
