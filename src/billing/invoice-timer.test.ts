import { afterEach, describe, expect, it, vi } from "vitest";
import { SILENT_LOG } from "../ops/log.ts";
import type { InvoiceService } from "./invoice-service.ts";
import { startInvoiceClosing } from "./invoice-timer.ts";

describe("startInvoiceClosing", () => {
  afterEach(() => vi.useRealTimers());

  it("checks soon after start and then every interval, with the grace, until stopped", async () => {
    vi.useFakeTimers();
    const graces: number[] = [];
    const invoices = {
      closeDue: async (grace: number) => {
        graces.push(grace);
        return [];
      },
    } as unknown as InvoiceService;
    const closing = startInvoiceClosing(invoices, 3_600_000, SILENT_LOG, 60_000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(graces).toEqual([3_600_000]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(graces).toHaveLength(3);
    await closing.stop();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(graces).toHaveLength(3);
  });

  it("logs a failed check and keeps checking", async () => {
    vi.useFakeTimers();
    let calls = 0;
    const errors: unknown[] = [];
    const log = { ...SILENT_LOG, error: (o: unknown) => errors.push(o) } as typeof SILENT_LOG;
    const invoices = {
      closeDue: async () => {
        calls++;
        throw new Error("store down");
      },
    } as unknown as InvoiceService;
    const closing = startInvoiceClosing(invoices, 0, log, 60_000);
    await vi.advanceTimersByTimeAsync(61_000);
    expect(calls).toBe(2);
    expect(errors).toHaveLength(2);
    await closing.stop();
  });
});
