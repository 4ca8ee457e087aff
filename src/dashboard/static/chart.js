// A stacked bar chart of cost per bucket and model, drawn by uPlot (served by Tally as a global script).

const COLORS = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f"];

/**
 * `labels`: one per bucket, already in the chosen timezone; `series`: [{label, values}] aligned
 * with the buckets. The x axis counts buckets (one bar each, whatever their length in a DST
 * change); values are floats for drawing only: the exact numbers are in the table.
 */
export function drawChart(container, { labels, series, yLabel }) {
  const uPlot = window.uPlot;
  if (!uPlot) {
    container.textContent = "The chart could not be loaded; the table below has every number.";
    return;
  }
  const xs = labels.map((_l, i) => i);
  // stacked: each series is drawn as the running total of itself and those below it, the tallest first
  const stacked = [];
  let running = labels.map(() => 0);
  for (const s of series) {
    running = running.map((r, i) => r + (s.values[i] ?? 0));
    // no bar (rather than a flat line at zero) where this model has nothing
    stacked.push(running.map((r, i) => (s.values[i] ? r : null)));
  }
  const order = series.map((_s, i) => i).reverse();
  const bars = uPlot.paths?.bars ? uPlot.paths.bars({ size: [0.7, 80] }) : undefined;
  const size = (w) => ({ width: w, height: w < 500 ? 220 : 300 });
  const opts = {
    ...size(Math.max(280, container.clientWidth - 16 || 600)),
    legend: { live: false },
    cursor: { show: false },
    scales: {
      x: { time: false, range: [-0.5, labels.length - 0.5] },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      {
        space: 70,
        incrs: [1, 2, 3, 4, 6, 8, 12, 24, 48, 96, 168, 336, 720],
        values: (_u, splits) =>
          splits.map((i) => (Number.isInteger(i) && labels[i] !== undefined ? labels[i] : "")),
      },
      { label: yLabel, size: 64 },
    ],
    series: [
      {},
      ...order.map((i) => ({
        label: series[i].label,
        stroke: COLORS[i % COLORS.length],
        fill: COLORS[i % COLORS.length],
        width: 1,
        paths: bars,
        points: { show: false },
      })),
    ],
  };
  container.replaceChildren();
  const plot = new uPlot(opts, [xs, ...order.map((i) => stacked[i])], container);
  const observer = new ResizeObserver(() => {
    const w = Math.max(280, container.clientWidth - 16);
    if (Math.abs(w - plot.width) > 4) plot.setSize(size(w));
  });
  observer.observe(container);
  return plot;
}
