import { createRequire } from "node:module";
import type PDFDocumentClass from "pdfkit";
import type { TierLine } from "../domain/charges.ts";
import { type Dec, formatDec, ONE } from "../domain/decimal.ts";
import { formatLocal } from "../domain/time.ts";
import type { Invoice, InvoiceLine } from "./invoice-builder.ts";

/**
 * An invoice as PDF, rendered in process with pdfkit and its built-in Helvetica (no font files
 * embedded). The bytes depend only on the invoice and the operator: the document's dates and
 * file id are derived from the invoice, never from the clock, so a finalized invoice's PDF is the
 * same file every time it is rendered.
 */

export interface InvoiceOperator {
  name: string;
  /** address lines, printed in order */
  address: readonly string[];
  email?: string;
}

export interface RenderPdfOptions {
  operator: InvoiceOperator;
  /** the account's display name, when known (the account id is always printed) */
  accountName?: string;
}

const PAGE = { width: 595.28, height: 841.89 }; // A4
const MARGIN = 50;
const RIGHT = PAGE.width - MARGIN;
const BOTTOM = PAGE.height - MARGIN - 20;
/** columns: description, quantity, included, billable, amount (right edges after the first) */
const COL = { desc: MARGIN, descWidth: 215, qty: 335, incl: 395, bill: 465, amount: RIGHT };
const GREY = "#555555";

/**
 * pdfkit is loaded with the first PDF, through its CommonJS build: imported at start (ESM, through
 * tsx's loader) it was 26 MB of the server's peak memory, loaded this way it is about 10 MB, and
 * only in a process that renders an invoice.
 */
let pdfkit: typeof PDFDocumentClass | null = null;
const loadPdfkit = (): typeof PDFDocumentClass =>
  (pdfkit ??= createRequire(import.meta.url)("pdfkit") as typeof PDFDocumentClass);

export function renderInvoicePdf(inv: Invoice, options: RenderPdfOptions): Promise<Buffer> {
  const PDFDocument = loadPdfkit();
  // the invoice's own time: its issue, or for a draft the end of its period
  const stamp = new Date(inv.issuedAt ?? inv.period.end);
  const doc = new PDFDocument({
    size: "A4",
    margin: MARGIN,
    compress: true,
    // no default font: openFonts gives the document the two it uses, metrics shared
    ...(sharedFonts ? { font: "" } : {}),
    info: {
      Title: `Invoice ${inv.number ?? inv.id}`,
      Author: options.operator.name,
      Subject: `${inv.accountId} ${inv.period.label}`,
      Producer: "Tally",
      Creator: "Tally",
      CreationDate: stamp,
      ModDate: stamp,
    },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on("data", (c: Buffer) => chunks.push(c));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });
  openFonts(doc);
  new Layout(doc, inv, options).draw();
  doc.end();
  return done;
}

/**
 * pdfkit parses a standard font's metrics (a few thousand kerning pairs) for every document that
 * uses it: at a month's close that was a tenth of the time. The first document opens Helvetica
 * and Helvetica-Bold as pdfkit does; later ones get fonts with the same ids, in the same order,
 * over the same parsed metrics, so the bytes are those pdfkit writes itself (pdfkit is pinned:
 * this reads its font table, `_fontFamilies`).
 */
interface FontTable {
  _fontFamilies: Record<string, PdfFont>;
  _fontCount: number;
  _font: PdfFont | null;
  _fontSource: string;
}
type PdfFont = Record<string, unknown> & { name: string; id: string };
const FONTS = ["Helvetica", "Helvetica-Bold"] as const;
let sharedFonts: PdfFont[] | null = null;

/** The parts of pdfkit's AFMFont that every glyph of every text run asks. */
interface AfmMetrics {
  kernPairs: Record<string, number>;
  glyphWidths: Record<string, number>;
  getKernPair(left: string, right: string): number;
  widthOfGlyph(glyph: string): number;
}

/**
 * The same answers from maps: pdfkit looks a kerning pair up by concatenating the two glyph names
 * into a new string key of an object with thousands of keys, a fifth of a PDF's time.
 */
