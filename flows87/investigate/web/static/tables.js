// flows87 case app: sortable and filterable tables, and printing with every detail open.
// No inline scripts (the Content-Security-Policy forbids them); text only, never HTML.
(function () {
  "use strict";
  if (window.flows87Tables) return;
  window.flows87Tables = true;

  function cellValue(row, index, kind) {
    var cell = row.cells[index];
    if (!cell) return kind === "number" ? -Infinity : "";
    if (kind === "number") {
      var raw = cell.getAttribute("data-value");
      var n = parseFloat(raw === null ? cell.textContent.replace(/,/g, "") : raw);
      return isNaN(n) ? -Infinity : n;
    }
    return cell.textContent.trim().toLowerCase();
  }

  function makeSortable(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      var kind = th.getAttribute("data-sort");
      if (!kind) return;
      th.classList.add("sort-header");
      th.setAttribute("tabindex", "0");
      th.setAttribute("aria-sort", "none");
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (other) {
          if (other.getAttribute("data-sort")) other.setAttribute("aria-sort", "none");
        });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index, kind), y = cellValue(b, index, kind);
          var order = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  }

  function makeFilterable(tools) {
    var table = document.getElementById(tools.getAttribute("data-table"));
    if (!table) return;
    var box = tools.querySelector(".table-filter");
    var evidenceOnly = tools.querySelector(".evidence-only");
    var count = tools.querySelector(".table-count");
    function apply() {
      var words = (box ? box.value : "").trim().toLowerCase().split(/\s+/).filter(Boolean);
      var only = evidenceOnly && evidenceOnly.checked;
      var shown = 0, rows = table.tBodies[0].rows;
      Array.prototype.forEach.call(rows, function (row) {
        var text = row.textContent.toLowerCase();
        var keep = (!only || row.classList.contains("evidence")) &&
          words.every(function (w) { return text.indexOf(w) !== -1; });
        row.hidden = !keep;
        if (keep) shown += 1;
      });
      if (count) count.textContent = shown + " of " + rows.length + " shown";
    }
    if (box) box.addEventListener("input", apply);
    if (evidenceOnly) evidenceOnly.addEventListener("change", apply);
    apply();
  }

  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll(".table-tools[data-table]").forEach(makeFilterable);

  // a printed case file shows every pattern and detail, opened or not on screen
  var reopened = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (d) {
      d.open = true;
      reopened.push(d);
    });
  });
  window.addEventListener("afterprint", function () {
    reopened.forEach(function (d) { d.open = false; });
    reopened = [];
  });
})();
