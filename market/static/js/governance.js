// Governance: the regulator's grading chart (data from a JSON block; CSP allows no inline code).
(function () {
  var el = document.getElementById("grading-data");
  var canvas = document.getElementById("chart-grading");
  if (!el || !canvas || typeof Chart === "undefined") return;
  var d = JSON.parse(el.textContent);
  var palette = ["#1f7a3f", "#1f6fb7"];
  new Chart(canvas, {
    type: "bar",
    data: { labels: d.labels, datasets: d.series.map(function (s, i) {
      return { label: s.label, data: s.data, backgroundColor: palette[i % palette.length] };
    }) },
    options: { responsive: true, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }
  });
})();
