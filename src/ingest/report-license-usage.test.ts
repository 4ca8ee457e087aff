import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DomainError } from "../domain/errors.ts";
import {
  licenseReportEventId,
  MAX_GENERATIONS_PER_REPORT,
  readNumberOfGenerations,
} from "./report-license-usage.ts";

const LOC = ["body", "number_of_generations"];

function issueOf(value: unknown) {
  try {
    readNumberOfGenerations(value, LOC);
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe("VALIDATION");
    return (err as DomainError).issues;
  }
  throw new Error(`${String(value)} was accepted`);
}

describe("readNumberOfGenerations", () => {
  it("defaults to 1 when the field is absent", () => {
    expect(readNumberOfGenerations(undefined, LOC)).toBe(1);
  });

  it("accepts every integer from 1 to the maximum", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_GENERATIONS_PER_REPORT }), (n) => {
        expect(readNumberOfGenerations(n, LOC)).toBe(n);
      }),
    );
  });

  it("refuses zero and negatives as greater_than", () => {
    fc.assert(
      fc.property(fc.integer({ max: 0 }), (n) => {
        expect(issueOf(n)).toEqual([
          { loc: LOC, msg: "Input should be greater than 0", type: "greater_than" },
        ]);
      }),
    );
  });

  it("refuses numbers above the maximum as less_than_equal", () => {
    for (const n of [MAX_GENERATIONS_PER_REPORT + 1, 2 ** 53, 1e300]) {
      expect(issueOf(n)).toEqual([
        { loc: LOC, msg: "Input should be less than or equal to 1000000", type: "less_than_equal" },
      ]);
    }
  });

  it("refuses fractions as int_from_float", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }).filter((x) => !Number.isInteger(x)),
        (x) => {
          expect(issueOf(x)[0].type).toBe("int_from_float");
        },
      ),
    );
  });

  it("refuses anything that is not a JSON number as int_type, strings included", () => {
    for (const v of ["5", "", true, false, null, [1], { n: 1 }, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(issueOf(v)).toEqual([{ loc: LOC, msg: "Input should be a valid integer", type: "int_type" }]);
    }
  });
});

describe("licenseReportEventId", () => {
  it("namespaces the client's key by model, apart from unkeyed reports' ids", () => {
    expect(licenseReportEventId("flux-1-dev", "abc")).toBe("license-report:flux-1-dev:abc");
    expect(licenseReportEventId("flux-1-dev", "abc")).not.toBe(licenseReportEventId("flux-tools", "abc"));
  });
});
