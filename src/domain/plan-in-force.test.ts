import { describe, expect, it } from "vitest";
import { activationInForce } from "./plan-in-force.ts";

describe("activationInForce", () => {
  const a = { id: "a", activatedAt: 100 };
  const b = { id: "b", activatedAt: 200 };

  it("is none before the first activation, then the latest one begun", () => {
    expect(activationInForce([a, b], 99)).toBeNull();
    expect(activationInForce([a, b], 100)?.id).toBe("a");
    expect(activationInForce([a, b], 199)?.id).toBe("a");
    expect(activationInForce([a, b], 200)?.id).toBe("b");
    expect(activationInForce([b, a], 250)?.id).toBe("b");
  });

  it("stops at its end (exclusive); an earlier one still running is in force again", () => {
    const ended = { ...b, endsAt: 300 };
    expect(activationInForce([a, ended], 299)?.id).toBe("b");
    expect(activationInForce([a, ended], 300)?.id).toBe("a");
    expect(activationInForce([{ ...a, endsAt: 150 }, ended], 300)).toBeNull();
    expect(activationInForce([{ ...a, endsAt: null }], 1e12)?.id).toBe("a");
  });

  it("of two activated at one instant, the later in the list wins", () => {
    const c = { id: "c", activatedAt: 200 };
    expect(activationInForce([a, b, c], 200)?.id).toBe("c");
    expect(activationInForce([a, b, { ...c, endsAt: 250 }], 260)?.id).toBe("b");
  });
});
