// License pages: the revenue chart, confirmations and the print button. No inline scripts:
// data comes from data-* attributes and <script type="application/json"> blocks.
(function () {
  "use strict";

  function yuan(fen) {
    return (fen / 100).toFixed(2);
  }

  function revenueChart() {
    var canvas = document.getElementById("revenue-chart");
    var source = document.getElementById("revenue-data");
    if (!canvas || !source || typeof window.Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ label: data.label, data: data.values.map(yuan), backgroundColor: "#b7261f" }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { beginAtZero: true, ticks: { callback: function (v) { return "¥" + v; } } } },
        plugins: { legend: { display: false } },
      },
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) {
          event.preventDefault();
        }
      });
    });
  }

  function printButtons() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    revenueChart();
    confirmations();
    printButtons();
  });
})();
