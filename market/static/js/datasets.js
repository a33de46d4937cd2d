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

  // ------------------------------------------------ treatments, chosen before upload
  // When a file is chosen, its first lines (whole lines of a CSV; the whole file for a small
  // XLSX or Parquet) are sent to /api/v1/datasets/inspect, which keeps nothing, and each
  // column gets a select of its allowed treatments, named "treatment:<column>".
  var SAMPLE_BYTES = 1 << 20;
  var WHOLE_FILE_BYTES = 32 << 20;

  function firstLines(file) {
    if (!/\.(csv|tsv|txt)$/i.test(file.name)) {
      return Promise.resolve(file.size <= WHOLE_FILE_BYTES ? file : null);
    }
    if (file.size <= SAMPLE_BYTES) return Promise.resolve(file);
    return file.slice(0, SAMPLE_BYTES).arrayBuffer().then(function (buffer) {
      var bytes = new Uint8Array(buffer);
      var end = bytes.lastIndexOf(10);
      return end > 0 ? new Blob([bytes.subarray(0, end + 1)]) : null;
    });
  }

  function treatmentChoice(form, i18n) {
    var box = form.querySelector("[data-treatments]");
    var input = form.querySelector('input[type="file"][name="file"]');
    if (!box || !input || !window.fetch || !window.Blob) return;
    var labels = readJSON(box.getAttribute("data-labels"), { treatment: {}, pii: {} });
    var note = box.querySelector('[data-field="note"]');
    var rows = box.querySelector("[data-rows]");
    var key = form.querySelector('[name="entity_key"]');
    var intro = note.textContent;
    var csrf = (form.querySelector('[name="csrf_token"]') || {}).value || "";
    var asked = 0;

    function cell(row, text) {
      var td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
      return td;
    }

    function render(report) {
      rows.textContent = "";
      report.columns.forEach(function (c) {
        var tr = document.createElement("tr");
        cell(tr, c.name);
        cell(tr, c.pii_kind ? (labels.pii[c.pii_kind] || c.pii_kind) : i18n.noPii);
        var select = document.createElement("select");
        select.name = "treatment:" + c.name;
        select.setAttribute("data-default", c.default_treatment);
        select.setAttribute("aria-label", c.name);
        c.allowed_treatments.forEach(function (t) {
          var option = document.createElement("option");
          option.value = t;
          option.textContent = labels.treatment[t] || t;
          option.selected = t === c.default_treatment;
          select.appendChild(option);
        });
        cell(tr, "").appendChild(select);
        rows.appendChild(tr);
      });
    }

    function inspect() {
      var file = input.files && input.files[0];
      var mine = ++asked;
      rows.textContent = "";
      box.hidden = !file;
      if (!file) return;
      note.textContent = i18n.inspecting;
      firstLines(file).then(function (blob) {
        if (!blob) { note.textContent = i18n.inspectSkipped; return null; }
        var data = new FormData();
        data.append("file", blob, file.name);
        var url = box.getAttribute("data-url");
        if (key && key.value.trim()) url += "?entity_key=" + encodeURIComponent(key.value.trim());
        return fetch(url, {
          method: "POST", body: data, credentials: "same-origin",
          headers: { "Accept": "application/json", "X-CSRFToken": csrf }
        });
      }).then(function (response) {
        if (!response) return null;
        return response.json().then(function (body) {
          if (mine !== asked) return;
          if (!response.ok) {
            var errors = body.errors || {};
            note.textContent = (errors.file && errors.file[0]) ||
              (errors.entity_key && errors.entity_key[0]) || body.message || i18n.inspectFailed;
            return;
          }
          note.textContent = intro;
          render(body);
        });
      }).catch(function () { if (mine === asked) note.textContent = i18n.inspectFailed; });
    }

    input.addEventListener("change", inspect);
    if (key) key.addEventListener("change", function () { if (input.files && input.files[0]) inspect(); });
  }

  // Only the treatments the department changed are sent as overrides.
  function keepChangedTreatments(form, data) {
    form.querySelectorAll("[data-treatments] select").forEach(function (select) {
      if (select.value === select.getAttribute("data-default")) data.delete(select.name);
    });
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
    treatmentChoice(form, i18n);

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
      keepChangedTreatments(form, data);
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
