// The SQL console: runs queries through the JSON API (session cookie + X-CSRFToken), shows
// the result as a table and a bar chart, exports it as CSV, estimates the privacy cost of
// queries on DP tables and keeps the history current. No inline scripts: the URLs come from
// data-* attributes, the UI strings from <script type="application/json" id="sandbox-i18n">.
(function () {
  "use strict";

  var root = document.getElementById("sandbox-console");
  if (!root) return;

  var i18n = {};
  try { i18n = JSON.parse(document.getElementById("sandbox-i18n").textContent); } catch (e) { i18n = {}; }

  var form = document.getElementById("sbx-form");
  var editor = document.getElementById("sbx-sql");
  var runButton = document.getElementById("sbx-run");
  var errorBox = document.getElementById("sbx-error");
  var summary = document.getElementById("sbx-summary");
  var table = document.getElementById("sbx-result");
  var tools = document.getElementById("sbx-tools");
  var chartBox = document.getElementById("sbx-chart-box");
  var canvas = document.getElementById("sbx-chart");
  var costBadge = document.getElementById("sbx-cost");
  var quota = document.getElementById("sbx-quota");
  var budget = document.getElementById("sbx-budget");
  var history = document.getElementById("sbx-history");
  var queriesUrl = root.getAttribute("data-queries-url");
  var costUrl = root.getAttribute("data-cost-url");
  var usesDp = root.getAttribute("data-uses-dp") === "1";
  var chart = null;
  var last = null;

  function fmt(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (m, key) {
      return key in values ? String(values[key]) : m;
    });
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function api(method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() }
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, body: data };
      });
    });
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }

  function cell(tag, text, cls) {
    var el = document.createElement(tag);
    el.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) el.className = cls;
    return el;
  }

  function isNumeric(value) {
    if (typeof value === "number") return isFinite(value);
    return typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value);
  }

  // Display only (the CSV keeps the exact values): long fractions are shortened.
  function display(value) {
    if (typeof value === "number" && isFinite(value) && !Number.isInteger(value)) {
      return value.toLocaleString(undefined, { maximumFractionDigits: 4, useGrouping: false });
    }
    return value;
  }

  // -- results ---------------------------------------------------------------------------
  function showError(body, status) {
    var message = (body && body.message) || i18n.network;
    var rule = body && body.errors && body.errors.rule;
    errorBox.textContent = rule ? message + " (" + (i18n.rule || "rule") + ": " + rule + ")" : message;
    errorBox.setAttribute("data-rule", rule || "");
    errorBox.setAttribute("data-status", String(status || ""));
    errorBox.hidden = false;
  }

  function renderTable(result) {
    clear(table);
    var head = document.createElement("thead");
    var tr = document.createElement("tr");
    result.columns.forEach(function (name, i) {
      var numeric = result.rows.length && result.rows.every(function (r) { return r[i] === null || isNumeric(r[i]); });
      tr.appendChild(cell("th", name, numeric ? "num" : ""));
    });
    head.appendChild(tr);
    table.appendChild(head);
    var body = document.createElement("tbody");
    if (!result.rows.length) {
      var empty = document.createElement("tr");
      var td = cell("td", result.empty_reason || i18n.empty_result, "empty");
      td.colSpan = Math.max(result.columns.length, 1);
      empty.appendChild(td);
      body.appendChild(empty);
    }
    var bounds = (result.privacy && result.privacy.error_bounds) || [];
    result.rows.forEach(function (row, ri) {
      var r = document.createElement("tr");
      row.forEach(function (value, ci) {
        var td = cell("td", display(value), isNumeric(value) ? "num" : "");
        var half = errorBound(bounds[ci], ri);
        if (half !== null && value !== null) {
          var pm = cell("span", " ± " + (half === "∞" ? half : display(Number(half))), "sbx-pm");
          pm.setAttribute("data-testid", "error-bound");
          pm.title = i18n.bound_title || "";
          td.appendChild(pm);
        }
        r.appendChild(td);
      });
      body.appendChild(r);
    });
    table.appendChild(body);
    table.hidden = false;
  }

  // The 95% error bound of one released value: per column, or per row for an AVG.
  function errorBound(bound, rowIndex) {
    if (!bound) return null;
    if (bound.half_width !== null && bound.half_width !== undefined) return bound.half_width;
    if (bound.per_row && bound.per_row[rowIndex] !== null && bound.per_row[rowIndex] !== undefined) {
      return bound.per_row[rowIndex];
    }
    // An AVG whose count may be near zero: its error has no useful bound.
    return bound.per_row ? "∞" : null;
  }

  // The chart: the first dimension column against the first numeric column.
  function chartColumns(result) {
    var kinds = result.column_kinds || [];
    var label = -1, value = -1;
    result.columns.forEach(function (name, i) {
      var numeric = result.rows.length && result.rows.every(function (r) { return r[i] === null || isNumeric(r[i]); });
      if (label < 0 && (kinds[i] === "dimension" || (kinds[i] === "value" && !numeric))) label = i;
      if (value < 0 && i !== label && (["count", "sum", "avg"].indexOf(kinds[i]) >= 0 || numeric)) value = i;
    });
    return { label: label, value: value };
  }

  function renderChart(result) {
    if (chart) { chart.destroy(); chart = null; }
    var cols = chartColumns(result);
    if (typeof window.Chart === "undefined" || cols.label < 0 || cols.value < 0 || !result.rows.length) {
      chartBox.hidden = true;
      return;
    }
    chartBox.hidden = false;
    chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: result.rows.map(function (r) { return r[cols.label] === null ? "∅" : String(r[cols.label]); }),
        datasets: [{
          label: result.columns[cols.value],
          data: result.rows.map(function (r) { return r[cols.value] === null ? null : Number(r[cols.value]); }),
          backgroundColor: "#b7261f"
        }]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: true } },
        scales: { y: { beginAtZero: true } }
      }
    });
  }

  function showResult(result) {
    last = result;
    var parts = [fmt(i18n.rows, { n: result.rows.length }), fmt(i18n.elapsed, { n: result.elapsed_ms })];
    if (result.suppressed_groups) parts.push(fmt(i18n.suppressed, { n: result.suppressed_groups }));
    if (result.truncated) parts.push(i18n.truncated);
    if (result.cached) parts.push(i18n.repeat);
    else if (result.epsilon_spent && Number(result.epsilon_spent) > 0) parts.push(fmt(i18n.epsilon_spent, { e: result.epsilon_spent }));
    if (result.privacy && result.privacy.notice) parts.push(result.privacy.notice);
    summary.textContent = parts.join(" · ");
    summary.hidden = false;
    renderTable(result);
    tools.hidden = false;
    renderChart(result);
    if (quota && result.quota_remaining !== undefined) quota.textContent = result.quota_remaining;
    if (budget && result.privacy_budget_remaining !== null && result.privacy_budget_remaining !== undefined) {
      budget.textContent = result.privacy_budget_remaining;
    }
  }

  function hideResult() {
    last = null;
    summary.hidden = true;
    table.hidden = true;
    tools.hidden = true;
    chartBox.hidden = true;
    if (chart) { chart.destroy(); chart = null; }
  }

  function run() {
    var sql = editor.value.trim();
    if (!sql || runButton.disabled) return;
    errorBox.hidden = true;
    runButton.disabled = true;
    runButton.setAttribute("aria-busy", "true");
    api("POST", queriesUrl, { sql: sql }).then(function (res) {
      if (res.ok) showResult(res.body);
      else { hideResult(); showError(res.body, res.status); }
    }).catch(function () {
      hideResult();
      showError(null, 0);
    }).then(function () {
      runButton.disabled = false;
      runButton.removeAttribute("aria-busy");
      loadHistory();
      estimateCost();
    });
  }

  // -- CSV export (client-side, from the JSON already received) ---------------------------
  function csvCell(value) {
    if (value === null || value === undefined) return "";
    var text = String(value);
    // Spreadsheet formulas are neutralized; plain numbers (also "-12.50") are data.
    if (/^[=+\-@\t\r]/.test(text) && !isNumeric(value)) text = "'" + text;
    if (/[",\r\n]/.test(text)) text = '"' + text.replace(/"/g, '""') + '"';
    return text;
  }

  function exportCsv() {
    if (!last) return;
    var lines = [last.columns.map(csvCell).join(",")];
    last.rows.forEach(function (row) { lines.push(row.map(csvCell).join(",")); });
    var blob = new Blob(["\ufeff" + lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = (i18n.csv_name || "sandbox-result") + "-" + last.id + ".csv";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 0);
  }

  // -- privacy cost before running --------------------------------------------------------
  var costTimer = null;
  function estimateCost() {
    if (!usesDp || !costBadge) return;
    clearTimeout(costTimer);
    costTimer = setTimeout(function () {
      var sql = editor.value.trim();
      if (!sql) { costBadge.hidden = true; return; }
      api("POST", costUrl, { sql: sql }).then(function (res) {
        if (!res.ok) { costBadge.hidden = true; return; }
        var b = res.body;
        var text = b.cached ? i18n.cost_repeat
          : Number(b.epsilon_cost) > 0 ? fmt(i18n.cost, { e: b.epsilon_cost }) : i18n.cost_none;
        (b.budgets || []).forEach(function (x) {
          text += " · " + fmt(i18n.cost_budget, { t: x.slug, b: x.budget_remaining, v: x.version_remaining });
        });
        if (b.affordable === false) text += " · " + i18n.cost_unaffordable;
        costBadge.textContent = text;
        costBadge.className = "badge " + (b.affordable === false ? "bad" : Number(b.epsilon_cost) > 0 ? "warn" : "ok");
        costBadge.hidden = false;
      }).catch(function () { costBadge.hidden = true; });
    }, 400);
  }

  // -- history ---------------------------------------------------------------------------
  function loadHistory() {
    api("GET", queriesUrl + "?per_page=20").then(function (res) {
      if (!res.ok) return;
      var body = history.querySelector("tbody");
      clear(body);
      if (!res.body.items.length) {
        var tr = document.createElement("tr");
        var td = cell("td", i18n.empty_history, "empty");
        td.colSpan = 7;
        tr.appendChild(td);
        body.appendChild(tr);
        return;
      }
      res.body.items.forEach(function (q) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-status", q.status);
        tr.appendChild(cell("td", new Date(q.created_at).toLocaleString()));
        var sqlCell = cell("td", q.sql.length > 160 ? q.sql.slice(0, 160) + "…" : q.sql, "mono");
        sqlCell.title = q.sql;
        tr.appendChild(sqlCell);
        var decision = cell("td", "");
        var badge = cell("span", (i18n.status && i18n.status[q.status]) || q.status,
          "badge " + (q.status === "ok" ? "ok" : "bad"));
        decision.appendChild(badge);
        if (q.rule) { decision.appendChild(document.createTextNode(" ")); decision.appendChild(cell("code", q.rule)); }
        tr.appendChild(decision);
        tr.appendChild(cell("td", q.rows_returned, "num"));
        tr.appendChild(cell("td", q.suppressed_groups, "num"));
        tr.appendChild(cell("td", Number(q.epsilon_spent) > 0 ? q.epsilon_spent : "", "num"));
        tr.appendChild(cell("td", q.elapsed_ms, "num"));
        body.appendChild(tr);
      });
    }).catch(function () { /* the history is a convenience; the next run retries */ });
  }

  // -- wiring ----------------------------------------------------------------------------
  form.addEventListener("submit", function (event) { event.preventDefault(); run(); });
  editor.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") { event.preventDefault(); run(); }
  });
  editor.addEventListener("input", estimateCost);
  document.getElementById("sbx-csv").addEventListener("click", exportCsv);
  document.querySelectorAll(".sbx-insert").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-insert");
      var start = editor.selectionStart, end = editor.selectionEnd;
      editor.value = editor.value.slice(0, start) + text + editor.value.slice(end);
      editor.focus();
      editor.selectionStart = editor.selectionEnd = start + text.length;
      estimateCost();
    });
  });
  loadHistory();
  estimateCost();
})();
