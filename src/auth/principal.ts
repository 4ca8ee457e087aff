import type { Role } from "../store/store.ts";

/**
 * Who is calling: the operator's root key, or a user's key within one account. What each may do
 * is decided in access.ts. The key's secret is not carried: a surface that shows it reads it from
 * its own request.
 */
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
    };

export type UserPrincipal = Extract<Principal, { kind: "user" }>;