function fastMetrics(afm: AfmMetrics): void {
  const kerning = new Map<string, Map<string, number>>();
  for (const [pair, amount] of Object.entries(afm.kernPairs)) {
    const [left, right] = pair.split("\0");
    let row = kerning.get(left);
    if (!row) {
      row = new Map();
      kerning.set(left, row);
    }
    row.set(right, amount);
  }
  const widths = new Map(Object.entries(afm.glyphWidths));
  afm.getKernPair = (left, right) => kerning.get(left)?.get(right) || 0;
  afm.widthOfGlyph = (glyph) => widths.get(glyph) || 0;
}

function openFonts(doc: PDFKit.PDFDocument): void {
  const table = doc as unknown as FontTable;
  if (!sharedFonts) {
    // as pdfkit's constructor does (F1, the default font), then F2; keep them as templates
    for (const name of FONTS) doc.font(name);
    const fonts = FONTS.map((name) => table._fontFamilies[name]);
    if (fonts.every((f) => f && typeof f.font === "object")) {
      for (const f of fonts) fastMetrics(f.font as AfmMetrics);
      sharedFonts = fonts;
    }
    doc.font(FONTS[0]);
    return;
  }
  for (const template of sharedFonts) {
    const font: PdfFont = Object.create(Object.getPrototypeOf(template));
    for (const key of ["name", "font", "ascender", "descender", "bbox", "lineGap", "xHeight", "capHeight"])
      font[key] = template[key];
    font.document = doc;
    font.id = `F${++table._fontCount}`;
    table._fontFamilies[font.name] = font;
  }
  table._fontSource = FONTS[0];
  table._font = table._fontFamilies[FONTS[0]];
}

class Layout {
  private y = MARGIN;
  private page = 1;

  constructor(
    private readonly doc: PDFKit.PDFDocument,
    private readonly inv: Invoice,
    private readonly options: RenderPdfOptions,
  ) {}

  draw(): void {
    this.header();
    this.linesTable();
    if (this.inv.adjustments.length > 0) this.adjustments();
    this.totals();
    this.footer();
  }

  private header(): void {
    const { doc, inv } = this;
    const op = this.options.operator;
    doc.font("Helvetica-Bold").fontSize(16).fillColor("black").text(op.name, MARGIN, this.y, { width: 260 });
    doc.font("Helvetica").fontSize(9).fillColor(GREY);
    for (const line of [...op.address, ...(op.email ? [op.email] : [])]) doc.text(line, { width: 260 });
    const left = doc.y;

    const title =
      inv.status === "draft" ? "DRAFT INVOICE" : inv.status === "void" ? "VOID INVOICE" : "INVOICE";
    doc
      .font("Helvetica-Bold")
      .fontSize(20)
      .fillColor("black")
      .text(title, 320, MARGIN, { width: RIGHT - 320, align: "right" });
    doc.font("Helvetica").fontSize(9);
    let factY = doc.y + 4;
    const facts: [string, string][] = [
      ["Number", inv.number ?? (inv.status === "no_charge" ? "none (no charge)" : "not assigned")],
      ["Status", inv.status],
      [
        "Issued",
        inv.issuedAt === null
          ? "not issued"
          : `${new Date(inv.issuedAt).toISOString().slice(0, 16).replace("T", " ")} UTC`,
      ],
      ["Invoice id", inv.id],
    ];
    for (const [k, v] of facts) {
      this.fact(k, v, factY);
      factY += 12;
    }
    this.y = Math.max(left, factY) + 18;

    const period = inv.period;
    const first = formatLocal(period.start, period.timezone).slice(0, 10);
    const last = formatLocal(period.end - 1, period.timezone).slice(0, 10);
    doc.font("Helvetica-Bold").fontSize(10).fillColor("black").text("Billed to", MARGIN, this.y);
    doc.font("Helvetica").fontSize(9);
    if (this.options.accountName) doc.text(this.options.accountName, MARGIN, doc.y, { width: 260 });
    doc.fillColor(GREY).text(`Account ${inv.accountId}`, MARGIN, doc.y, { width: 260 });
    const afterAccount = doc.y;
    doc
      .font("Helvetica-Bold")
      .fontSize(10)
      .fillColor("black")
      .text("Period", 320, this.y, { width: RIGHT - 320, align: "right" });
    doc.font("Helvetica").fontSize(9).fillColor(GREY);
    doc.text(`${period.label}: ${first} to ${last}`, 320, doc.y, { width: RIGHT - 320, align: "right" });
    doc.text(`${period.timezone}, all amounts in ${inv.currency}`, 320, doc.y, {
      width: RIGHT - 320,
      align: "right",
    });
    this.y = Math.max(afterAccount, doc.y) + 20;
  }

