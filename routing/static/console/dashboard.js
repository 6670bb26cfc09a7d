// Dashboard charts (Chart.js, served by the gateway): data comes from the page's json_script block.
(function () {
  "use strict";
  function draw() {
    var data = JSON.parse(document.getElementById("gw-chart-data").textContent);
    var common = {responsive: true, maintainAspectRatio: false, animation: false, scales: {y: {beginAtZero: true}}};
    new Chart(document.getElementById("gw-chart-series"), {
      type: "line",
      data: {labels: data.series.labels, datasets: [
        {label: "requests", data: data.series.requests, borderColor: "#417690", backgroundColor: "#41769033", fill: true},
        {label: "errors", data: data.series.errors, borderColor: "#ba2121", backgroundColor: "#ba212133", fill: true}]},
      options: common
    });
    new Chart(document.getElementById("gw-chart-latency"), {
      type: "bar",
      data: {labels: data.latency.labels, datasets: [
        {label: "p50", data: data.latency.latency_p50, backgroundColor: "#79aec8"},
        {label: "p95", data: data.latency.latency_p95, backgroundColor: "#417690"},
        {label: "p99", data: data.latency.latency_p99, backgroundColor: "#264b5d"},
        {label: "TTFB p50", data: data.latency.ttfb_p50, backgroundColor: "#f5dd5d"}]},
      options: common
    });
    new Chart(document.getElementById("gw-chart-tokens"), {
      type: "bar",
      data: {labels: data.tokens.labels, datasets: [
        {label: "in", data: data.tokens.tokens_in, backgroundColor: "#79aec8"},
        {label: "out", data: data.tokens.tokens_out, backgroundColor: "#264b5d"}]},
      options: Object.assign({}, common, {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}}})
    });
    document.body.setAttribute("data-charts", "drawn");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
