// Price calculator, factor-breakdown charts and the revenue-cap chart.
// No inline scripts: data comes from data-* attributes; the API call sends the page's CSRF token.
(function () {
  "use strict";
  if (window.marketQuotes) return; // the calculator partial may load this file twice
  window.marketQuotes = true;

  function readJSON(el, name) {
    try { return JSON.parse(el.getAttribute(name) || "{}"); } catch (e) { return {}; }
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Integer fen -> "¥1,234.56" (string arithmetic on integers: no float money).
  function fen(amount) {
    var n = Number(amount), sign = n < 0 ? "-" : "";
    n = Math.abs(n);
    var yuan = Math.floor(n / 100), cents = n % 100;
    return sign + "¥" + yuan.toLocaleString("en-US") + "." + (cents < 10 ? "0" : "") + cents;
  }

  // The running price after each factor, in yuan, for the chart only (display, not money).
  function ordered(factors, order) {
    var names = (order || []).filter(function (k) { return k in factors; });
    Object.keys(factors).forEach(function (k) { if (names.indexOf(k) < 0) names.push(k); });
    return names;
  }

  function steps(factors, labels, order) {
    var names = ordered(factors, order);
    var running = 1, out = { labels: [], values: [] };
    names.forEach(function (name) {
      running *= Number(factors[name]);
      out.labels.push((labels && labels[name]) || name);
      out.values.push(Math.ceil(running) / 100);
    });
    return out;
  }

  var charts = new WeakMap();

  function factorChart(canvas, factors, i18n) {
    if (typeof Chart === "undefined") return;
    var s = steps(factors, i18n.factors, i18n.order);
    var old = charts.get(canvas);
    if (old) old.destroy();
    charts.set(canvas, new Chart(canvas, {
      type: "bar",
      data: { labels: s.labels, datasets: [{ label: i18n.after || "¥", data: s.values, backgroundColor: "#b7261f" }] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: true } },
        scales: { y: { beginAtZero: true } }
      }
    }));
  }

  // -- the calculator ------------------------------------------------------------------------
  function clearErrors(form) {
    form.querySelectorAll("[data-error]").forEach(function (el) { el.hidden = true; el.textContent = ""; });
    form.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
  }

  function flatten(errors, prefix, out) {
    Object.keys(errors || {}).forEach(function (key) {
      var value = errors[key], path = prefix ? prefix + "." + key : key;
      if (Array.isArray(value)) out.push([path, value.join(" ")]);
      else if (value && typeof value === "object") flatten(value, path, out);
      else out.push([path, String(value)]);
    });
    return out;
  }

  function showErrors(form, body, i18n) {
    var general = [];
    flatten(body.errors, "", []).forEach(function (pair) {
      var field = ["columns", "duration_months", "purpose", "query_quota"].filter(function (f) {
        return pair[0].indexOf(f) >= 0;
      })[0];
      var target = field && form.querySelector('[data-error="' + field + '"]');
      if (target) {
        target.textContent = pair[1];
        target.hidden = false;
        var box = form.querySelector('[data-error-for="' + field + '"]');
        if (box) box.classList.add("has-error");
      } else {
        general.push(pair[1]);
      }
    });
    var top = form.querySelector('[data-error="form"]');
    top.textContent = general.length ? general.join(" ") : (body.message || i18n.failed);
    top.hidden = false;
  }

  function requestBody(form) {
    var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="columns"]'));
    var chosen = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    var all = boxes.every(function (b) { return b.checked; });
    return {
      items: [{ dataset_id: Number(form.dataset.datasetId), columns: all ? null : chosen }],
      duration_months: Number(form.elements.duration_months.value),
      purpose: form.elements.purpose.value,
      query_quota: Number(form.elements.query_quota.value)
    };
  }

  function showQuote(section, form, quote, i18n) {
    var result = section.querySelector(".quote-result");
    var item = quote.items[0];
    result.querySelector('[data-field="total"]').textContent = fen(quote.total);
    var expires = new Date(quote.expires_at);
    result.querySelector('[data-field="expires"]').textContent =
      expires.toLocaleString(document.documentElement.lang || "zh-CN", { timeZone: "Asia/Shanghai" });
    result.querySelector('[data-field="link"]').setAttribute("href", form.dataset.quoteBase + "/" + quote.id);
    var body = result.querySelector('[data-field="factors"]');
    body.textContent = "";
    ordered(item.factors, i18n.order).forEach(function (name) {
      var tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
      a.textContent = (i18n.factors && i18n.factors[name]) || name;
      b.textContent = item.factors[name];
      b.className = "num mono";
      tr.appendChild(a); tr.appendChild(b); body.appendChild(tr);
    });
    result.hidden = false;
    factorChart(result.querySelector("canvas"), item.factors, i18n);
  }

  // -- the live estimate (buyer-ux): every change re-prices through POST /quotes/estimate,
  // which signs and stores nothing; "Get a quote" still asks for the signed quote.
  function initLiveEstimate(form, i18n) {
    var box = form.querySelector("[data-live]");
    if (!box || !form.dataset.estimate) return;
    var timer = null, seq = 0;
    var total = box.querySelector('[data-field="live-total"]');
    var note = box.querySelector('[data-field="live-note"]');
    function run() {
      var mine = ++seq;
      box.setAttribute("aria-busy", "true");
      fetch(form.dataset.estimate, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(requestBody(form))
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (r) {
        if (mine !== seq) return; // an older answer arriving late
        box.removeAttribute("aria-busy");
        clearErrors(form);
        if (r.ok) {
          total.textContent = fen(r.body.total);
          note.textContent = i18n.estimate || "";
          box.dataset.state = "ok";
        } else {
          total.textContent = "—";
          note.textContent = "";
          box.dataset.state = "error";
          showErrors(form, r.body, i18n);
        }
      }).catch(function () {
        if (mine !== seq) return;
        box.removeAttribute("aria-busy");
        total.textContent = "—";
        note.textContent = i18n.network || "";
        box.dataset.state = "error";
      });
    }
    function schedule() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(run, 250);
    }
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    run();
  }

  function initCalculator(form) {
    var section = form.closest(".quote-calculator");
    var i18n = readJSON(form, "data-i18n");
    var button = form.querySelector('button[type="submit"]');
    initLiveEstimate(form, i18n);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form);
      button.disabled = true;
      fetch(form.dataset.endpoint, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(requestBody(form))
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (r) {
        if (r.ok) showQuote(section, form, r.body, i18n);
        else showErrors(form, r.body, i18n);
      }).catch(function () {
        showErrors(form, { message: i18n.network }, i18n);
      }).then(function () { button.disabled = false; });
    });
  }

  // -- static charts (quote page, revenue caps) --------------------------------------------
  function initQuotePage() {
    document.querySelectorAll(".quote-items").forEach(function (box) {
      var i18n = readJSON(box, "data-i18n");
      box.querySelectorAll("canvas.factor-chart").forEach(function (canvas) {
        factorChart(canvas, readJSON(canvas, "data-factors"), i18n);
      });
    });
  }

  function initCapChart() {
    var canvas = document.getElementById("cap-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var data = readJSON(canvas, "data-chart");
    var yuan = function (list) { return (list || []).map(function (v) { return v === null ? null : v / 100; }); };
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: data.names.counted, data: yuan(data.counted), backgroundColor: "#b7261f" },
          { label: data.names.cap, data: yuan(data.caps), backgroundColor: "#9aa5b1" }
        ]
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } }
    });
  }

  function init() {
    document.querySelectorAll("form.quote-form").forEach(initCalculator);
    initQuotePage();
    initCapChart();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