  /** "Label: value", right-aligned at the page's right margin. */
  private fact(label: string, value: string, y: number): void {
    const { doc } = this;
    const vw = doc.widthOfString(value);
    const lw = doc.widthOfString(`${label}: `);
    doc.fillColor(GREY).text(`${label}: `, RIGHT - vw - lw, y, { lineBreak: false });
    doc.fillColor("black").text(value, RIGHT - vw, y, { lineBreak: false });
  }

  private linesTable(): void {
    this.tableHeader();
    for (const line of this.inv.lines) this.line(line);
  }

  private tableHeader(): void {
    const { doc } = this;
    this.ensure(30);
    doc.font("Helvetica-Bold").fontSize(8.5).fillColor("black");
    const y = this.y;
    doc.text("Description", COL.desc, y, { width: COL.descWidth });
    this.right("Quantity", COL.qty, y);
    this.right("Included", COL.incl, y);
    this.right("Billable", COL.bill, y);
    this.right("Amount", COL.amount, y);
    this.y = y + 13;
    this.rule(0.8);
  }

  private line(line: InvoiceLine): void {
    const { doc } = this;
    doc.font("Helvetica").fontSize(9);
    const title = line.description;
    const height =
      doc.heightOfString(title, { width: COL.descWidth }) +
      4 +
      line.tiers.length * 11 +
      (line.events > 0 ? 10 : 0);
    this.ensure(height + 8, true);
    const y = this.y;
    doc.fillColor("black").text(title, COL.desc, y, { width: COL.descWidth });
    let below = doc.y;
    if (line.events > 0) {
      doc
        .fontSize(7.5)
        .fillColor(GREY)
        .text(`${group(BigInt(line.events))} event${line.events === 1 ? "" : "s"}`, COL.desc, below, {
          width: COL.descWidth,
        });
      below = doc.y;
      doc.fontSize(9);
    }
    doc.fillColor("black");
    this.right(num(line.quantity), COL.qty, y);
    this.right(num(line.includedQuantity), COL.incl, y);
    this.right(num(line.billableQuantity), COL.bill, y);
    doc.font("Helvetica-Bold");
    this.right(num(line.amount), COL.amount, y);
    doc.font("Helvetica");
    this.y = below + 2;
    if (line.tiers.length > 1 || (line.tiers.length === 1 && line.modelId !== null)) {
      doc.fontSize(7.5).fillColor(GREY);
      for (const t of line.tiers) {
        doc.text(tierText(line, t), COL.desc + 12, this.y, {
          width: COL.bill - COL.desc - 12,
          lineBreak: false,
        });
        this.right(num(t.amount), COL.amount, this.y);
        this.y += 10;
      }
      doc.fontSize(9).fillColor("black");
    }
    this.y += 5;
    this.rule(0.3);
  }

  private adjustments(): void {
    const { doc } = this;
    this.y += 10;
    this.ensure(40);
    doc
      .font("Helvetica-Bold")
      .fontSize(10)
      .fillColor("black")
      .text("Adjustments for earlier periods", MARGIN, this.y);
    this.y = doc.y + 4;
    this.rule(0.8);
    for (const a of this.inv.adjustments) {
      doc.font("Helvetica").fontSize(9);
      const text = a.description.includes(a.period) ? a.description : `${a.period}: ${a.description}`;
      this.ensure(doc.heightOfString(text, { width: COL.bill - MARGIN }) + 8);
      const y = this.y;
      doc.fillColor("black").text(text, MARGIN, y, { width: COL.bill - MARGIN });
      const below = doc.y;
      this.right(num(a.quantity), COL.bill, y);
      doc.font("Helvetica-Bold");
      this.right(num(a.amount), COL.amount, y);
      this.y = below + 5;
      this.rule(0.3);
    }
  }

