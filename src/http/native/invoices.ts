import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { type Invoice, invoiceDocument } from "../../billing/invoice-builder.ts";
import { renderInvoiceCsv } from "../../billing/render-csv.ts";
import type { Services } from "../../services.ts";
import { principalOf } from "../auth.ts";
import { dec } from "../json.ts";
import { Id } from "./schemas.ts";

/** An invoice on the wire (DESIGN.md "Billing"): exact decimals as JSON numbers. */
const invoiceJson = (inv: Invoice) => invoiceDocument(inv, { decimal: dec });

const AccountId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

/**
 * Invoices: the upcoming draft, close (root; also automatic and `tally invoices close`), list,
 * read as JSON, CSV or the PDF stored at finalization, and void.
 */
export function invoiceRoutes(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/v1/accounts/:id/invoices/upcoming",
      {
        schema: {
          tags: ["billing"],
          summary: "The open period's invoice, live (status draft)",
          params: AccountId,
        },
      },
      async (request) =>
        invoiceJson(await services.invoices.upcoming(principalOf(request), request.params.id)),
    );

    app.post(
      "/v1/invoices/close",
      {
        schema: {
          tags: ["billing"],
          summary:
            "Finalize a period (root): one account's, or every account with usage or a base fee in it; idempotent",
          body: Type.Object(
            {
              period: Type.String({ minLength: 1, maxLength: 20, description: "YYYY-MM, e.g. 2026-11" }),
              account_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const { period, account_id } = request.body;
        const invoices = await services.invoices.close(principalOf(request), period, account_id);
        return { invoices: invoices.map(invoiceJson) };
      },
    );

    app.get(
      "/v1/accounts/:id/invoices",
      { schema: { tags: ["billing"], summary: "An account's invoices", params: AccountId } },
      async (request) => {
        const invoices = await services.invoices.list(principalOf(request), request.params.id);
        return { data: invoices.map(invoiceJson), has_more: false };
      },
    );

    app.get(
      "/v1/invoices/:id",
      { schema: { tags: ["billing"], summary: "Read an invoice (JSON)", params: Id } },
      async (request) =>
        invoiceJson((await services.invoices.get(principalOf(request), request.params.id)).invoice),
    );

    app.get(
      "/v1/invoices/:id.csv",
      {
        schema: {
          tags: ["billing"],
          summary: "An invoice as CSV: one row per line and tier, summing to the total",
          params: Id,
        },
      },
      async (request, reply) => {
        const { invoice } = await services.invoices.get(principalOf(request), request.params.id);
        return reply
          .type("text/csv; charset=utf-8")
          .header("content-disposition", `attachment; filename="${invoice.number ?? invoice.id}.csv"`)
          .send(renderInvoiceCsv(invoice));
      },
    );

    app.get(
      "/v1/invoices/:id.pdf",
      {
        schema: {
          tags: ["billing"],
          summary: "An invoice as PDF, the file rendered at finalization",
          params: Id,
        },
      },
      async (request, reply) => {
        const { invoice, pdf } = await services.invoices.get(principalOf(request), request.params.id);
        return reply
          .type("application/pdf")
          .header("content-disposition", `attachment; filename="${invoice.number ?? invoice.id}.pdf"`)
          .send(pdf);
      },
    );

    app.post(
      "/v1/invoices/:id/void",
      { schema: { tags: ["billing"], summary: "Void a finalized invoice (root)", params: Id } },
      async (request) => invoiceJson(await services.invoices.void(principalOf(request), request.params.id)),
    );
  };
}
