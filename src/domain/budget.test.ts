import fc from "fast-check";
import { countTokens } from "gpt-tokenizer";
import { describe, expect, it } from "vitest";
import {
  availableOf,
  bindingLimit,
  decideReservation,
  fits,
  parseBudgetInput,
  reservationOf,
  type SpendLimit,
  spendLimits,
} from "./budget.ts";
import { type Dec, parseDec } from "./decimal.ts";
import { DomainError } from "./errors.ts";

const usd = (s: string): Dec => parseDec(s);

describe("parseBudgetInput", () => {
  it("reads monthly_usd exactly, mode defaulting to hard; null removes the budget", () => {
    expect(parseBudgetInput({ monthly_usd: "12.3456789", mode: "soft" })).toEqual({
      monthlyUsd: usd("12.3456789"),
      mode: "soft",
    });
    expect(parseBudgetInput({ monthly_usd: 50 })).toEqual({ monthlyUsd: usd("50"), mode: "hard" });
    expect(parseBudgetInput(null)).toBeNull();
  });

  it.each([
    [{}, "monthly_usd: is required"],
    [{ monthly_usd: -1 }, "monthly_usd: must not be negative"],
    [{ monthly_usd: "ten" }, "monthly_usd: must be a decimal number"],
    [{ monthly_usd: 10, mode: "strict" }, 'mode: must be "hard" or "soft"'],
    [[], "must be an object {monthly_usd, mode} or null"],
  ])("refuses %j naming the field", (input, message) => {
    const err = (() => {
      try {
        parseBudgetInput(input);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe("VALIDATION");
    expect((err as DomainError).message).toBe(message);
  });
});

describe("spendLimits", () => {
  const base = { monthCost: usd("3"), paymentsTotal: usd("20"), totalCost: usd("12.5") };

  it("a postpaid account without a budget has no limit", () => {
    expect(spendLimits({ ...base, budget: null, billingMode: "postpaid" })).toEqual([]);
  });

  it("a budget counts the month's cost; prepaid credit is payments against all cost, always hard", () => {
    expect(
      spendLimits({ ...base, budget: { monthlyUsd: usd("10"), mode: "soft" }, billingMode: "prepaid" }),
    ).toEqual([
      { kind: "budget", mode: "soft", limit: usd("10"), spent: usd("3") },
      { kind: "credit", mode: "hard", limit: usd("20"), spent: usd("12.5") },
    ]);
  });
});

describe("the reservation decision", () => {
  const budget = (limit: string, spent: string, mode: "hard" | "soft" = "hard"): SpendLimit => ({
    kind: "budget",
    mode,
    limit: usd(limit),
    spent: usd(spent),
  });
  const credit = (payments: string, cost: string): SpendLimit => ({
    kind: "credit",
    mode: "hard",
    limit: usd(payments),
    spent: usd(cost),
  });

  it("fits while something is left and the amount is no more than what is left", () => {
    expect(fits(usd("1"), usd("1"))).toBe(true);
    expect(fits(usd("1"), usd("1.000000000000000001"))).toBe(false);
    expect(fits(0n, 0n)).toBe(false);
    expect(fits(usd("-1"), 0n)).toBe(false);
    expect(availableOf(usd("10"), usd("7"), usd("2.5"))).toBe(usd("0.5"));
  });

  it("hard: refuses with the 402 figures", () => {
    const d = decideReservation([budget("10", "7")], usd("2.5"), usd("0.75"));
    expect(d).toEqual({
      admit: false,
      limit: budget("10", "7"),
      refusal: {
        code: "budget_exceeded",
        message:
          "Monthly budget exceeded: this request may cost up to 0.75 USD and 0.5 USD of the 10 USD budget is left",
        limit: "10",
        spent: "7",
        held: "2.5",
        available: "0.5",
        requested: "0.75",
      },
    });
    expect(decideReservation([budget("10", "7")], usd("2.5"), usd("0.5"))).toEqual({
      admit: true,
      overBudget: [],
    });
  });

  it("soft: admits and reports the budget it goes over", () => {
    const soft = budget("10", "9.5", "soft");
    expect(decideReservation([soft], usd("0.25"), usd("1"))).toEqual({ admit: true, overBudget: [soft] });
    expect(decideReservation([soft], 0n, usd("0.5"))).toEqual({ admit: true, overBudget: [] });
  });

  it("prepaid: payments - cost is the credit; a request beyond it is refused as insufficient credit", () => {
    const c = credit("20", "19.99");
    expect(decideReservation([c], 0n, usd("0.01"))).toEqual({ admit: true, overBudget: [] });
    const d = decideReservation([c], 0n, usd("0.02"));
    expect(d.admit).toBe(false);
    if (d.admit) return;
    expect(d.refusal).toMatchObject({ code: "insufficient_credit", available: "0.01", requested: "0.02" });
    // a soft budget does not let a prepaid account spend credit it does not have
    const both = [budget("100", "0", "soft"), c];
    expect(decideReservation(both, 0n, usd("0.02")).admit).toBe(false);
  });

  it("the binding limit is the hard one with the least left", () => {
    const b = budget("10", "5");
    const c = credit("20", "17");
    expect(bindingLimit([b, c])).toBe(c);
    expect(bindingLimit([budget("1", "0", "soft")])).toBeNull();
    expect(bindingLimit([])).toBeNull();
  });

  it("property: reservations one after another admit exactly floor(limit / amount) (the last leaving >= 0)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 20n }),
        fc.bigInt({ min: 1n, max: 10n ** 19n }),
        fc.bigInt({ min: 0n, max: 10n ** 19n }),
        (limit, amount, spent) => {
          let held = 0n;
          let admitted = 0n;
          for (let i = 0; i < 200; i++) {
            const d = decideReservation([{ kind: "budget", mode: "hard", limit, spent }], held, amount);
            if (!d.admit) break;
            held += amount;
            admitted += 1n;
          }
          const headroom = limit - spent;
          const expected = headroom > 0n ? headroom / amount : 0n;
          expect(admitted).toBe(expected < 200n ? expected : 200n);
        },
      ),
    );
  });
});

