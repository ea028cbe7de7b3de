/* The desk's small behaviours: the live-connection indicator, times on the user's clock, ticking
   ages, and the tab title, which carries the open opportunities and a mark while the kill switch
   is on. */
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

  // Times come in UTC (<time datetime data-shown>, arbsite's `moment` filter); a user who chose
  // local time reads them on this browser's clock, the UTC moment kept in the title.
  var localClock = document.documentElement.dataset.clock === "local";

  function clockText(d, shown, fraction) {
    var day = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    var time = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (shown === "time") { return time + (fraction ? "." + fraction : ""); }
    return day + " " + time + (shown === "precise" && fraction ? "." + fraction : "");
  }

  function localTimes(root) {
    if (!localClock) { return; }
    var times = (root || document).querySelectorAll("time[datetime]:not([data-local])");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      var stamp = t.getAttribute("datetime");
      var d = new Date(stamp);
      if (isNaN(d)) { continue; }
      var fraction = (stamp.match(/\.(\d+)/) || [])[1] || "";
      t.dataset.local = "1";
      t.title = t.textContent;
      t.textContent = clockText(d, t.dataset.shown, fraction) + " local";
    }
  }

  // The notification list writes its times the same way.
  window.deskTime = {
    format: function (d) {
      if (localClock) { return clockText(d, "time", "").slice(0, 8) + " local"; }
      return d.toISOString().slice(11, 19) + " UTC";
    }
  };

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

  // "⛔ (3) Dashboard · Arbitrage desk": the same prefix base.html writes at load.
  var TITLE_PREFIX = /^(\u26D4 )?(\(\d+\) )?/;

  function tabTitle() {
    var status = document.getElementById("desk-status");
    if (!status) { return; }
    var open = parseInt(status.dataset.openOpportunities, 10) || 0;
    var prefix = (status.dataset.killSwitch === "on" ? "\u26D4 " : "") + (open ? "(" + open + ") " : "");
    var title = prefix + document.title.replace(TITLE_PREFIX, "");
    if (title !== document.title) { document.title = title; }
  }

  document.addEventListener("htmx:wsOpen", function () { connected = true; showStatus(); });
  // The desk closes the socket of a login that ended (logged out, idle, past its age, the role
  // taken away): reload once, and the site's own login check shows the login page.
  var LOGIN_ENDED = 4401;
  var RELOADED_AT = "arb-login-ended-reload";
  function loginEnded(close) {
    if (!close || close.code !== LOGIN_ENDED) { return; }
    var last = parseFloat(window.sessionStorage.getItem(RELOADED_AT) || "0");
    if (Date.now() - last < 10000) { return; }  // never a reload loop
    window.sessionStorage.setItem(RELOADED_AT, String(Date.now()));
    window.location.reload();
  }

  // A socket that closed otherwise (a dropped connection) and is not back a few seconds later:
  // a login that ended meanwhile has its new handshakes refused, which a browser sees as no code
  // at all. Ask for the page once: a redirect (to the login) means the login is gone.
  function checkLogin() {
    if (connected) { return; }
    window.fetch(window.location.href, { credentials: "same-origin", redirect: "manual" })
      .then(function (answer) {
        if (answer.type === "opaqueredirect") { loginEnded({ code: LOGIN_ENDED }); }
      })
      .catch(function () { /* the server is down: the status already says so */ });
  }

  document.addEventListener("htmx:wsClose", function (event) {
    connected = false;
    showStatus();
    var close = event.detail && event.detail.event;
    if (close && close.code === LOGIN_ENDED) { loginEnded(close); } else { window.setTimeout(checkLogin, 3000); }
  });
  document.addEventListener("htmx:wsError", function () { connected = false; showStatus(); });
  document.addEventListener("htmx:wsAfterMessage", function () { lastMessage = Date.now(); showStatus(); tabTitle(); });
  document.addEventListener("htmx:load", function (event) { localTimes(event.target); });
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    showStatus();
    tabTitle();
    setInterval(function () { showStatus(); tickAges(); }, 1000);
  });
})();
