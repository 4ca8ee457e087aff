/**
 * Dashboard sessions. A browser holds a random 256-bit token in an HttpOnly cookie; the store keeps
 * only the token's SHA-256 digest, so a leaked store does not leak sessions. A session names the key
 * it was opened with (null for the TALLY_ADMIN_KEY root), and that key is checked again on every
 * request: revoking the key ends its sessions.
 *
 * MemorySessionStore lives in one process: sessions are lost on restart and not shared between
 * instances. A store-backed implementation needs one table (see docs/decisions, dashboard record):
 * `dashboard_sessions(token_hash text primary key, key_id text null, is_root boolean,
 * created_at bigint, expires_at bigint)` with an index on `expires_at` for the sweep.
 */
export interface DashboardSession {
  tokenHash: string;
  /** the API key the session was opened with; null for the environment's root key */
  keyId: string | null;
  isRoot: boolean;
  createdAt: number;
  expiresAt: number;
}

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
