import { describe, expect, it } from "vitest";
import { parseDec } from "../domain/decimal.ts";
import { buildMessage, EVENT_TYPES, isEventType, newMessageId } from "./messages.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const at = Date.UTC(2026, 10, 30, 9, 15, 0, 123);

describe("message bodies", () => {
  it("are {type, timestamp, data} with exact decimals as JSON numbers", () => {
    const m = buildMessage(
      "budget.threshold_crossed",
      {
        account_id: "acc_1",
        rule_id: "rule_1",
        metric: "cost",
        model_id: null,
        period: { start: "2026-11-01T00:00:00+00:00", end: "2026-12-01T00:00:00+00:00" },
        threshold: parseDec(80),
        value: parseDec("40.000000000000000001"),
        limit: parseDec(50),
      },
      at,
      "msg_fixed",
    );
    expect(m.id).toBe("msg_fixed");
    expect(text(m.body)).toBe(
      '{"type":"budget.threshold_crossed","timestamp":"2026-11-30T09:15:00.123Z","data":{"account_id":"acc_1",' +
        '"rule_id":"rule_1","metric":"cost","model_id":null,"period":{"start":"2026-11-01T00:00:00+00:00",' +
        '"end":"2026-12-01T00:00:00+00:00"},"threshold":80,"value":40.000000000000000001,"limit":50}}',
    );
  });

  it("serializes invoice and key events without secrets", () => {
    const inv = buildMessage(
      "invoice.finalized",
      {
        account_id: "acc_1",
        invoice_id: "inv_1",
        number: "TLY-2026-000001",
        status: "finalized",
        period: { start: "2026-10-01T00:00:00+00:00", end: "2026-11-01T00:00:00+00:00", timezone: "UTC" },
        currency: "USD",
        subtotal: parseDec("12.3456"),
        total: parseDec("12.35"),
        issued_at: "2026-11-01T01:00:00.000Z",
      },
      at,
    );
    expect(JSON.parse(text(inv.body)).data).toMatchObject({ subtotal: 12.3456, total: 12.35 });
    const key = buildMessage(
      "key.revoked",
      {
        account_id: "acc_1",
        user_id: "usr_1",
        key_id: "key_1",
        label: "Production Key",
        prefix: "tly_ab12",
        created_at: "2026-11-01T00:00:00.000Z",
        revoked_at: "2026-11-30T09:15:00.123Z",
      },
      at,
    );
    expect(Object.keys(JSON.parse(text(key.body)).data)).not.toContain("key");
  });

  it("knows the eight event types of DESIGN.md and makes unique time-ordered ids", () => {
    expect(EVENT_TYPES).toHaveLength(8);
    expect(isEventType("invoice.voided")).toBe(true);
    expect(isEventType("invoice.paid")).toBe(false);
    const ids = Array.from({ length: 50 }, () => newMessageId());
    expect(new Set(ids).size).toBe(50);
    expect(ids.every((id) => /^msg_[0-9a-f-]{36}$/.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
  });
});
