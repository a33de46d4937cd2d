// The enterprise profile chart on the lookup page: monthly tax paid (bars, left axis) and
// insured headcount (line, right axis) over 所属期. The data comes from
// <script type="application/json" id="profile-chart-data"> (no inline scripts under the CSP).
(function () {
  "use strict";

  var canvas = document.getElementById("profile-chart");
  var source = document.getElementById("profile-chart-data");
  if (!canvas || !source || typeof Chart === "undefined") return;

  var data;
  try { data = JSON.parse(source.textContent); } catch (e) { return; }
  if (!data || !data.periods || !data.periods.length) return;

  function numbers(values) {
    return values.map(function (v) { return v === null || v === undefined ? null : Number(v); });
  }

  var datasets = [];
  data.series.forEach(function (s) {
    if (s.key === "tax") {
      datasets.push({
        type: "bar", label: (data.labels && data.labels.tax) || s.column,
        data: numbers(s.values), yAxisID: "yTax", backgroundColor: "rgba(183, 38, 31, 0.55)",
        order: 2
      });
    } else if (s.key === "headcount") {
      datasets.push({
        type: "line", label: (data.labels && data.labels.headcount) || s.column,
        data: numbers(s.values), yAxisID: "yHeadcount", borderColor: "#1f5fa8",
        backgroundColor: "#1f5fa8", tension: 0.2, spanGaps: true, order: 1
      });
    }
  });
  var hasTax = datasets.some(function (d) { return d.yAxisID === "yTax"; });
  var hasHeadcount = datasets.some(function (d) { return d.yAxisID === "yHeadcount"; });

  // eslint-disable-next-line no-new
  new Chart(canvas, {
    data: { labels: data.periods, datasets: datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        yTax: { type: "linear", position: "left", display: hasTax, beginAtZero: true },
        yHeadcount: {
          type: "linear", position: "right", display: hasHeadcount, beginAtZero: true,
          grid: { drawOnChartArea: false }, ticks: { precision: 0 }
        }
      }
    }
  });
  canvas.setAttribute("data-rendered", "1");
})();
