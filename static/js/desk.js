/* The desk's small behaviours: the live-connection indicator, local times and ticking ages. */
(function () {
  "use strict";
  var lastMessage = null;
  var connected = false;

  function indicator() { return document.getElementById("live-status"); }

  function showStatus() {
    var el = indicator();
    if (!el || el.dataset.state === "static") { return; }
    if (!connected) {
      el.dataset.state = "reconnecting";
      el.textContent = lastMessage ? "Connection lost, reconnecting… (last update " + secondsAgo(lastMessage) + ")" : "Connecting…";
      return;
    }
    el.dataset.state = lastMessage && Date.now() - lastMessage > 15000 ? "quiet" : "live";
    el.textContent = lastMessage ? "Live · updated " + secondsAgo(lastMessage) : "Live · waiting for the first update";
  }

  function secondsAgo(ms) {
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s + " s ago";
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localTimes(root) {
    var times = (root || document).querySelectorAll("time[datetime]:not([data-local])");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d)) { continue; }
      t.dataset.local = "1";
      var text = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
        pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
      t.title = text + " your time";
      var local = document.createElement("span");
      local.className = "local-time";
      local.textContent = " (" + text.slice(11) + " local)";
      t.after(local);
    }
  }

  function tickAges() {
    var now = Date.now() / 1000;
    var ages = document.querySelectorAll(".age[data-since]");
    for (var i = 0; i < ages.length; i++) {
      var since = parseFloat(ages[i].dataset.since);
      if (!isNaN(since)) {
        var age = Math.max(0, now - since);
        ages[i].textContent = age < 100 ? age.toFixed(1) + " s" : Math.round(age) + " s";
      }
    }
  }

  document.addEventListener("htmx:wsOpen", function () { connected = true; showStatus(); });
  document.addEventListener("htmx:wsClose", function () { connected = false; showStatus(); });
  document.addEventListener("htmx:wsError", function () { connected = false; showStatus(); });
  document.addEventListener("htmx:wsAfterMessage", function () { lastMessage = Date.now(); showStatus(); });
  document.addEventListener("htmx:load", function (event) { localTimes(event.target); });
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    showStatus();
    setInterval(function () { showStatus(); tickAges(); }, 1000);
  });
})();
