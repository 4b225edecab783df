// conduit dashboard: poll the page's live document every 2 s and swap in the server-rendered
// fragments; draw the charts (Chart.js); send the forms' actions as JSON. No build step.
(function () {
  "use strict";
  var script = document.currentScript;
  var page = script.dataset.page;
  var name = script.dataset.name;
  var POLL_MS = 2000;
  var charts = {};

  function signedOut(response) {
    if (response.status === 401) { window.location.assign("/signin"); return true; }
    return false;
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (response) {
      if (signedOut(response)) { return null; }
      return response.json().then(function (data) { return { status: response.status, data: data }; });
    });
  }

  function swap(parts) {
    document.querySelectorAll("[data-live]").forEach(function (element) {
      var html = parts[element.dataset.live];
      if (html !== undefined && element.innerHTML !== html) { element.innerHTML = html; }
    });
  }

  function showLog(text) {
    var log = document.getElementById("log");
    if (!log || log.textContent === text) { return; }
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = text;
    if (atEnd) { log.scrollTop = log.scrollHeight; }
  }

  function showRollback(job) {
    var box = document.getElementById("rollback-progress");
    if (!box || !job) { return; }
    box.hidden = false;
    var state = job.done ? (job.ok ? "done" : "failed") : "running";
    box.textContent = "Rollback to revision " + job.to + " (" + state + ")\n" + job.lines.join("\n");
    box.className = "response" + (job.done && !job.ok ? " error" : "");
    box.dataset.state = state;
  }

  // charts

  var LINES = {
    rate: [["rate", "requests/s", "#2563eb"]],
    latency: [["p50", "p50", "#16a34a"], ["p95", "p95", "#d97706"], ["p99", "p99", "#dc2626"]],
    errors: [["errors_4xx", "4xx", "#d97706"], ["errors_5xx", "5xx", "#dc2626"]]
  };

  function label(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function drawCharts(series) {
    if (typeof Chart === "undefined") { return; }
    document.querySelectorAll("figure.chart").forEach(function (figure) {
      var lines = LINES[figure.dataset.line];
      var datasets = lines.map(function (line) {
        return { label: line[1], data: series[line[0]], borderColor: line[2], backgroundColor: line[2],
                 fill: false, borderWidth: 1.5, pointRadius: 1.5, spanGaps: false, lineTension: 0 };
      });
      var chart = charts[figure.id];
      if (!chart) {
        chart = charts[figure.id] = new Chart(figure.querySelector("canvas"), {
          type: "line",
          data: { labels: series.times.map(label), datasets: datasets },
          options: {
            animation: false, responsive: true, maintainAspectRatio: false,
            legend: { display: lines.length > 1, labels: { boxWidth: 10 } },
            scales: { yAxes: [{ ticks: { beginAtZero: true, maxTicksLimit: 5 } }],
                      xAxes: [{ ticks: { maxTicksLimit: 6, maxRotation: 0 } }] }
          }
        });
      } else {
        chart.data.labels = series.times.map(label);
        datasets.forEach(function (dataset, index) { chart.data.datasets[index].data = dataset.data; });
        chart.update();
      }
      var values = [].concat.apply([], datasets.map(function (d) { return d.data; }))
        .filter(function (v) { return v !== null; });
      figure.dataset.points = String(values.length);
      figure.dataset.total = String(values.reduce(function (sum, v) { return sum + v; }, 0));
    });
  }

  // polling

  function liveUrl() { return page === "deployment" ? "/d/" + encodeURIComponent(name) + "/live" : "/live"; }

  function poll() {
    fetch(liveUrl(), { credentials: "same-origin" }).then(function (response) {
      if (signedOut(response)) { return null; }
      return response.ok ? response.json() : null;
    }).then(function (live) {
      if (!live) { return; }
      swap(live);
      if (page === "deployment") { showLog(live.log); drawCharts(live.charts); showRollback(live.rollback); }
    }).catch(function () { /* the server restarting: try again on the next tick */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  // actions

  function base() { return "/d/" + encodeURIComponent(name); }

  function lookUp(id) {
    var result = document.getElementById("lookup-result");
    fetch(base() + "/predictions/" + encodeURIComponent(id.trim()), { credentials: "same-origin" })
      .then(function (response) { return signedOut(response) ? "" : response.text(); })
      .then(function (html) { result.innerHTML = html; });
  }

  function wireDeploymentPage() {
    var sent = 0;  // a slow answer (a replica starting) must not overwrite a later send's
    document.getElementById("try").addEventListener("submit", function (event) {
      event.preventDefault();
      var out = document.getElementById("try-response");
      var mine = ++sent;
      out.textContent = "Sending…";
      postJSON(base() + "/try", { body: document.getElementById("try-body").value }).then(function (answer) {
        if (!answer || mine !== sent) { return; }
        var shown = answer.data.status_code !== undefined ? answer.data : { status_code: answer.status, data: answer.data };
        out.textContent = "HTTP " + shown.status_code + "\n" + JSON.stringify(shown.data, null, 1);
        out.dataset.status = String(shown.status_code);
      });
    });
    document.getElementById("lookup").addEventListener("submit", function (event) {
      event.preventDefault();
      lookUp(document.getElementById("lookup-id").value);
    });
    document.addEventListener("click", function (event) {
      var link = event.target.closest("a.lookup");
      if (link) {
        event.preventDefault();
        document.getElementById("lookup-id").value = link.dataset.id;
        lookUp(link.dataset.id);
      }
      var button = event.target.closest("button.rollback");
      if (button && window.confirm("Serve revision " + button.dataset.to + " of " + name + " again?")) {
        postJSON(base() + "/rollback", { to: Number(button.dataset.to) }).then(function (answer) {
          if (answer) { showRollback(answer.status === 202 ? answer.data : { to: button.dataset.to, lines: [answer.data.error], done: true, ok: false }); }
        });
      }
    });
  }

  if (page === "deployment") { wireDeploymentPage(); }
  poll();
})();
