// Dataset pages: the quality chart, the upload form's progress, and the processing poll.
// No inline scripts: data comes from data-* attributes and <script type="application/json">.
(function () {
  "use strict";

  function readJSON(text, fallback) {
    try { return JSON.parse(text); } catch (e) { return fallback; }
  }

  // ---------------------------------------------------------------- quality chart
  function qualityChart() {
    var canvas = document.getElementById("quality-chart");
    var data = document.getElementById("quality-data");
    if (!canvas || !data || typeof Chart === "undefined") return;
    var q = readJSON(data.textContent, null);
    if (!q || !q.values) return;
    new Chart(canvas, {
      type: "radar",
      data: {
        labels: q.labels,
        datasets: [{
          label: q.dataset_label,
          data: q.values,
          backgroundColor: "rgba(183, 38, 31, 0.15)",
          borderColor: "#b7261f",
          pointBackgroundColor: "#b7261f"
        }]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false } },
        scales: { r: { min: 0, max: 100, ticks: { stepSize: 20 } } }
      }
    });
  }

  // ---------------------------------------------------------------- status polling
  // Polls the publication API until the version leaves "processing"; calls back each time.
  function poll(url, onUpdate, onDone, onError) {
    var stopped = false;
    function tick() {
      if (stopped) return;
      var xhr = new XMLHttpRequest();
      xhr.open("GET", url);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.onload = function () {
        if (xhr.status !== 200) { stopped = true; if (onError) onError(xhr.status); return; }
        var body = readJSON(xhr.responseText, {});
        onUpdate(body);
        if (body.status === "processing") { window.setTimeout(tick, 1000); }
        else { stopped = true; onDone(body); }
      };
      xhr.onerror = function () { window.setTimeout(tick, 3000); };
      xhr.send();
    }
    tick();
    return function () { stopped = true; };
  }

  function detailPoll() {
    var box = document.querySelector("[data-poll-url]");
    if (!box || !box.getAttribute("data-poll-url")) return;
    var bar = box.querySelector("progress");
    var percent = box.querySelector('[data-field="percent"]');
    poll(box.getAttribute("data-poll-url"), function (body) {
      var p = (body.progress && body.progress.percent) || 0;
      if (bar) bar.value = p;
      if (percent) percent.textContent = String(p);
    }, function () {
      window.location.reload();
    });
  }

  // ---------------------------------------------------------------- upload form
  function clearErrors(form) {
    form.querySelectorAll("[data-errors-for]").forEach(function (box) { box.textContent = ""; });
    form.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
  }

  function showErrors(form, errors, fallback) {
    var shown = false;
    Object.keys(errors || {}).forEach(function (name) {
      var box = form.querySelector('[data-errors-for="' + name + '"]') ||
        form.querySelector('[data-errors-for="form"]');
      var wrap = form.querySelector('[data-field-wrap="' + name + '"]');
      if (wrap) wrap.classList.add("has-error");
      (errors[name] || []).forEach(function (message) {
        var p = document.createElement("p");
        p.className = "field-error";
        p.textContent = message;
        box.appendChild(p);
        shown = true;
      });
    });
    if (!shown) {
      var box = form.querySelector('[data-errors-for="form"]');
      var div = document.createElement("div");
      div.className = "flash error";
      div.setAttribute("role", "alert");
      div.textContent = fallback;
      box.appendChild(div);
    }
    var first = form.querySelector(".has-error input, .has-error select, .has-error textarea");
    if (first) first.focus();
  }

  function uploadForm() {
    var form = document.querySelector("[data-upload-form]");
    if (!form || !window.FormData || !window.XMLHttpRequest) return; // plain form post
    var i18n = readJSON(form.getAttribute("data-i18n"), {});
    var panel = form.querySelector("[data-upload-progress]");
    var stage = panel.querySelector('[data-field="stage"]');
    var transfer = panel.querySelector('[data-field="transfer"]');
    var processing = panel.querySelector('[data-field="processing"]');
    var link = panel.querySelector('[data-field="link"]');
    var submit = form.querySelector('[type="submit"]');

    function say(text, p) { stage.textContent = p === undefined ? text : text + " " + p + "%"; }

    function finish(url, status) {
      transfer.value = 100;
      processing.value = 100;
      say(status === "refused" ? i18n.refused : (status === "failed" ? i18n.failed : i18n.done));
      link.href = url;
      link.hidden = false;
      window.setTimeout(function () { window.location.assign(url); }, 600);
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form);
      var data = new FormData(form);
      var grade = form.querySelector('[name="open_grade"]');
      var secret = form.querySelector('[name="confidential"]');
      // Refused on the metadata alone: the file is not needed, so it is not sent at all.
      if ((grade && grade.value === "restricted") || (secret && secret.checked)) data.delete("file");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", (form.querySelector('[name="csrf_token"]') || {}).value || "");
      panel.hidden = false;
      link.hidden = true;
      transfer.value = 0;
      processing.value = 0;
      say(i18n.sending, 0);
      submit.disabled = true;
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var p = Math.floor((e.loaded * 100) / e.total);
        transfer.value = p;
        say(i18n.sending, p);
      });
      xhr.onload = function () {
        var body = readJSON(xhr.responseText, {});
        if (xhr.status === 202) {
          transfer.value = 100;
          if (body.status !== "processing") { finish(body.dataset_url, body.status); return; }
          say(i18n.processing, 0);
          poll(body.status_url, function (s) {
            var p = (s.progress && s.progress.percent) || 0;
            processing.value = p;
            say(i18n.processing, p);
          }, function (s) { finish(body.dataset_url, s.status); },
          function () { finish(body.dataset_url, "processing"); });
          return;
        }
        submit.disabled = false;
        panel.hidden = true;
        showErrors(form, body.errors || {}, body.message || i18n.invalid);
      };
      xhr.onerror = function () {
        submit.disabled = false;
        panel.hidden = true;
        showErrors(form, {}, i18n.network);
      };
      xhr.send(data);
    });
  }

  function init() {
    qualityChart();
    detailPoll();
    uploadForm();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
