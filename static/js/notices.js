/* Notifications pushed over the live socket: stacked, dismissible, kept for the tab's session.
   A notice that is not an error leaves the stack after a while; an error stays until dismissed,
   on this page and the next. Every notice stays in the session's list the toggle reopens. */
(function () {
  "use strict";
  var KEY = "desk-notifications";
  var SHOW_MS = 8000;
  var KEEP = 200;

  function load() {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || []; } catch (e) { return []; }
  }

  function save(list) {
    try { sessionStorage.setItem(KEY, JSON.stringify(list.slice(-KEEP))); } catch (e) { /* full or off: the page still shows them */ }
  }

  function byId(id) { return document.getElementById(id); }

  function record(li) {
    var list = load();
    var id = li.dataset.id;
    for (var i = 0; i < list.length; i++) { if (list[i].id === id) { return; } }
    list.push({
      id: id,
      level: li.dataset.level,
      text: li.querySelector(".notice-text").textContent,
      at: parseFloat(li.dataset.at) || Date.now() / 1000,
      dismissed: false
    });
    save(list);
  }

  function dismiss(li) {
    var list = load();
    for (var i = 0; i < list.length; i++) { if (list[i].id === li.dataset.id) { list[i].dismissed = true; } }
    save(list);
    li.remove();
    refresh();
  }

  function arrived(li) {
    record(li);
    if (li.dataset.level !== "error") {
      setTimeout(function () { li.remove(); }, SHOW_MS);
    }
    refresh();
  }

  function noticeElement(item) {
    var li = document.createElement("li");
    li.className = "notice notice-" + item.level;
    li.dataset.id = item.id;
    li.dataset.level = item.level;
    li.dataset.at = String(item.at);
    if (item.level === "error") { li.setAttribute("role", "alert"); }
    var text = document.createElement("span");
    text.className = "notice-text";
    text.textContent = item.text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "notice-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    li.append(text, " ", close);
    return li;
  }

  function when(at) {
    var format = window.deskTime && window.deskTime.format;
    return format ? format(new Date(at * 1000)) : new Date(at * 1000).toISOString().slice(11, 19) + " UTC";
  }

  function refresh() {
    var list = load();
    var count = byId("notice-count");
    if (count) { count.textContent = String(list.length); }
    var history = byId("notice-history-list");
    if (!history || byId("notice-history").hidden) { return; }
    history.replaceChildren();
    for (var i = list.length - 1; i >= 0; i--) {
      var li = document.createElement("li");
      li.className = "notice-" + list[i].level;
      var at = document.createElement("span");
      at.className = "muted";
      at.textContent = when(list[i].at) + " ";
      li.append(at, list[i].text);
      history.append(li);
    }
    byId("notice-history-empty").hidden = list.length > 0;
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest(".notice-close");
    if (close) { dismiss(close.closest(".notice")); return; }
    var toggle = event.target.closest("#notice-toggle");
    if (toggle) {
      var panel = byId("notice-history");
      panel.hidden = !panel.hidden;
      toggle.setAttribute("aria-expanded", String(!panel.hidden));
      refresh();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var stack = byId("notice-stack");
    if (!stack) { return; }
    // Errors of this session nobody dismissed yet come back on every page.
    load().forEach(function (item) {
      if (item.level === "error" && !item.dismissed) { stack.append(noticeElement(item)); }
    });
    new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType === 1 && node.classList.contains("notice")) { arrived(node); }
        });
      });
    }).observe(stack, { childList: true });
    byId("notice-toggle").hidden = false;
    refresh();
  });
})();
