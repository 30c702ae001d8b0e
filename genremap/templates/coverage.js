"use strict";
// Searchable, sortable, paged tables over the JSON embedded in the page. Only one page of rows
// is ever in the DOM, so 20,000 rows cost what 100 do. Values are set with textContent only:
// whatever a name holds, it stays text.
(function () {
  var tables = JSON.parse(document.getElementById("report-data").textContent);
  var collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
  var STATUSES = { mapped: true, ignored: true, not_genre: true, unmapped: true };
  var PAGE_SIZES = [50, 100, 500, 1000];

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function number(value) {
    return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
  }

  function button(label, onClick) {
    var node = el("button", "", label);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function widget(root, table) {
    var columns = table.columns;
    var rows = table.rows;
    var noun = root.getAttribute("data-noun") || "rows";
    if (!rows.length) {
      root.appendChild(el("p", "empty", root.getAttribute("data-empty") || "Nothing to show."));
      return;
    }
    var visible = [];
    var searchable = [];
    var spellings = -1;
    columns.forEach(function (column, i) {
      if (!column.hidden) visible.push(i);
      if (column.type !== "num") searchable.push(i);
      if (column.key === "spellings") spellings = i;
    });
    // One lower-case string per row; columns joined by a line break so no word spans two.
    var haystack = rows.map(function (row) {
      return searchable.map(function (i) { return String(row[i]); }).join("\n").toLowerCase();
    });
    var state = { words: [], equal: {}, sortColumn: -1, direction: 1, page: 0, size: 100 };
    var sorted = rows.map(function (_, i) { return i; }); // every row, in the current sort order
    var matching = sorted; // the rows that pass the search and filters, in that order

    var controls = el("div", "controls");
    var search = el("input", "search");
    search.type = "search";
    search.placeholder = "Search " + noun + "...";
    search.setAttribute("aria-label", "Search " + noun);
    search.addEventListener("input", function () {
      state.words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      refilter();
    });
    controls.appendChild(search);
    (root.getAttribute("data-filters") || "").split(" ").filter(Boolean).forEach(function (key) {
      var index = columns.findIndex(function (column) { return column.key === key; });
      if (index < 0) return;
      var values = Array.from(new Set(rows.map(function (row) { return String(row[index]); }))).sort(collator.compare);
      var select = el("select");
      select.setAttribute("aria-label", "Only this " + columns[index].label);
      select.setAttribute("data-filter", key);
      select.appendChild(el("option", "", "any " + columns[index].label));
      values.forEach(function (value) { select.appendChild(el("option", "", value === "" ? "(none)" : value)); });
      select.addEventListener("change", function () {
        if (select.selectedIndex === 0) delete state.equal[index];
        else state.equal[index] = values[select.selectedIndex - 1];
        refilter();
      });
      controls.appendChild(select);
    });
    var count = el("p", "count");
    count.setAttribute("aria-live", "polite");

    var tableNode = el("table", "data");
    var headRow = el("tr");
    var headers = visible.map(function (i) {
      var th = el("th", columns[i].type === "num" ? "num" : "");
      th.scope = "col";
      th.setAttribute("data-key", columns[i].key);
      th.appendChild(button(columns[i].label, function () { sortBy(i); }));
      headRow.appendChild(th);
      return th;
    });
    tableNode.appendChild(el("thead")).appendChild(headRow);
    var body = tableNode.appendChild(el("tbody"));

    var pager = el("div", "pager");
    var first = button("\u00ab first", function () { go(0); });
    var previous = button("\u2039 previous", function () { go(state.page - 1); });
    var where = el("span", "where");
    var next = button("next \u203a", function () { go(state.page + 1); });
    var last = button("last \u00bb", function () { go(Infinity); });
    var size = el("select");
    size.setAttribute("aria-label", "Rows per page");
    PAGE_SIZES.forEach(function (n) {
      var option = el("option", "", n + " per page");
      option.value = String(n);
      option.selected = n === state.size;
      size.appendChild(option);
    });
    size.addEventListener("change", function () { state.size = Number(size.value); go(0); });
    [first, previous, where, next, last, size].forEach(function (node) { pager.appendChild(node); });

    [controls, count, pager, tableNode].forEach(function (node) { root.appendChild(node); });

    function passes(i) {
      for (var key in state.equal) {
        if (String(rows[i][key]) !== state.equal[key]) return false;
      }
      var text = haystack[i];
      for (var w = 0; w < state.words.length; w++) {
        if (text.indexOf(state.words[w]) < 0) return false;
      }
      return true;
    }

    function refilter() {
      var filtering = state.words.length || Object.keys(state.equal).length;
      matching = filtering ? sorted.filter(passes) : sorted;
      go(0);
    }

    function sortBy(index) {
      var numeric = columns[index].type === "num";
      if (state.sortColumn === index) state.direction = -state.direction;
      else state.direction = numeric ? -1 : 1; // numbers largest first, text A to Z
      state.sortColumn = index;
      var direction = state.direction;
      sorted = rows.map(function (_, i) { return i; });
      sorted.sort(function (a, b) {
        var x = rows[a][index], y = rows[b][index];
        var order = numeric ? x - y : collator.compare(String(x), String(y));
        return order ? order * direction : a - b;
      });
      headers.forEach(function (th, k) {
        if (visible[k] === index) th.setAttribute("aria-sort", direction > 0 ? "ascending" : "descending");
        else th.removeAttribute("aria-sort");
      });
      refilter();
    }

    function cell(row, i) {
      var column = columns[i];
      var value = row[i];
      var td = el("td", column.type === "num" ? "num" : "");
      if (column.type === "status") {
        td.appendChild(el("span", "badge" + (STATUSES[value] ? " " + value : ""), String(value)));
      } else if (column.type === "code") {
        // A path breaks only after its slashes, never inside a name or a line number.
        var code = td.appendChild(el("code"));
        String(value).split("/").forEach(function (part, k, parts) {
          code.appendChild(el("span", "", part + (k < parts.length - 1 ? "/" : "")));
          if (k < parts.length - 1) code.appendChild(el("wbr"));
        });
      } else if (column.type === "clip") {
        // Long text (an ignore reason) shows two lines; a click shows it all.
        var clip = td.appendChild(el("span", "clip", String(value)));
        clip.title = String(value);
        clip.addEventListener("click", function () { clip.classList.toggle("open"); });
      } else {
        td.textContent = number(value);
      }
      return td;
    }

    function go(page) {
      var pages = Math.max(1, Math.ceil(matching.length / state.size));
      state.page = Math.max(0, Math.min(page, pages - 1));
      var start = state.page * state.size;
      var end = Math.min(start + state.size, matching.length);
      var fragment = document.createDocumentFragment();
      for (var k = start; k < end; k++) {
        var row = rows[matching[k]];
        var tr = el("tr");
        visible.forEach(function (i) { tr.appendChild(cell(row, i)); });
        if (spellings >= 0 && row[spellings] && row[spellings] !== row[0]) {
          tr.firstChild.title = "spelled in the store: " + row[spellings];
        }
        fragment.appendChild(tr);
      }
      body.replaceChildren(fragment);
      var all = number(rows.length);
      count.textContent = matching.length === rows.length
        ? all + " " + noun
        : number(matching.length) + " of " + all + " " + noun + " match";
      where.textContent = matching.length
        ? number(start + 1) + "\u2013" + number(end) + " of " + number(matching.length)
        : "no match";
      first.disabled = previous.disabled = state.page === 0;
      next.disabled = last.disabled = state.page >= pages - 1;
      pager.hidden = matching.length <= PAGE_SIZES[0];
    }

    go(0);
  }

  Array.prototype.forEach.call(document.querySelectorAll(".widget"), function (root) {
    var table = tables[root.getAttribute("data-table")];
    if (table) widget(root, table);
  });
  document.documentElement.setAttribute("data-ready", "true");
})();
