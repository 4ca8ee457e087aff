import { authorize, listScope } from "../auth/access.ts";
import type { Principal } from "../auth/principal.ts";
import { DomainError } from "../domain/errors.ts";
import type { AuditEntry, Page, Store, UsageEvent } from "../store/store.ts";

export type { AuditEntry, UsageEvent };

export interface PageInput {
  skip: number;
  limit: number;
}

export interface AuditFilter {
  /** the root key names the account; an admin's key reads its own */
  accountId?: string;
  usageId?: string;
  /** what changed: usage_record, account, user, key, license, subscription, payment */
  resourceType?: string;
  resourceId?: string;
  limit: number;
  /** the last id of the previous page (an entry of this very list) */
  startingAfter?: string;
}

const recordNotFound = () => new DomainError("NOT_FOUND", "Usage record not found");

/**
 * The usage log's read verbs (seed 001): records newest first, scoped by who asks. An admin
 * sees the whole account, a member only its own records; other accounts' ids are not found.
 */
export class UsageLogQuery {
  constructor(private readonly store: Store) {}

  /** `GET /usage`: the account's records for an admin (or the root key naming one), else the caller's own. */
  async listRecords(p: Principal, page: PageInput & { accountId?: string }): Promise<UsageEvent[]> {
    const scope = listScope(p, "usage_record");
    const paging = { skip: page.skip, limit: page.limit };
    if (scope.reach === "all") {
      if (page.accountId === undefined) {
        throw DomainError.validation(["query", "account_id"], "Field required with the root key", "missing");
      }
      return this.store.listEvents({ accountId: page.accountId, ...paging });
    }
    const own = scope.reach === "own" ? { userId: scope.userId } : {};
    return this.store.listEvents({ accountId: scope.accountId, ...own, ...paging });
  }

  /** `GET /usage/user/{id}`: an admin of the user's account, or the user itself. */
  async listUserRecords(p: Principal, userId: string, page: PageInput): Promise<UsageEvent[]> {
    const user = await this.store.getUser(userId);
    const userNotFound = () => new DomainError("NOT_FOUND", "User not found");
    if (!user) throw userNotFound();
    authorize(
      p,
      "read",
      "usage_record",
      { accountId: user.accountId, userId: user.id },
      { notFound: userNotFound },
    );
    return this.store.listEvents({ accountId: user.accountId, userId: user.id, ...page });
  }

  /** `GET /usage/{id}`: the record's owner or an admin of its account. */
  async getRecord(p: Principal, usageId: string): Promise<UsageEvent> {
    const event =
      p.kind === "root"
        ? await this.store.findEventByUsageId(usageId)
        : await this.store.getEvent(p.accountId, usageId);
    if (!event) throw recordNotFound();
    authorize(p, "read", "usage_record", event, { notFound: recordNotFound, hideNotOwned: true });
    return event;
  }

  /**
   * Every change to an account's records and resources, newest first, a page at a time: admins
   * and the root key. The cursor must be an entry of this very list (same account and filters).
   */
  async listAudit(p: Principal, filter: AuditFilter): Promise<Page<AuditEntry>> {
    let accountId: string;
    if (p.kind === "root") {
      if (filter.accountId === undefined) {
        throw DomainError.validation(["query", "account_id"], "Field required with the root key", "missing");
      }
      accountId = filter.accountId;
    } else {
      accountId = filter.accountId ?? p.accountId;
    }
    authorize(p, "read", "audit", { accountId }, { notFound: () => DomainError.notFound("account") });
    const { startingAfter, ...rest } = filter;
    let before: { at: number; id: string } | null = null;
    if (startingAfter !== undefined) {
      const e = await this.store.getAuditEntry(startingAfter);
      const inList =
        e !== null &&
        e.accountId === accountId &&
        (filter.resourceType === undefined || e.resourceType === filter.resourceType) &&
        (filter.resourceId === undefined || e.resourceId === filter.resourceId) &&
        (filter.usageId === undefined || e.usageId === filter.usageId);
      if (!e || !inList)
        throw DomainError.validation(["query", "starting_after"], "is not an id in this list");
      before = { at: e.at, id: e.id };
    }
    // copied with Object.assign (an internal filter), not `{ ...rest, more }`: decision 0021, "Spreads"
    return this.store.findAudit(Object.assign({}, rest, { accountId, before }));
  }
}
