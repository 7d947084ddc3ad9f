// Koers web app: the as-of slider, the charts, and nothing inline.
// Chart data comes from a JSON endpoint of this origin (data-src) or a
// data attribute (data-series); the Content-Security-Policy allows no
// inline script.
(function () {
  "use strict";

  var DAY = 86400000;

  function parseDate(s) {
    var t = Date.parse(s + "T00:00:00Z");
    return isNaN(t) ? null : t;
  }
  function formatDate(t) {
    return new Date(t).toISOString().slice(0, 10);
  }

  // A range input that moves a date input by days.
  function initSliders(root) {
    root.querySelectorAll("input[data-date-slider]").forEach(function (slider) {
      if (slider.dataset.ready) return;
      slider.dataset.ready = "true";
      var target = document.getElementById(slider.dataset.for);
      var min = parseDate(slider.dataset.min), max = parseDate(slider.dataset.max);
      if (!target || min === null || max === null || max <= min) return;
      slider.min = "0";
      slider.max = String(Math.round((max - min) / DAY));
      slider.step = "1";
      var current = parseDate(target.value) || Date.now();
      slider.value = String(Math.round((Math.min(Math.max(current, min), max) - min) / DAY));
      var sync = function () {
        var v = formatDate(min + Number(slider.value) * DAY);
        target.value = v;
        slider.setAttribute("aria-valuetext", v);
      };
      slider.addEventListener("input", sync);
      slider.addEventListener("keydown", function (e) {
        if (e.key === "PageUp" || e.key === "PageDown") {
          e.preventDefault();
          slider.value = String(Number(slider.value) + (e.key === "PageUp" ? 30 : -30));
          sync();
          slider.dispatchEvent(new Event("change", { bubbles: true }));
        }
      });
      target.addEventListener("change", function () {
        var t = parseDate(target.value);
        if (t !== null) slider.value = String(Math.round((t - min) / DAY));
      });
      if (target.value) slider.setAttribute("aria-valuetext", target.value);
    });
  }

  var palette = ["#1d4e89", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d6a9f", "#2e4057", "#c05746"];

  function sankey(el, data) {
    var chart = echarts.init(el, null, { renderer: "canvas" });
    var urls = {};
    data.nodes.forEach(function (n) { urls[n.name] = n.url || ""; });
    chart.setOption({
      color: palette,
      animation: false,
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          if (p.dataType === "edge") {
            return p.data.source.replace(/ \(.*\)$/, "") + " → " + p.data.target.replace(/ \(.*\)$/, "") + ": " + p.data.amount + " " + data.currency;
          }
          return p.name;
        }
      },
      series: [{
        type: "sankey",
        left: 8, right: 160, top: 8, bottom: 8,
        nodeAlign: "left",
        emphasis: { focus: "adjacency" },
        lineStyle: { color: "gradient", opacity: 0.35 },
        label: { color: "#1a1a1a", formatter: function (p) { return p.name.replace(/ \(.*\)$/, ""); } },
        data: data.nodes.map(function (n) { return { name: n.name, depth: n.depth, account: n.account }; }),
        links: data.links.map(function (l) { return { source: l.source, target: l.target, value: l.value, minor: l.minor, amount: l.amount }; })
      }]
    });
    chart.on("click", function (p) {
      if (p.dataType === "node" && urls[p.name]) window.location.assign(urls[p.name]);
    });
    el.dataset.total = String(data.total_minor);
    return chart;
  }

  function shares(el, s) {
    var chart = echarts.init(el);
    chart.setOption({
      color: palette, animation: false,
      tooltip: { trigger: "axis", valueFormatter: function (v) { return Math.round(v * 100) + "%"; } },
      legend: { top: 0 },
      grid: { left: 48, right: 16, top: 40, bottom: 32 },
      xAxis: { type: "category", data: s.quarters },
      yAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: function (v) { return Math.round(v * 100) + "%"; } } },
      series: [
        { name: "Funding on products", type: "line", data: s.product_share },
        { name: "Ownership coverage", type: "line", data: s.ownership_coverage },
        { name: "Team stability", type: "line", data: s.team_stability }
      ]
    });
    return chart;
  }

  function counts(el, s) {
    var chart = echarts.init(el);
    chart.setOption({
      color: palette, animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: 56, top: 40, bottom: 32 },
      xAxis: { type: "category", data: s.quarters },
      yAxis: [{ type: "value", name: "count" }, { type: "value", name: "days" }],
      series: [
        { name: "Active products", type: "bar", data: s.active_products },
        { name: "Projects converted", type: "bar", data: s.projects_converted },
        { name: "Median tenure (days)", type: "line", yAxisIndex: 1, data: s.median_tenure_days }
      ]
    });
    return chart;
  }

  var charts = [];

  function initCharts(root) {
    if (typeof echarts === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.ready) return;
      el.dataset.ready = "loading";
      var kind = el.dataset.chart;
      var done = function (chart) {
        charts.push(chart);
        el.dataset.ready = "true";
      };
      var failed = function (why) {
        el.dataset.ready = "failed";
        el.textContent = "The chart could not be drawn: " + why;
      };
      if (kind === "sankey") {
        fetch(el.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { if (!r.ok) throw new Error(r.status + " " + r.statusText); return r.json(); })
          .then(function (data) { done(sankey(el, data)); })
          .catch(function (e) { failed(e.message); });
        return;
      }
      try {
        var s = JSON.parse(el.dataset.series);
        done(kind === "shares" ? shares(el, s) : counts(el, s));
      } catch (e) {
        failed(e.message);
      }
    });
  }

  function init(root) {
    initSliders(root);
    initCharts(root);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (e) { init(e.target || document); });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
