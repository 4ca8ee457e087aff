import { describe, expect, it } from "vitest";
import { DomainError } from "../domain/errors.ts";
import {
  type AccessRole,
  type Action,
  authorize,
  decide,
  listScope,
  POLICY,
  type Resource,
} from "./access.ts";
import type { Principal } from "./principal.ts";

const ACCOUNT = "acc-1";
const OTHER_ACCOUNT = "acc-2";
const SELF = "user-self";
const OTHER_USER = "user-other";

function principal(role: AccessRole): Principal {
  if (role === "root") return { kind: "root", keyId: null };
  return {
    kind: "user",
    accountId: ACCOUNT,
    userId: SELF,
    username: role,
    role,
    nodeId: null,
    keyId: "key-1",
    keyLabel: "Key 1",
    keyPrefix: "tly_abcd",
    keyCreatedAt: 0,
  };
}

/** The things a request can be about, as seen from the member `SELF` of `ACCOUNT`. */
const TARGETS = {
  own: { accountId: ACCOUNT, userId: SELF },
  colleague: { accountId: ACCOUNT, userId: OTHER_USER },
  account: { accountId: ACCOUNT },
  foreign: { accountId: OTHER_ACCOUNT, userId: OTHER_USER },
} as const;
type TargetName = keyof typeof TARGETS;

/**
 * The policy as a reader should be able to state it: [resource, action, root, admin, member],
 * each a list of the targets that role may reach ("-" for none). Reading this table is reading
 * who may do what; the POLICY object must agree with it cell for cell.
 */
const ALL: TargetName[] = ["own", "colleague", "account", "foreign"];
const ACC: TargetName[] = ["own", "colleague", "account"];
const OWN: TargetName[] = ["own", "account"];
const NONE: TargetName[] = [];
const EXPECTED: [Resource, Action, TargetName[], TargetName[], TargetName[]][] = [
  ["account", "read", ALL, ACC, ACC],
  ["account", "create", ALL, NONE, NONE],
  ["account", "change", ALL, NONE, NONE],
  ["user", "read", ALL, ACC, OWN],
  ["user", "create", ALL, ACC, NONE],
  ["key", "create", ALL, ACC, NONE],
  ["key", "change", ALL, ACC, NONE],
  ["usage_record", "read", ALL, ACC, OWN],
  ["usage_record", "create", ALL, ACC, ACC],
  ["usage_record", "change", ALL, ACC, NONE],
  ["audit", "read", ALL, ACC, NONE],
  ["account_usage", "read", ALL, ACC, NONE],
  ["key_stats", "read", NONE, OWN, OWN],
  ["rate_limit", "create", ALL, ACC, ACC],
  ["model", "read", ALL, ACC, ACC],
  ["model", "change", ALL, NONE, NONE],
  ["upstream", "read", ALL, NONE, NONE],
  ["upstream", "create", ALL, NONE, NONE],
  ["plan", "change", ALL, NONE, NONE],
  ["license", "create", ALL, NONE, NONE],
  ["subscription", "create", ALL, NONE, NONE],
  ["payment", "create", ALL, NONE, NONE],
  ["payment", "read", ALL, ACC, ACC],
  ["invoice", "read", ALL, ACC, NONE],
  ["invoice", "create", ALL, NONE, NONE],
  ["webhook", "change", ALL, ACC, NONE],
  ["alert", "create", ALL, ACC, NONE],
  ["budget", "read", ALL, ACC, ACC],
  ["budget", "change", ALL, ACC, NONE],
  ["portal_session", "create", ALL, NONE, NONE],
];

describe("access policy", () => {
  const roles: AccessRole[] = ["root", "admin", "member"];
  for (const [resource, action, ...allowed] of EXPECTED) {
    roles.forEach((role, i) => {
      it(`${role} ${action} ${resource}: ${allowed[i].join(", ") || "nothing"}`, () => {
        const p = principal(role);
        for (const name of Object.keys(TARGETS) as TargetName[]) {
          const verdict = decide(p, action, resource, TARGETS[name]);
          expect(verdict === "allowed", `${name}: ${verdict}`).toBe(allowed[i].includes(name));
        }
      });
    });
  }

  it("every resource has a row, and every row is in the table above", () => {
    const stated = new Set(EXPECTED.map(([r]) => r));
    expect(Object.keys(POLICY).filter((r) => !stated.has(r as Resource))).toEqual([]);
  });

  it("another account's things are not found (their existence does not leak), whatever the role", () => {
    const err = catchError(() => authorize(principal("member"), "change", "key", TARGETS.foreign));
    expect(err).toMatchObject({ code: "NOT_FOUND", message: "key not found" });
    const custom = catchError(() =>
      authorize(principal("admin"), "create", "user", TARGETS.foreign, {
        notFound: () => DomainError.notFound("account"),
      }),
    );
    expect(custom).toMatchObject({ code: "NOT_FOUND", message: "account not found" });
  });

  it("a role that reaches too little is FORBIDDEN with the row's reason", () => {
    expect(catchError(() => authorize(principal("admin"), "create", "account"))).toMatchObject({
      code: "FORBIDDEN",
      message: "This operation needs the operator (root) key",
    });
    expect(catchError(() => authorize(principal("member"), "change", "usage_record"))).toMatchObject({
      code: "FORBIDDEN",
      message: "Only an account admin may change or delete usage records",
    });
    expect(catchError(() => authorize(principal("root"), "read", "key_stats"))).toMatchObject({
      code: "FORBIDDEN",
    });
  });

  it("a colleague's record is FORBIDDEN to a member, or not found when the caller hides it", () => {
    const target = TARGETS.colleague;
    expect(catchError(() => authorize(principal("member"), "read", "usage_record", target))).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(
      catchError(() =>
        authorize(principal("member"), "read", "usage_record", target, { hideNotOwned: true }),
      ),
    ).toMatchObject({ code: "NOT_FOUND" });
  });

  it("lists cover all accounts for root, the account for an admin, the member's own things", () => {
    expect(listScope(principal("root"), "usage_record")).toEqual({ reach: "all" });
    expect(listScope(principal("admin"), "usage_record")).toEqual({ reach: "account", accountId: ACCOUNT });
    expect(listScope(principal("member"), "usage_record")).toEqual({
      reach: "own",
      accountId: ACCOUNT,
      userId: SELF,
    });
    expect(catchError(() => listScope(principal("member"), "audit"))).toMatchObject({ code: "FORBIDDEN" });
  });
});

function catchError(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}
