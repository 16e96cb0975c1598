// meowmx console: keyboard shortcuts and the live log. No framework; the
// server renders (and escapes) every row, this script only inserts them.
"use strict";
(function () {
  // "/" focuses the page's search field; c, l and s open the sections.
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey || t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) {
      if (e.key === "Escape" && t.blur) t.blur();
      return;
    }
    if (e.key === "/") {
      var f = document.querySelector("[data-focus-key='/']");
      if (f) { e.preventDefault(); f.focus(); f.select(); }
      return;
    }
    var go = { c: "/", l: "/log", s: "/subscriptions" }[e.key];
    if (go) location.href = go;
  });

  var live = document.getElementById("live");
  if (!live) return;
  var rows = document.getElementById("log-rows");
  var state = document.getElementById("live-state");
  var source = null;
  function stop() {
    if (source) source.close();
    source = null;
    state.textContent = "";
  }
  function start() {
    // The stream resumes after the newest row it has shown (Last-Event-ID
    // on reconnects, handled by EventSource).
    source = new EventSource(live.dataset.src);
    state.textContent = "connecting…";
    source.onopen = function () { state.textContent = "following new events"; };
    source.onerror = function () { state.textContent = "reconnecting…"; };
    source.addEventListener("event", function (m) {
      var empty = rows.querySelector(".empty-row");
      if (empty) empty.remove();
      var tmp = document.createElement("tbody");
      tmp.innerHTML = m.data; // rendered and escaped by the server
      var tr = tmp.firstElementChild;
      tr.classList.add("fresh");
      rows.insertBefore(tr, rows.firstChild);
      while (rows.children.length > 500) rows.lastElementChild.remove();
    });
    source.addEventListener("failure", function (m) { state.textContent = "failed: " + m.data; });
  }
  live.addEventListener("change", function () { live.checked ? start() : stop(); });
  if (location.hash === "#live") { live.checked = true; start(); }
})();
