import { DomainError } from "../domain/errors.ts";
import type { Role } from "../store/store.ts";

/** Who is calling: the operator's root key, or a user's key within one account. */
export type Principal =
  | { kind: "root"; keyId: string | null }
  | {
      kind: "user";
      accountId: string;
      userId: string;
      username: string;
      role: Role;
      nodeId: string | null;
      keyId: string;
      keyLabel: string;
      keyPrefix: string;
      keyCreatedAt: number;
      secret: string;
    };

export type UserPrincipal = Extract<Principal, { kind: "user" }>;

export function requireRoot(p: Principal): void {
  if (p.kind !== "root") throw new DomainError("FORBIDDEN", "This operation needs the operator (root) key");
}

/**
 * Account scope: the root key reaches every account, an admin only its own. Other accounts'
 * ids answer NOT_FOUND, never FORBIDDEN, so their existence does not leak.
 */
export function requireAccountAdmin(p: Principal, accountId: string): void {
  if (p.kind === "root") return;
  if (p.accountId !== accountId) throw DomainError.notFound("account");
  if (p.role !== "admin") throw new DomainError("FORBIDDEN", "This operation needs an account admin key");
}

export function isAdminOf(p: Principal, accountId: string): boolean {
  return p.kind === "root" || (p.accountId === accountId && p.role === "admin");
}
