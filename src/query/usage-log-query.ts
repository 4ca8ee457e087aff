import { isAdminOf, type Principal, requireAccountAdmin } from "../auth/principal.ts";
import { DomainError } from "../domain/errors.ts";
import type { AuditEntry, Store, UsageEvent } from "../store/store.ts";

export interface PageInput {
  skip: number;
  limit: number;
}

export interface AuditFilter {
  /** the root key names the account; an admin's key reads its own */
  accountId?: string;
  usageId?: string;
  limit: number;
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
    if (p.kind === "root") {
      if (page.accountId === undefined) {
        throw DomainError.validation(["query", "account_id"], "Field required with the root key", "missing");
      }
      return this.store.listEvents({ accountId: page.accountId, skip: page.skip, limit: page.limit });
    }
    const own = p.role === "admin" ? {} : { userId: p.userId };
    return this.store.listEvents({ accountId: p.accountId, ...own, skip: page.skip, limit: page.limit });
  }

  /** `GET /usage/user/{id}`: an admin of the user's account, or the user itself. */
  async listUserRecords(p: Principal, userId: string, page: PageInput): Promise<UsageEvent[]> {
    const user = await this.store.getUser(userId);
    if (!user || (p.kind === "user" && user.accountId !== p.accountId)) {
      throw new DomainError("NOT_FOUND", "User not found");
    }
    if (!isAdminOf(p, user.accountId) && !(p.kind === "user" && p.userId === user.id)) {
      throw new DomainError("FORBIDDEN", "Only an account admin or the user itself may read these records");
    }
    return this.store.listEvents({ accountId: user.accountId, userId: user.id, ...page });
  }

  /** `GET /usage/{id}`: the record's owner or an admin of its account. */
  async getRecord(p: Principal, usageId: string): Promise<UsageEvent> {
    const event =
      p.kind === "root"
        ? await this.store.findEventByUsageId(usageId)
        : await this.store.getEvent(p.accountId, usageId);
    if (!event) throw recordNotFound();
    if (p.kind === "user" && p.role !== "admin" && event.userId !== p.userId) throw recordNotFound();
    return event;
  }

  /** Corrections and deletions of an account's records, newest first: admins and the root key. */
  async listAudit(p: Principal, filter: AuditFilter): Promise<AuditEntry[]> {
    let accountId: string;
    if (p.kind === "root") {
      if (filter.accountId === undefined) {
        throw DomainError.validation(["query", "account_id"], "Field required with the root key", "missing");
      }
      accountId = filter.accountId;
    } else {
      accountId = filter.accountId ?? p.accountId;
    }
    requireAccountAdmin(p, accountId);
    return this.store.listAudit(accountId, { usageId: filter.usageId, limit: filter.limit });
  }
}
