// Sorting and filtering for tables marked "sortable", with no server and no outside file.
// Without JavaScript every row is shown as written; this only adds controls.
(function () {
  "use strict";
  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var raw = cell.getAttribute("data-value");
    if (raw !== null && raw !== "") { return parseFloat(raw); }
    return cell.textContent.trim().toLowerCase();
  }
  function dataRows(body) {
    return Array.prototype.filter.call(body.rows, function (row) {
      return !row.classList.contains("group");
    });
  }
  function sortTable(table, index, header) {
    var descending = header.getAttribute("aria-sort") !== "descending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var rows = dataRows(body);
      rows.sort(function (a, b) {
        var x = cellValue(a, index), y = cellValue(b, index);
        var order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  }
  function filterTable(table, query, counter) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0, total = 0;
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var visible = 0;
      dataRows(body).forEach(function (row) {
        var text = row.textContent.toLowerCase();
        var match = words.every(function (word) { return text.indexOf(word) !== -1; });
        row.hidden = !match;
        total += 1;
        if (match) { visible += 1; }
      });
      Array.prototype.forEach.call(body.rows, function (row) {
        if (row.classList.contains("group")) { row.hidden = visible === 0; }
      });
      shown += visible;
    });
    counter.textContent = shown + " of " + total + " rows shown";
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = header.textContent;
      button.title = "Sort by " + header.textContent;
      header.textContent = "";
      header.appendChild(button);
      button.addEventListener("click", function () { sortTable(table, index, header); });
    });
    var tools = document.createElement("div");
    tools.className = "table-tools";
    var input = document.createElement("input");
    input.type = "search";
    input.placeholder = "Filter rows (symbol, sector, side...)";
    input.setAttribute("aria-label", "Filter the rows of this table");
    var counter = document.createElement("span");
    counter.className = "muted";
    tools.appendChild(input);
    tools.appendChild(counter);
    var anchor = table.closest(".table-wrap") || table;
    anchor.parentNode.insertBefore(tools, anchor);
    input.addEventListener("input", function () { filterTable(table, input.value, counter); });
    filterTable(table, "", counter);
  });
}());
