import type { SessionRecord, SessionStoreVerbs } from "../store/session-store.ts";

/**
 * Dashboard sessions. A browser holds a random 256-bit token in an HttpOnly cookie; the store keeps
 * only the token's SHA-256 digest, so a leaked store does not leak sessions. A session names the key
 * it was opened with (null for the TALLY_ADMIN_KEY root), and that key is checked again on every
 * request: revoking the key ends its sessions.
 *
 * StoreSessionStore keeps them in the store's `dashboard_sessions` table (they survive restarts and
 * span instances); MemorySessionStore, in one process, serves tests of the dashboard alone.
 */
/** A session as stored: its token's digest, the key (or portal account and user) it stands for. */
export type DashboardSession = SessionRecord;

export interface SessionStore {
  create(session: DashboardSession): Promise<void>;
  /** the session of a token digest, or null when unknown or expired at `now` */
  find(tokenHash: string, now: number): Promise<DashboardSession | null>;
  delete(tokenHash: string): Promise<void>;
}

export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, DashboardSession>();

  async create(session: DashboardSession): Promise<void> {
    this.sweep(session.createdAt);
    this.sessions.set(session.tokenHash, session);
  }

  async find(tokenHash: string, now: number): Promise<DashboardSession | null> {
    const session = this.sessions.get(tokenHash);
    if (!session) return null;
    if (session.expiresAt <= now) {
      this.sessions.delete(tokenHash);
      return null;
    }
    return session;
  }

  async delete(tokenHash: string): Promise<void> {
    this.sessions.delete(tokenHash);
  }

  /** expired sessions go when a new one is made, so the map never outgrows the live sessions */
  private sweep(now: number): void {
    for (const [hash, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(hash);
  }
}

/** Sessions in the store (both dialects): what `Store` offers for them, nothing else. */
export class StoreSessionStore implements SessionStore {
  constructor(private readonly store: SessionStoreVerbs) {}

  create(session: DashboardSession): Promise<void> {
    return this.store.createSession(session);
  }

  find(tokenHash: string, now: number): Promise<DashboardSession | null> {
    return this.store.findSession(tokenHash, now);
  }

  delete(tokenHash: string): Promise<void> {
    return this.store.deleteSession(tokenHash);
  }
}
