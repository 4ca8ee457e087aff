/**
 * What the store keeps for dashboard sessions and portal links (issue 18). Part of `Store`.
 * Only digests of tokens are stored.
 */
export interface SessionRecord {
  tokenHash: string;
  /** the API key the session was opened with; null for the environment's root key and portal sessions */
  keyId: string | null;
  isRoot: boolean;
  /** a portal session's account and (optional) user */
  accountId: string | null;
  userId: string | null;
  createdAt: number;
  expiresAt: number;
}

export interface PortalLinkRecord {
  linkHash: string;
  accountId: string;
  userId: string | null;
  /** how long the session the link opens lasts */
  sessionTtlMs: number;
  createdAt: number;
  /** the link must be used before this */
  expiresAt: number;
}

export interface SessionStoreVerbs {
  /** also removes expired sessions and links, so the tables hold only live ones */
  createSession(s: SessionRecord): Promise<void>;
  findSession(tokenHash: string, now: number): Promise<SessionRecord | null>;
  deleteSession(tokenHash: string): Promise<void>;
  createPortalLink(l: PortalLinkRecord): Promise<void>;
  /** the link, taken now; null when unknown, used already or expired */
  consumePortalLink(linkHash: string, now: number): Promise<PortalLinkRecord | null>;
}
