// Glue that hx-* attributes cannot express (no inline script anywhere: the CSP forbids it).
// Live view: skip rows already shown, remember the stream's resume point, keep the list
// bounded, pause and resume, show the connection state and lag, page back through history,
// open an event's detail in the side panel. Any page: copy buttons, print, clean GET forms.
(function () {
  "use strict";

  var paused = false;
  var buffer = [];          // rows that arrived while paused, oldest first: {id, html}
  var buffered = {};        // their ids
  var arrivedWhilePaused = 0;
  var clockOffset = 0;      // the server's clock minus this browser's, in ms
  var lastLag = null;       // ms from the worker storing the latest row to it arriving here
  var newestCreated = null; // created_at (server ms) of the newest row seen

  function byId(id) { return document.getElementById(id); }

  // ---- connection and lag -------------------------------------------------------------

  function setConnection(state) {
    var badge = byId("connection");
    if (badge) {
      badge.dataset.state = state;
      badge.textContent = state;
    }
  }

  function serverNow() { return Date.now() + clockOffset; }

  function readClock() {
    var health = byId("health");
    if (!health || !health.dataset.serverNow) { return; }
    // The page was rendered just before its first byte arrived: that moment, in this
    // browser's clock, pairs with the server's clock written into the page.
    var nav = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    var rendered = nav ? performance.timeOrigin + nav.responseStart : Date.now();
    clockOffset = parseInt(health.dataset.serverNow, 10) - rendered;
    var top = document.querySelector("#event-rows tr[data-created-at]");
    if (top) { newestCreated = parseInt(top.dataset.createdAt, 10); }
    renderLag();
  }

  function createdAtOf(html) {
    var match = /data-created-at="(\d+)"/.exec(html || "");
    return match ? parseInt(match[1], 10) : null;
  }

  function noteArrival(html) {
    var created = createdAtOf(html);
    if (created === null) { return; }
    lastLag = Math.max(serverNow() - created, 0);
    if (newestCreated === null || created > newestCreated) { newestCreated = created; }
    renderLag();
  }

  function duration(ms) {
    if (ms < 1000) { return Math.round(ms) + " ms"; }
    if (ms < 60000) { return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s"; }
    if (ms < 3600000) { return Math.floor(ms / 60000) + " min"; }
    if (ms < 172800000) { return Math.floor(ms / 3600000) + " h"; }
    return Math.floor(ms / 86400000) + " days";
  }

  function renderLag() {
    var lag = byId("lag");
    if (!lag) { return; }
    if (newestCreated === null) { lag.textContent = "no events yet"; return; }
    var parts = [];
    if (lastLag !== null) { parts.push("lag " + duration(lastLag)); }
    var age = serverNow() - newestCreated;
    parts.push("newest stored " + (age < 1000 ? "just now" : duration(age) + " ago"));
    lag.textContent = parts.join(" · ");
  }

  document.addEventListener("htmx:sseOpen", function () { setConnection("live"); });
  document.addEventListener("htmx:sseError", function (evt) {
    var source = evt.detail && evt.detail.source;
    // CLOSED: the browser gave up on this stream; htmx builds a new one after a back-off.
    var gaveUp = source && source.readyState === 2;
    setConnection(!navigator.onLine || gaveUp ? "offline" : "reconnecting");
  });
  window.addEventListener("offline", function () {
    if (byId("connection")) { setConnection("offline"); }
  });

  // ---- live rows ------------------------------------------------------------------------

  function rowsBody() { return byId("event-rows"); }

  function maxRows() {
    var rows = rowsBody();
    return rows ? parseInt(rows.dataset.maxRows || "100", 10) : 100;
  }

  function rememberResumePoint(id) {
    var live = byId("live");
    if (!id || !live) { return; }
    // If htmx has to rebuild the EventSource, it resumes from the newest row seen.
    var url = new URL(live.getAttribute("sse-connect"), window.location.href);
    url.searchParams.set("after", id);
    live.setAttribute("sse-connect", url.pathname + url.search);
  }

  function trimRows() {
    var rows = rowsBody();
    if (!rows) { return; }
    var max = maxRows();
    var removed = 0;
    while (rows.children.length > max) {
      rows.removeChild(rows.lastElementChild);
      removed += 1;
    }
    if (removed) { showOlder(true); }
  }

  function rowsShown() {
    var empty = byId("no-events");
    var rows = rowsBody();
    if (empty && rows) { empty.hidden = rows.children.length > 0; }
  }

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var id = evt.detail && evt.detail.lastEventId;
    var html = evt.detail && evt.detail.data;
    // A stream rebuilt after an error back-fills from its URL: drop rows already here.
    if (id && (byId("event-" + id) || buffered[id])) {
      evt.preventDefault();
      return;
    }
    rememberResumePoint(id);
    noteArrival(html);
    if (paused) {
      evt.preventDefault();
      buffer.push({ id: id, html: html });
      buffered[id] = true;
      arrivedWhilePaused += 1;
      // Only the newest rows would survive the bound on resume: keep no more than that.
      while (buffer.length > maxRows()) { delete buffered[buffer.shift().id]; }
      renderPause();
    }
  });

  document.addEventListener("htmx:sseMessage", function () {
    trimRows();
    rowsShown();
  });

  // Tiles listen for this (hx-trigger "lvd-rows from:body", throttled) besides their poll.
  document.addEventListener("htmx:sseBeforeMessage", function () {
    if (document.body) { htmx.trigger(document.body, "lvd-rows"); }
  });

  // ---- pause and resume -----------------------------------------------------------------

  function renderPause() {
    var button = byId("pause");
    var pending = byId("pending");
    if (button) {
      button.setAttribute("aria-pressed", paused ? "true" : "false");
      button.textContent = paused ? "Resume" : "Pause";
    }
    if (pending) {
      pending.hidden = !paused;
      pending.textContent = arrivedWhilePaused + " new";
    }
  }

  function pause() {
    if (paused) { return; }
    paused = true;
    renderPause();
  }

  function resume() {
    var rows = rowsBody();
    paused = false;
    if (rows && buffer.length) {
      // Oldest first at the top, so the newest ends up first, as if they had streamed in.
      var html = buffer.map(function (row) { return row.html; }).reverse().join("");
      htmx.swap(rows, html, { swapStyle: "afterbegin", swapDelay: 0, settleDelay: 20 });
    }
    buffer = [];
    buffered = {};
    arrivedWhilePaused = 0;
    // Back to live: older pages read while paused go, and the list is bounded again.
    trimRows();
    rowsShown();
    renderPause();
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("#pause") : null;
    if (button) {
      if (paused) { resume(); } else { pause(); }
    }
  });

  // ---- older pages ------------------------------------------------------------------------

  function showOlder(available, message) {
    var button = byId("older");
    var status = byId("older-status");
    if (button) { button.hidden = !available; }
    if (status) {
      status.hidden = available;
      if (message) { status.textContent = message; }
    }
  }

  document.addEventListener("htmx:configRequest", function (evt) {
    if (!evt.detail.elt || evt.detail.elt.id !== "older") { return; }
    var rows = rowsBody();
    var last = rows ? rows.lastElementChild : null;
    // The cursor is whatever row is last on screen, so trimming never leaves a gap.
    if (last && last.id.indexOf("event-") === 0) {
      evt.detail.parameters.before = last.id.slice(6);
    } else {
      evt.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeRequest", function (evt) {
    // Reading history: hold new rows back so the list does not move under the reader.
    if (evt.detail.elt && evt.detail.elt.id === "older") { pause(); }
  });

  document.addEventListener("htmx:afterSettle", function (evt) {
    var rows = rowsBody();
    var button = byId("older");
    if (!rows || !button || evt.detail.target !== rows) { return; }
    rowsShown();
    var cap = parseInt(button.dataset.rowCap || "1000", 10);
    if (rows.children.length >= cap && !button.hidden) {
      var pager = byId("older-pager");
      showOlder(false, pager ? pager.dataset.cappedMessage : "");
    }
  });

  // ---- event detail panel ---------------------------------------------------------------

  var lastOpener = null;

  function detailPanel() { return byId("detail"); }

  function closeDetail() {
    var panel = detailPanel();
    if (!panel || panel.hidden) { return; }
    panel.hidden = true;
    panel.innerHTML = "";
    var layout = byId("live-layout");
    if (layout) { layout.classList.remove("has-detail"); }
    var selected = document.querySelector("#event-rows tr[data-selected]");
    if (selected) { selected.removeAttribute("data-selected"); }
    if (lastOpener && document.body.contains(lastOpener)) { lastOpener.focus(); }
  }

  document.addEventListener("click", function (evt) {
    var link = evt.target.closest ? evt.target.closest("a.open-detail") : null;
    var panel = detailPanel();
    if (!link || !panel) { return; }
    // Let a new tab or window open the detail page as usual.
    if (evt.button !== 0 || evt.ctrlKey || evt.metaKey || evt.shiftKey || evt.altKey) { return; }
    evt.preventDefault();
    lastOpener = link;
    var previous = document.querySelector("#event-rows tr[data-selected]");
    if (previous) { previous.removeAttribute("data-selected"); }
    var row = link.closest("tr");
    if (row) { row.setAttribute("data-selected", ""); }
    htmx.ajax("GET", link.getAttribute("href"), { target: "#detail", swap: "innerHTML" });
  });

  document.addEventListener("htmx:afterSettle", function (evt) {
    var panel = detailPanel();
    if (!panel || evt.detail.target !== panel) { return; }
    panel.hidden = false;
    var layout = byId("live-layout");
    if (layout) { layout.classList.add("has-detail"); }
    var heading = panel.querySelector("h2");
    if (heading) { heading.focus({ preventScroll: false }); }
  });

  document.addEventListener("htmx:responseError", function (evt) {
    var panel = detailPanel();
    if (!panel || evt.detail.target !== panel) { return; }
    panel.hidden = false;
    panel.textContent = "Could not load this event (HTTP " + evt.detail.xhr.status + ").";
  });

  document.addEventListener("click", function (evt) {
    if (evt.target.closest && evt.target.closest("[data-close-detail]")) { closeDetail(); }
  });

  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape") { closeDetail(); }
  });

  // ---- any page: copy, print, clean GET forms -------------------------------------------

  function flash(button, text) {
    var status = button.parentElement && button.parentElement.querySelector(".copy-status");
    var target = status || button;
    var before = target.textContent;
    target.textContent = text;
    window.setTimeout(function () { target.textContent = status ? "" : before; }, 2000);
  }

  function copyText(text, button, field) {
    function fallback() {
      if (field && field.select) {
        field.select();
        flash(button, document.execCommand("copy") ? "Copied" : "Select and copy it");
      } else {
        flash(button, "Copy failed");
      }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { flash(button, "Copied"); }, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("click", function (evt) {
    if (!evt.target.closest) { return; }
    var copy = evt.target.closest("[data-copy]");
    if (copy) {
      var field = byId(copy.getAttribute("data-copy"));
      if (field) { copyText(field.value !== undefined ? field.value : field.textContent, copy, field); }
      return;
    }
    var copyUrl = evt.target.closest("[data-copy-url]");
    if (copyUrl) {
      copyText(window.location.href, copyUrl, null);
      return;
    }
    if (evt.target.closest("[data-print]")) { window.print(); }
  });

  // Empty fields stay out of the URL, so a shared link shows only the filters in use.
  document.addEventListener("formdata", function (evt) {
    var form = evt.target;
    if (!form || (form.method || "").toLowerCase() !== "get") { return; }
    var empty = [];
    evt.formData.forEach(function (value, key) { if (value === "") { empty.push(key); } });
    empty.forEach(function (key) { evt.formData.delete(key); });
  });

  document.addEventListener("DOMContentLoaded", function () {
    readClock();
    window.setInterval(renderLag, 1000);
  });
})();
