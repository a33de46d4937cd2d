// Regulator dashboards: data comes from the JSON block in the page (CSP: no inline scripts).
(function () {
  var el = document.getElementById("insights-data");
  if (!el || typeof Chart === "undefined") return;
  var d = JSON.parse(el.textContent), L = d.labels;
  var palette = ["#b7261f", "#1f6fb7", "#1f7a3f", "#a86b00", "#6b3fa0", "#0f8a8a", "#7a7a7a"];
  function canvas(id) { return document.getElementById(id); }
  if (canvas("chart-transactions")) {
    var fams = Object.keys(d.transactions.series);
    new Chart(canvas("chart-transactions"), {
      type: "line",
      data: { labels: d.transactions.labels, datasets: fams.map(function (f, i) {
        return { label: L[f] || f, data: d.transactions.series[f], borderColor: palette[i % palette.length], tension: 0.2 };
      }) },
      options: { responsive: true, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  if (canvas("chart-revenue")) {
    new Chart(canvas("chart-revenue"), {
      type: "bar",
      data: { labels: d.revenue.map(function (r) { return r.name; }),
              datasets: [{ label: L.revenue, data: d.revenue.map(function (r) { return r.amount / 100; }), backgroundColor: palette[0] }] },
      options: { responsive: true, indexAxis: "y" }
    });
  }
  if (canvas("chart-queries")) {
    new Chart(canvas("chart-queries"), {
      type: "bar",
      data: { labels: d.queries.licenses.map(function (l) { return L.license_no + " " + l; }),
              datasets: [{ label: L.ok, data: d.queries.ok, backgroundColor: palette[2] },
                         { label: L.refused, data: d.queries.refused, backgroundColor: palette[0] }] },
      options: { responsive: true, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  if (canvas("chart-rules")) {
    new Chart(canvas("chart-rules"), {
      type: "bar",
      data: { labels: d.queries.rules.map(function (r) { return r[0]; }),
              datasets: [{ label: L.refused, data: d.queries.rules.map(function (r) { return r[1]; }), backgroundColor: palette[3] }] },
      options: { responsive: true, indexAxis: "y", plugins: { legend: { display: false } } }
    });
  }
})();
