import type { Log } from "../ops/log.ts";
import type { InvoiceService } from "./invoice-service.ts";

/** How often an instance looks for periods due to close: a period closes at most this late. */
const CHECK_EVERY_MS = 5 * 60_000;

/**
 * The automatic close: every few minutes, each account's previous period is finalized once it
 * ended `graceMs` ago. Every instance may run it; closing is idempotent and race-free, so two
 * instances make one invoice. The timer never keeps the process alive; `stop` ends it on shutdown.
 */
export function startInvoiceClosing(
  invoices: InvoiceService,
  graceMs: number,
  log: Log,
  everyMs = CHECK_EVERY_MS,
): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = invoices
      .closeDue(graceMs)
      .then((made) => {
        if (made.length > 0) log.info({ invoices: made.length }, "invoices closed for the periods due");
      })
      .catch((err: unknown) =>
        log.error({ err }, "closing the invoices due failed; retried at the next check"),
      );
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  const first = setTimeout(tick, 1000);
  first.unref();
  return {
    async stop() {
      clearInterval(timer);
      clearTimeout(first);
      await running;
    },
  };
}
