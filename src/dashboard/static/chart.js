// A bar chart of cost per bucket and model, drawn by uPlot (served by Tally, a global script).

const COLORS = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f"];

/**
 * `buckets`: ISO instants with offset; `series`: [{label, values}] aligned with the buckets.
 * Values are floats for drawing only: the exact numbers are in the table.
 */
export function drawChart(container, { buckets, series, timeZone, yLabel }) {
  const uPlot = window.uPlot;
  if (!uPlot) {
    container.textContent = "The chart could not be loaded; the table below has every number.";
    return;
  }
  const xs = buckets.map((b) => Date.parse(b) / 1000);
  const width = Math.max(280, container.clientWidth || 600);
  const bars = uPlot.paths?.bars ? uPlot.paths.bars({ size: [0.8, 64] }) : undefined;
  const opts = {
    width,
    height: width < 500 ? 220 : 300,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 70 }],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        fill: `${COLORS[i % COLORS.length]}55`,
        width: 1,
        paths: bars,
      })),
    ],
  };
  container.replaceChildren();
  const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)], container);
  const observer = new ResizeObserver(() => {
    const w = Math.max(280, container.clientWidth);
    if (Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height: w < 500 ? 220 : 300 });
  });
  observer.observe(container);
  return plot;
}
