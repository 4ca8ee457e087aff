import { describe, expect, it } from "vitest";
import {
  checkEntitlement,
  type LicenseWindow,
  licenseInForce,
  type PlanLists,
  planAllowsModel,
} from "./entitlements.ts";

const T0 = Date.parse("2025-01-01T00:00:00Z");
const T1 = Date.parse("2025-02-01T00:00:00Z");
const T2 = Date.parse("2025-03-01T00:00:00Z");

describe("licenseInForce", () => {
  const bounded: LicenseWindow = { startsAt: T0, endsAt: T1 };
  it("holds from starts_at (inclusive) until ends_at (exclusive)", () => {
    expect(licenseInForce([bounded], T0 - 1)).toBe(false);
    expect(licenseInForce([bounded], T0)).toBe(true);
    expect(licenseInForce([bounded], T1 - 1)).toBe(true);
    expect(licenseInForce([bounded], T1)).toBe(false);
  });
  it("never ends without ends_at", () => {
    expect(licenseInForce([{ startsAt: T0, endsAt: null }], Date.parse("2999-01-01T00:00:00Z"))).toBe(true);
  });
  it("holds when any license holds, and not with none", () => {
    const later: LicenseWindow = { startsAt: T2, endsAt: null };
    expect(licenseInForce([bounded, later], T1 + 1)).toBe(false);
    expect(licenseInForce([bounded, later], T2)).toBe(true);
    expect(licenseInForce([], T0)).toBe(false);
  });
});

describe("planAllowsModel", () => {
  const none: PlanLists = { modelWhitelist: null, modelBlacklist: null };
  it("allows everything without a plan or lists", () => {
    expect(planAllowsModel(null, "flux")).toBe(true);
    expect(planAllowsModel(none, "flux")).toBe(true);
  });
  it("allows only allow-listed models when an allow list is set", () => {
    const plan = { ...none, modelWhitelist: ["flux"] };
    expect(planAllowsModel(plan, "flux")).toBe(true);
    expect(planAllowsModel(plan, "sdxl")).toBe(false);
    expect(planAllowsModel({ ...none, modelWhitelist: [] }, "flux")).toBe(false);
  });
  it("refuses block-listed models, even when allow-listed", () => {
    expect(planAllowsModel({ ...none, modelBlacklist: ["sdxl"] }, "sdxl")).toBe(false);
    expect(planAllowsModel({ ...none, modelBlacklist: ["sdxl"] }, "flux")).toBe(true);
    expect(planAllowsModel({ modelWhitelist: ["sdxl"], modelBlacklist: ["sdxl"] }, "sdxl")).toBe(false);
  });
});

describe("checkEntitlement", () => {
  const license: LicenseWindow[] = [{ startsAt: T0, endsAt: null }];
  it("allows a licensed model the plan permits", () => {
    expect(checkEntitlement(license, null, "flux", T1)).toEqual({ allowed: true });
  });
  it("checks the license before the plan lists", () => {
    const blocking: PlanLists = { modelWhitelist: null, modelBlacklist: ["flux"] };
    expect(checkEntitlement([], blocking, "flux", T1)).toEqual({ allowed: false, reason: "not_licensed" });
    expect(checkEntitlement(license, blocking, "flux", T1)).toEqual({
      allowed: false,
      reason: "plan_blocked",
    });
    expect(checkEntitlement(license, null, "flux", T0 - 1)).toEqual({
      allowed: false,
      reason: "not_licensed",
    });
  });
});
