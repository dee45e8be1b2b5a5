// The report's charts, drawn by Chart.js (embedded above) from the data
// block the Go side wrote. Labels from the network reach the charts as
// data only: Chart.js draws them on a canvas, never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  Chart.defaults.animation = false; // drawn at once: a screenshot or a printout shows it whole
  Chart.defaults.font.family = 'system-ui, "DejaVu Sans", sans-serif';
  Chart.defaults.color = "#1f2933";
  Chart.defaults.maintainAspectRatio = false;

  // On a log axis only the powers of ten are labelled: 1 B, 10 B ... 1 kB,
  // in decimal units, which is what the grid's steps are.
  var si = ["B", "kB", "MB", "GB", "TB", "PB"];
  function logTick(v) {
    var e = Math.round(Math.log10(v));
    if (Math.abs(v - Math.pow(10, e)) > 1e-6 * v || e < 0) { return ""; }
    var u = Math.min(Math.floor(e / 3), si.length - 1);
    return Math.pow(10, e - 3 * u) + " " + si[u];
  }

  // The grid's lines at the labelled ticks are drawn, the others faint.
  var logGrid = { color: function (c) { return c.tick && logTick(c.tick.value) ? "rgba(0,0,0,0.12)" : "rgba(0,0,0,0.03)"; } };

  var tl = data.timeline;
  new Chart(document.getElementById("chart-timeline"), {
    type: "bar",
    data: {
      labels: tl.labels || [],
      datasets: [
        { label: "flows started", data: tl.flows || [], backgroundColor: "#7b93ad", yAxisID: "y" },
        { label: "alerts raised", data: tl.alerts || [], backgroundColor: "#c2410c", yAxisID: "y1" }
      ]
    },
    options: {
      scales: {
        x: { title: { display: true, text: "capture time (UTC)" } },
        y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "flows" } },
        y1: { beginAtZero: true, position: "right", ticks: { precision: 0 }, grid: { drawOnChartArea: false },
              title: { display: true, text: "alerts" } }
      }
    }
  });

  var fl = data.flows;
  new Chart(document.getElementById("chart-flows"), {
    type: "scatter",
    data: {
      datasets: [
        { label: "flows", data: fl.quiet || [], backgroundColor: "rgba(82, 96, 109, 0.45)", pointRadius: 3 },
        { label: "flows an alert names", data: fl.alerting || [], backgroundColor: "#c2410c",
          borderColor: "#7c2d12", pointRadius: 6, pointStyle: "rectRot" }
      ]
    },
    options: {
      scales: {
        x: { type: "logarithmic", min: 1, grid: logGrid, ticks: { callback: logTick, autoSkip: false, maxRotation: 0 },
             title: { display: true, text: "bytes out (sent by the internal host)" } },
        y: { type: "logarithmic", min: 1, grid: logGrid, ticks: { callback: logTick, autoSkip: false },
             title: { display: true, text: "bytes in (received)" } }
      },
      plugins: { tooltip: { callbacks: { label: function (c) { return c.raw.l; } } } }
    }
  });

  var colours = { text: "#2f855a", compressed: "#b7791f", encrypted: "#c53030", mixed: "#6b46c1" };
  var en = data.entropy;
  new Chart(document.getElementById("chart-entropy"), {
    type: "bar",
    data: {
      labels: en.bins || [],
      datasets: (en.classes || []).map(function (c) {
        return { label: c.name, data: c.counts, backgroundColor: colours[c.name] || "#718096" };
      })
    },
    options: {
      scales: {
        x: { stacked: true, title: { display: true, text: "Shannon entropy of the payload, bits per byte" } },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 },
             title: { display: true, text: "payload samples (one per direction of a flow)" } }
      }
    }
  });
})();
