// Live view glue that hx-* attributes cannot express: skip rows already shown, remember the
// resume point for a rebuilt stream, keep the list bounded, show the connection state.
(function () {
  "use strict";

  function setConnection(state) {
    var badge = document.getElementById("connection");
    if (badge) {
      badge.dataset.state = state;
      badge.textContent = state;
    }
  }

  document.addEventListener("htmx:sseOpen", function () { setConnection("live"); });
  document.addEventListener("htmx:sseError", function () { setConnection("reconnecting"); });

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var id = evt.detail && evt.detail.lastEventId;
    // A stream rebuilt after an error back-fills from its URL: drop rows already here.
    if (id && document.getElementById("event-" + id)) {
      evt.preventDefault();
    }
  });

  document.addEventListener("htmx:sseMessage", function (evt) {
    var id = evt.detail && evt.detail.lastEventId;
    var live = document.getElementById("live");
    if (id && live) {
      // If htmx has to rebuild the EventSource, it resumes from the newest row seen.
      var url = new URL(live.getAttribute("sse-connect"), window.location.href);
      url.searchParams.set("after", id);
      live.setAttribute("sse-connect", url.pathname + url.search);
    }
    var rows = document.getElementById("event-rows");
    if (!rows) { return; }
    var max = parseInt(rows.dataset.maxRows || "100", 10);
    while (rows.children.length > max) {
      rows.removeChild(rows.lastElementChild);
    }
    var empty = document.getElementById("no-events");
    if (empty) { empty.hidden = true; }
  });
})();
