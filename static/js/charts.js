/* What the desk's uPlot charts share: the theme's colours, the user's clock, the axes. */
(function () {
  "use strict";
  var SERIES = ["--accent", "--warn", "--good", "--bad", "--fg", "--muted"];

  // A custom property holds light-dark(...) unresolved: a probe's computed colour resolves it
  // for the theme shown now.
  function colour(name, within) {
    var probe = document.createElement("span");
    probe.style.color = "var(" + name + ")";
    (within || document.body).appendChild(probe);
    var value = getComputedStyle(probe).color;
    probe.remove();
    return value;
  }

  function seriesColour(i, within) { return colour(SERIES[i % SERIES.length], within); }

  function axes(within, yLabel) {
    var text = colour("--muted", within);
    var line = colour("--line", within);
    var axis = { stroke: text, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
    return [Object.assign({}, axis), Object.assign({ label: yLabel || "", size: 70 }, axis)];
  }

  // Times in UTC unless the user chose the browser's clock (base.html's data-clock).
  function tzDate(ts) {
    var date = new Date(ts * 1e3);
    return document.documentElement.dataset.clock === "local" ? date : uPlot.tzDate(date, "Etc/UTC");
  }

  function width(el) { return Math.max(280, el.clientWidth || 600); }

  // Redraw when the system theme flips (a user who chose one reloads with it).
  function onThemeChange(redraw) {
    if (window.matchMedia) {
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
    }
  }

  window.deskCharts = {
    colour: colour, seriesColour: seriesColour, axes: axes, tzDate: tzDate, width: width,
    onThemeChange: onThemeChange,
  };
})();
