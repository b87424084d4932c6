// The console's only script (no inline scripts: the Content-Security-Policy forbids them).
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("announce");
    if (region) { region.textContent = ""; region.textContent = text; }
  }

  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent.trim();
    navigator.clipboard.writeText(text).then(function () {
      button.setAttribute("data-copied", "true");
      announce("Copied to the clipboard.");
    }, function () {
      announce("Could not copy: select the text and copy it yourself.");
    });
  });

  // The live Runs tab: every server-sent row is added at the top; a row for a run already shown
  // takes that run's place instead, so a run appears once, where it was.
  function settleRuns(body) {
    var seen = {};
    Array.prototype.slice.call(body.rows).forEach(function (row) {
      if (row.classList.contains("empty") && body.rows.length > 1) { row.remove(); return; }
      if (!row.id) { return; }
      if (seen[row.id]) { row.replaceWith(seen[row.id]); } else { seen[row.id] = row; }
    });
  }
  document.addEventListener("htmx:sseMessage", function (event) {
    var body = document.querySelector("[data-runs]");
    if (body) { settleRuns(body); }
  });
  document.addEventListener("htmx:sseOpen", function () {
    var status = document.querySelector("[data-live-status]");
    if (status) { status.setAttribute("data-connected", "true"); }
  });
})();
