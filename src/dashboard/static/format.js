// Exact decimal arithmetic on strings (scaled BigInt) and display helpers.

function split(s) {
  const str = String(s).trim();
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(str);
  if (!m) throw new Error(`not a decimal: ${str}`);
  let digits = m[2] + (m[3] || "");
  let scale = (m[3] || "").length - Number(m[4] || 0);
  if (scale < 0) {
    digits += "0".repeat(-scale);
    scale = 0;
  }
  return { value: BigInt(m[1] + digits), scale };
}

function join(value, scale) {
  const neg = value < 0n;
  let digits = (neg ? -value : value).toString().padStart(scale + 1, "0");
  let out = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  if (scale > 0) out = out.replace(/\.?0+$/, "");
  digits = out;
  return (neg && digits !== "0" ? "-" : "") + digits;
}

/** Exact sum of decimal strings. */
export function addDecimals(values) {
  let scale = 0;
  const parts = values.map((v) => {
    const p = split(v);
    if (p.scale > scale) scale = p.scale;
    return p;
  });
  let total = 0n;
  for (const p of parts) total += p.value * 10n ** BigInt(scale - p.scale);
  return join(total, scale);
}

/** A decimal string normalised (no trailing zeros), for display and CSV. */
export function plainDecimal(v) {
  const p = split(v);
  return join(p.value, p.scale);
}

/** Grouped digits for people; the exact digits are kept, never rounded. */
export function showDecimal(v) {
  const s = plainDecimal(v);
  const [int, frac] = s.split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac ? `${grouped}.${frac}` : grouped;
}

export function showMoney(v, currency = "USD") {
  return `${showDecimal(v)} ${currency}`;
}

/** An instant shown in a timezone. */
export function showInstant(iso, timeZone) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(undefined, {
    timeZone,
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  }).format(d);
}

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** Today's calendar date (YYYY-MM-DD) in a timezone. */
export function todayIn(timeZone) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(new Date());
  return parts;
}

/** Calendar arithmetic on YYYY-MM-DD strings (no timezone involved). */
export function addDays(date, days) {
  const [y, m, d] = date.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return t.toISOString().slice(0, 10);
}

export function monthStart(date) {
  return `${date.slice(0, 7)}-01`;
}

export function nextMonthStart(date) {
  const [y, m] = date.split("-").map(Number);
  const t = new Date(Date.UTC(y, m, 1));
  return t.toISOString().slice(0, 10);
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/**
 * Narrow screens show each row as a block of "label: value" lines (style.css); every cell gets
 * its column's header as `data-label`, counted through colspans.
 */
export function responsive(table) {
  const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  for (const tr of table.querySelectorAll("tbody tr, tfoot tr")) {
    let col = 0;
    for (const cell of tr.children) {
      if (!cell.hasAttribute("data-label") && headers[col]) cell.setAttribute("data-label", headers[col]);
      col += Number(cell.getAttribute("colspan") || 1);
    }
  }
  table.classList.add("responsive");
  return table;
}
