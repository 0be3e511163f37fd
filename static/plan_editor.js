// The plan editor's one piece of glue: an edit or view switch the server refuses (400)
// answers with the editor re-rendered and the refusal in it, so show it instead of dropping it.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    var target = detail.target;
    if (detail.xhr && detail.xhr.status === 400 && target && target.hasAttribute("data-show-refusals")) {
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });
})();