  private totals(): void {
    const { doc, inv } = this;
    this.y += 10;
    this.ensure(60);
    doc.font("Helvetica").fontSize(9).fillColor(GREY);
    doc.text("Subtotal (exact)", COL.incl - 60, this.y, { width: 140, lineBreak: false });
    this.right(num(inv.subtotal), COL.amount, this.y);
    this.y += 14;
    doc.font("Helvetica-Bold").fontSize(12).fillColor("black");
    doc.text(`Total due (${inv.currency})`, COL.incl - 60, this.y, { width: 160, lineBreak: false });
    this.right(money(inv.total), COL.amount, this.y);
    this.y += 18;
    doc.font("Helvetica").fontSize(7.5).fillColor(GREY);
    doc.text(
      "Line amounts are exact; the total is rounded once, half-up to the cent.",
      COL.incl - 60,
      this.y,
      {
        width: RIGHT - COL.incl + 60,
      },
    );
    this.y = doc.y;
  }

  private footer(): void {
    const { doc, inv } = this;
    doc.font("Helvetica").fontSize(7.5).fillColor(GREY);
    const label = `${this.options.operator.name} \u00b7 ${inv.number ?? inv.id} \u00b7 page ${this.page}`;
    // below the bottom margin pdfkit would start a new page for this text
    doc.page.margins.bottom = 0;
    doc.text(label, MARGIN, PAGE.height - MARGIN, {
      width: RIGHT - MARGIN,
      align: "center",
      lineBreak: false,
    });
  }

  /** Starts a new page unless `height` points fit; repeats the table header when asked. */
  private ensure(height: number, withHeader = false): void {
    if (this.y + height <= BOTTOM) return;
    this.footer();
    this.doc.addPage();
    this.page += 1;
    this.y = MARGIN;
    if (withHeader) this.tableHeader();
  }

  private right(text: string, rightEdge: number, y: number): void {
    const w = this.doc.widthOfString(text);
    this.doc.text(text, rightEdge - w, y, { lineBreak: false });
  }

  private rule(width: number): void {
    this.doc
      .moveTo(MARGIN, this.y)
      .lineTo(RIGHT, this.y)
      .lineWidth(width)
      .strokeColor(width > 0.5 ? "#333333" : "#bbbbbb")
      .stroke();
    this.y += 4;
  }
}

/** One tier row: "10,000 to 50,000: 40,000 x 0.0008", "2 packages x 5", "+ 5 flat". */
function tierText(line: InvoiceLine, t: TierLine): string {
  const single = t.from === 0n && t.upTo === null;
  const range = single
    ? ""
    : t.upTo === null
      ? `above ${num(t.from)}: `
      : `${num(t.from)} to ${num(t.upTo)}: `;
  const packages = line.pricing === "package" ? ` package${t.quantity === ONE ? "" : "s"}` : "";
  const flat = t.flatFee === 0n ? "" : ` + ${num(t.flatFee)} flat`;
  return `${range}${num(t.quantity)}${packages} \u00d7 ${num(t.unitPrice)}${flat}`;
}

/** Exact decimal text with thousands separators: 100001 -> "100,001", 0.00075 stays. */
function num(v: Dec): string {
  const [whole, frac] = formatDec(v).split(".");
  const neg = whole.startsWith("-");
  const grouped = group(BigInt(neg ? whole.slice(1) : whole));
  return `${neg ? "-" : ""}${grouped}${frac ? `.${frac}` : ""}`;
}

/** A payable amount: always two places. */
function money(v: Dec): string {
  const [whole, frac = ""] = num(v).split(".");
  return `${whole}.${frac.padEnd(2, "0")}`;
}

function group(n: bigint): string {
  return n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
