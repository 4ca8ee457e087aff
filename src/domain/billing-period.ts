import { DateTime } from "luxon";
import { DomainError } from "./errors.ts";
import { isValidZone } from "./time.ts";

/**
 * Billing periods: calendar months in the account's `billing_timezone`. A period is the half-open
 * range [start, end) of instants between two local midnights on the first of a month, so months
 * that end on a DST change (23- or 25-hour days) and zones at +05:30 or +05:45 tile time exactly.
 * Calendar arithmetic is Luxon's over the platform's IANA database.
 */

export interface BillingPeriod {
  /** "2026-11": the local year and month */
  label: string;
  /** epoch ms of local midnight on the 1st, inclusive */
  start: number;
  /** epoch ms of local midnight on the 1st of the next month, exclusive */
  end: number;
  timezone: string;
}

const LABEL = /^(\d{4})-(\d{2})$/;

function periodOf(local: DateTime, timezone: string): BillingPeriod {
  const first = local.startOf("month");
  return {
    label: first.toFormat("yyyy-MM"),
    start: first.toMillis(),
    // the next month's own start: where a zone's midnight fell in a gap (Lord Howe on 1 March 1981
    // jumped from +10:00 to +10:30 at 00:00), this month began at 00:30, but the next begins at 00:00
    end: first.plus({ months: 1 }).startOf("month").toMillis(),
    timezone,
  };
}

function checkZone(timezone: string): void {
  if (!isValidZone(timezone)) {
    throw DomainError.validation(["billing_timezone"], "must be an IANA timezone (e.g. Europe/Paris)");
  }
}

/** The period containing the instant `at` in `timezone`. */
export function periodContaining(at: number, timezone: string): BillingPeriod {
  checkZone(timezone);
  return periodOf(DateTime.fromMillis(at, { zone: timezone }), timezone);
}

/** The period named by a label ("2026-11"); a bad label is a validation error on `period`. */
export function periodOfLabel(label: string, timezone: string): BillingPeriod {
  checkZone(timezone);
  const m = LABEL.exec(label);
  const month = m ? Number(m[2]) : 0;
  if (!m || month < 1 || month > 12 || Number(m[1]) < 1970) {
    throw DomainError.validation(["period"], "must be a month as YYYY-MM (e.g. 2026-11)");
  }
  return periodOf(DateTime.fromObject({ year: Number(m[1]), month, day: 1 }, { zone: timezone }), timezone);
}

/** The period after `period`, in the same zone. */
export function nextPeriod(period: BillingPeriod): BillingPeriod {
  return periodContaining(period.end, period.timezone);
}

/** The period before `period`, in the same zone. */
export function previousPeriod(period: BillingPeriod): BillingPeriod {
  return periodContaining(period.start - 1, period.timezone);
}

/** The year of an instant in UTC: invoice numbers run per year of finalization in UTC. */
export function utcYear(at: number): number {
  return new Date(at).getUTCFullYear();
}
