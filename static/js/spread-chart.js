/* The market page's live chart: one point of cross-venue spread (bps) per pushed depth fragment. */
(function () {
  "use strict";
  var MAX_POINTS = 600;
  var xs = [];
  var ys = [];
  var chart = null;

  function addPoint(section) {
    var ts = parseFloat(section.dataset.ts);
    var bps = parseFloat(section.dataset.spreadBps);
    if (isNaN(ts) || isNaN(bps) || (xs.length && ts <= xs[xs.length - 1])) { return; }
    xs.push(ts);
    ys.push(bps);
    if (xs.length > MAX_POINTS) { xs.shift(); ys.shift(); }
    if (chart) { chart.setData([xs, ys]); }
  }

  function size(el) { return { width: Math.max(280, el.clientWidth), height: 220 }; }

  function start() {
    var el = document.getElementById("spread-chart");
    var depth = document.getElementById("depth");
    if (!el || typeof uPlot === "undefined") { return; }
    if (depth) { addPoint(depth); }
    var dims = size(el);
    chart = new uPlot({
      width: dims.width,
      height: dims.height,
      series: [{}, { label: el.dataset.label || "spread (bps)", stroke: "#0550ae", width: 1.5 }],
      axes: [{}, { label: "bps" }],
      scales: { x: { time: true } },
    }, [xs, ys], el);
    window.addEventListener("resize", function () { chart.setSize(size(el)); });
  }

  document.addEventListener("htmx:wsAfterMessage", function () {
    var depth = document.getElementById("depth");
    if (depth) { addPoint(depth); }
  });
  document.addEventListener("DOMContentLoaded", start);
})();
