/* The market page's charts: each venue's mid price with the desk's trades marked, and the
   cross-venue spread beneath on the same times (one cursor). They start from the page's
   #price-data block (the last half hour) and grow with each pushed #depth fragment; the marks
   come from #trade-marks, pushed again when a trade of this market changes. */
(function () {
  "use strict";
  var d = null;
  var xs = [];
  var mids = {};
  var spread = [];
  var charts = [];
  var trades = [];
  var marksText = null;

  function num(v) { return v === null || v === undefined || v === "" ? null : parseFloat(v); }

  function load() {
    var block = document.getElementById("price-data");
    if (!block) { return false; }
    d = JSON.parse(block.textContent);
    xs = d.times.slice();
    d.venues.forEach(function (v) { mids[v.slug] = d.mids[v.slug].map(num); });
    spread = d.spread_bps.map(num);
    readMarks();
    return true;
  }

  // The trades #trade-marks holds now; true if they are not the ones marked already.
  function readMarks() {
    var el = document.getElementById("trade-marks");
    var text = el ? el.dataset.marks : "[]";
    if (text === marksText) { return false; }
    marksText = text;
    trades = JSON.parse(text);
    return true;
  }

  function priceData() { return [xs].concat(d.venues.map(function (v) { return mids[v.slug]; })); }

  // Keep the y range wide enough for the trades' fill prices, which need not be on a mid.
  function priceRange(u, min, max) {
    trades.forEach(function (t) {
      [num(t.buy_price), num(t.sell_price)].forEach(function (p) {
        if (p === null || isNaN(p)) { return; }
        min = min === null ? p : Math.min(min, p);
        max = max === null ? p : Math.max(max, p);
      });
    });
    if (min === null || max === null) { return [0, 1]; }
    var pad = (max - min) * 0.08 || Math.abs(max) * 0.0005 || 1;
    return [min - pad, max + pad];
  }

  // The times wide enough for every marked trade, which may be older than the first sample.
  function timeRange(u, min, max) {
    trades.forEach(function (t) {
      min = min === null ? t.ts : Math.min(min, t.ts);
      max = max === null ? t.ts : Math.max(max, t.ts);
    });
    if (min === null || max === null) { return [0, 1]; }
    return min === max ? [min - 30, max + 30] : [min, max];
  }

  // One focusable mark per leg of each trade, laid over the plot where it filled; its text
  // (the server's words) shows on hover or focus.
  function placeMarks(u) {
    var layer = u.over.querySelector(".trade-marks");
    if (!layer) {
      layer = document.createElement("div");
      layer.className = "trade-marks";
      u.over.appendChild(layer);
      trades.forEach(function (t) {
        [["buy", t.buy_price, "\u25B2"], ["sell", t.sell_price, "\u25BC"]].forEach(function (leg) {
          var mark = document.createElement("button");
          mark.type = "button";
          mark.className = "trade-mark trade-" + leg[0];
          mark.dataset.ts = t.ts;
          mark.dataset.price = leg[1];
          mark.setAttribute("aria-label", t.label);
          mark.textContent = leg[2];
          var tip = document.createElement("span");
          tip.className = "trade-tip";
          tip.setAttribute("role", "tooltip");
          tip.textContent = t.label;
          mark.appendChild(tip);
          layer.appendChild(mark);
        });
      });
    }
    var width = u.over.clientWidth;
    var height = u.over.clientHeight;
    Array.prototype.forEach.call(layer.children, function (mark) {
      var left = u.valToPos(parseFloat(mark.dataset.ts), "x");
      var top = u.valToPos(parseFloat(mark.dataset.price), "y");
      var inside = left >= 0 && left <= width && top >= 0 && top <= height;
      mark.hidden = !inside;
      mark.style.left = left + "px";
      mark.style.top = top + "px";
      mark.classList.toggle("tip-left", left > width / 2);
    });
  }

  function options(el, series, yLabel, extra) {
    var C = window.deskCharts;
    return Object.assign({
      width: C.width(el),
      height: 260,
      series: series,
      axes: C.axes(el, yLabel),
      scales: { x: { time: true } },
      tzDate: C.tzDate,
      cursor: { sync: { key: "market-" + d.symbol } },
    }, extra || {});
  }

  function draw() {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    var priceEl = document.getElementById("price-chart");
    var spreadEl = document.getElementById("spread-chart");
    if (!d || !priceEl || !spreadEl || typeof uPlot === "undefined") { return; }
    var C = window.deskCharts;
    priceEl.textContent = "";
    spreadEl.textContent = "";
    var series = [{}].concat(d.venues.map(function (v, i) {
      return { label: v.name, stroke: C.seriesColour(i, priceEl), width: 1.5, spanGaps: true };
    }));
    var price = new uPlot(options(priceEl, series, d.symbol, {
      scales: { x: { time: true, range: timeRange }, y: { range: priceRange } },
      hooks: { draw: [placeMarks] },
    }), priceData(), priceEl);
    var spreadSeries = [{}, { label: "spread (bps)", stroke: C.colour("--accent", spreadEl), width: 1.5, spanGaps: true }];
    var spreadChart = new uPlot(options(spreadEl, spreadSeries, "bps"), [xs, spread], spreadEl);
    charts = [price, spreadChart];
  }

  // A pushed #depth fragment: one more point of each venue's mid and of the spread.
  function extend() {
    var depth = document.getElementById("depth");
    if (!d || !depth) { return; }
    var ts = parseFloat(depth.dataset.ts);
    if (isNaN(ts) || (xs.length && ts <= xs[xs.length - 1])) { return; }
    var pushed = {};
    depth.querySelectorAll(".depth-venue[data-venue]").forEach(function (venue) {
      pushed[venue.dataset.venue] = num(venue.dataset.mid);
    });
    xs.push(ts);
    d.venues.forEach(function (v) {
      mids[v.slug].push(pushed[v.slug] === undefined ? null : pushed[v.slug]);
    });
    spread.push(num(depth.dataset.spreadBps));
    while (xs.length && xs[0] < ts - d.window_s) {
      xs.shift();
      spread.shift();
      d.venues.forEach(function (v) { mids[v.slug].shift(); });
    }
    if (charts.length) {
      charts[0].setData(priceData());
      charts[1].setData([xs, spread]);
    }
  }

  // A pushed #trade-marks with other trades: mark those instead (placeMarks lays them again).
  function remark() {
    if (!d || !readMarks() || !charts.length) { return; }
    var layer = charts[0].over.querySelector(".trade-marks");
    if (layer) { layer.remove(); }
    charts[0].setData(priceData());
  }

  function resize() {
    charts.forEach(function (c) {
      c.setSize({ width: window.deskCharts.width(c.root.parentNode), height: 260 });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (load()) { draw(); extend(); }
  });
  document.addEventListener("htmx:wsAfterMessage", function () { extend(); remark(); });
  window.addEventListener("resize", resize);
  if (window.deskCharts) { window.deskCharts.onThemeChange(draw); }
})();
