/* The reports page's charts, drawn with uPlot from the JSON in #report-data's data-chart (an
   attribute: htmx drops <script> blocks from the fragments it swaps in). */
(function () {
  "use strict";
  var charts = [];
  var drawn = null;

  function width(el) { return Math.max(280, el.clientWidth || 600); }

  function bars() {
    return uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
  }

  function draw(id, xs, ys, label, opts) {
    var el = document.getElementById(id);
    if (!el) { return; }
    el.textContent = "";
    var series = { label: label, stroke: opts.stroke, width: 1.5 };
    if (opts.bars) { series.paths = bars(); series.fill = opts.fill; series.points = { show: false }; }
    var axes = [opts.xLabels ? { values: function (u, ticks) {
      return ticks.map(function (t) { return opts.xLabels[t] === undefined ? "" : opts.xLabels[t]; });
    } } : {}, { label: opts.yLabel || "" }];
    charts.push(new uPlot({
      width: width(el),
      height: 220,
      series: [{ label: opts.xName || "" }, series],
      axes: axes,
      scales: { x: { time: !!opts.time } },
    }, [xs, ys], el));
  }

  function render() {
    var block = document.getElementById("report-data");
    if (block === drawn) { return; }
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    drawn = block;
    if (!block || typeof uPlot === "undefined") { return; }
    var d = JSON.parse(block.dataset.chart || "null");
    if (!d) { return; }
    draw("chart-cumulative", d.days, d.cumulative_net, "cumulative net PnL", { stroke: "#0550ae", time: true });
    draw("chart-daily", d.days, d.daily_net, "net PnL", { stroke: "#1a7f37", fill: "rgba(26,127,55,.4)", bars: true, time: true });
    draw("chart-hours", d.hours, d.opportunities_by_hour, "opportunities", { stroke: "#8250df", fill: "rgba(130,80,223,.4)", bars: true, xName: "hour (UTC)" });
    var idx = d.duration_labels.map(function (_, i) { return i; });
    draw("chart-durations", idx, d.duration_counts, "opportunities", { stroke: "#bc4c00", fill: "rgba(188,76,0,.4)", bars: true, xLabels: d.duration_labels, xName: "duration" });
  }

  document.addEventListener("DOMContentLoaded", render);
  // The filter swaps #results (a new data block); export polling swaps leave it alone.
  document.addEventListener("htmx:afterSettle", render);
})();