describe("reservationOf", () => {
  const prices = { inputTokenPrice: usd("0.00000015"), outputTokenPrice: usd("0.0000006") };

  it("a tokenizer count of the request's text x input price + max_tokens x output price", () => {
    const text = "You are a helpful assistant.\nWhat is the capital of France?";
    const inputTokens = countTokens(text);
    expect(inputTokens).toBeGreaterThan(5);
    const r = reservationOf({
      ...prices,
      inputTokens,
      maxOutputTokens: 256,
      knownCost: null,
      defaultReservation: null,
    });
    expect(r.basis).toBe("max_cost");
    expect(r.amount).toBe(BigInt(inputTokens) * usd("0.00000015") + 256n * usd("0.0000006"));
  });

  it("exact with prices of many places", () => {
    const r = reservationOf({
      inputTokens: 3,
      maxOutputTokens: 7,
      inputTokenPrice: usd("0.000000000123"),
      outputTokenPrice: usd("0.000000000001"),
      knownCost: null,
      defaultReservation: null,
    });
    expect(r.amount).toBe(usd("0.000000000376"));
  });

  it("without max_tokens: the model's default reservation, never less than the input's cost", () => {
    const no = { ...prices, maxOutputTokens: null, knownCost: null };
    expect(reservationOf({ ...no, inputTokens: 100, defaultReservation: usd("0.05") })).toEqual({
      amount: usd("0.05"),
      basis: "default",
    });
    expect(reservationOf({ ...no, inputTokens: 1_000_000, defaultReservation: usd("0.05") })).toEqual({
      amount: usd("0.15"),
      basis: "default",
    });
    expect(reservationOf({ ...no, inputTokens: 100, defaultReservation: null })).toEqual({
      amount: usd("0.000015"),
      basis: "unbounded",
    });
  });

  it("a cost known before forwarding is reserved as is; a model without an output price needs no bound", () => {
    expect(
      reservationOf({
        ...prices,
        inputTokens: 0,
        maxOutputTokens: null,
        knownCost: usd("0.03"),
        defaultReservation: null,
      }),
    ).toEqual({ amount: usd("0.03"), basis: "known_cost" });
    expect(
      reservationOf({
        inputTokens: 10,
        maxOutputTokens: null,
        inputTokenPrice: usd("0.0000001"),
        outputTokenPrice: null,
        knownCost: null,
        defaultReservation: usd("1"),
      }),
    ).toEqual({ amount: usd("0.000001"), basis: "max_cost" });
  });

  it("refuses counts that are not whole numbers", () => {
    const r = { ...prices, maxOutputTokens: null, knownCost: null, defaultReservation: null };
    expect(() => reservationOf({ ...r, inputTokens: -1 })).toThrow(RangeError);
    expect(() => reservationOf({ ...r, inputTokens: 1.5 })).toThrow(RangeError);
  });
});
