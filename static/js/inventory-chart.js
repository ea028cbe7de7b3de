/* The portfolio page's inventory chart: one line per venue of the chosen asset, from the
   chart's data-chart; drawn again when the asset, mode or period form swaps #inventory, and
   when pushed balances say the ledger moved (the form asks again with the same choices). */
(function () {
  "use strict";
  var chart = null;
  var drawn = null;

  function draw(force) {
    var el = document.getElementById("inventory-chart");
    if (!force && el === drawn) { return; }
    if (chart) { chart.destroy(); chart = null; }
    drawn = el;
    if (!el || typeof uPlot === "undefined") { return; }
    var d = JSON.parse(el.dataset.chart);
    var C = window.deskCharts;
    var series = [{}];
    var data = [d.times];
    d.venues.forEach(function (venue, i) {
      series.push({ label: venue.name, stroke: C.seriesColour(i, el), width: 2,
        value: function (u, v) { return v === null ? "–" : v + " " + d.asset; } });
      data.push(d.amounts[venue.slug].map(parseFloat));
    });
    el.textContent = "";
    chart = new uPlot({
      width: C.width(el),
      height: 260,
      series: series,
      axes: C.axes(el, d.asset),
      scales: { x: { time: true } },
      tzDate: C.tzDate,
    }, data, el);
  }

  document.addEventListener("DOMContentLoaded", function () { draw(false); });
  // htmx:load, not afterSettle: the form that asked is inside the section it replaced.
  document.addEventListener("htmx:load", function () { draw(false); });
  document.addEventListener("htmx:wsAfterMessage", function (event) {
    var message = event.detail && event.detail.message;
    if (typeof message === "string" && message.indexOf('id="balances"') !== -1) {
      htmx.trigger(document.body, "ledger-moved");
    }
  });
  window.addEventListener("resize", function () {
    var el = document.getElementById("inventory-chart");
    if (chart && el) { chart.setSize({ width: window.deskCharts.width(el), height: 260 }); }
  });
  window.deskCharts && window.deskCharts.onThemeChange(function () { draw(true); });
})();
