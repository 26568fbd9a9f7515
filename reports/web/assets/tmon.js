// tmon report pages: draws every chart the page defines (JSON in
// <script type="application/json" class="chart">, see reports/web/charts.go)
// with uPlot, and makes tables sortable. The same code draws the page in a
// browser and in headless chromium for the PDF. When every chart is drawn,
// body gets data-ready="1" (the PDF export and the tests wait for it).
(function () {
  "use strict";
  var charts = {};
  window.tmonCharts = charts;

  function fmtTime(t) {
    var d = new Date(t * 1000);
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function marksPlugin(marks) {
    return {
      hooks: {
        draw: [function (u) {
          if (!marks || !marks.length) return;
          var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
          ctx.save();
          ctx.strokeStyle = "rgba(120,60,160,0.8)";
          ctx.fillStyle = "rgba(120,60,160,0.9)";
          ctx.lineWidth = 1;
          ctx.setLineDash([4, 3]);
          ctx.font = (10 * devicePixelRatio) + "px sans-serif";
          marks.forEach(function (m) {
            var x = Math.round(u.valToPos(m.t, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + h);
            ctx.stroke();
            ctx.fillText(m.label, x + 3, top + 12 * devicePixelRatio);
          });
          ctx.restore();
        }]
      }
    };
  }

  function build(el, def) {
    var width = Math.max(280, el.clientWidth || 600);
    var height = width < 500 ? 220 : 280;
    var series = [{}];
    var data = [def.x];
    var bars = def.kind === "bars";
    def.series.forEach(function (s) {
      var o = { label: s.label, stroke: s.color, width: s.width || 1.5, spanGaps: false };
      if (s.fill) o.fill = s.fill;
      if (bars) o.paths = uPlot.paths.bars({ size: [0.8, 60] });
      if (def.kind === "scatter") {
        o.paths = function () { return null; };
        o.points = { show: true, size: 3, fill: s.color, stroke: s.color };
      }
      series.push(o);
      data.push(s.data);
    });
    if (def.kind === "time" || def.kind === "scatter") {
      series[0] = { label: "time (UTC)", value: function (u, v) { return v == null ? "" : fmtTime(v); } };
    } else {
      series[0] = { label: "bucket", value: function (u, v) { return v == null ? "" : def.xlabels[v]; } };
    }
    var opts = {
      title: def.title,
      width: width, height: height,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      series: series,
      scales: bars ? { x: { time: false }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.05 : 1]; } } } : { x: { time: true } },
      axes: [
        bars ? { values: function (u, vals) { return vals.map(function (v) { return def.xlabels[v] || ""; }); }, rotate: -45, size: 60 } : {},
        { label: def.ylabel, size: 60 }
      ],
      plugins: [marksPlugin(def.marks)],
      legend: { live: true }
    };
    if (def.bands) {
      opts.bands = def.bands.map(function (b) { return { series: [b[0] + 1, b[1] + 1], fill: "rgba(31,119,180,0.08)" }; });
    }
    if (!def.x.length) {
      el.innerHTML = '<p class="empty">No rows in this period.</p>';
      return null;
    }
    return new uPlot(opts, data, el);
  }

  function drawAll() {
    document.querySelectorAll("script.chart").forEach(function (s) {
      var def = JSON.parse(s.textContent);
      var el = document.getElementById("chart-" + def.id);
      if (!el) return;
      charts[def.id] = { def: def, plot: build(el, def) };
    });
    window.addEventListener("resize", function () {
      Object.keys(charts).forEach(function (id) {
        var c = charts[id], el = document.getElementById("chart-" + id);
        if (c.plot && el) c.plot.setSize({ width: Math.max(280, el.clientWidth), height: c.plot.height });
      });
    });
  }

  function sortable() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      var heads = table.querySelectorAll("th");
      heads.forEach(function (th, i) {
        th.addEventListener("click", function () {
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          var dir = th.dataset.dir === "asc" ? -1 : 1;
          heads.forEach(function (h) { delete h.dataset.dir; });
          th.dataset.dir = dir === 1 ? "asc" : "desc";
          rows.sort(function (a, b) {
            var x = a.cells[i].dataset.v, y = b.cells[i].dataset.v;
            var nx = parseFloat(x), ny = parseFloat(y);
            if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
            return dir * String(a.cells[i].textContent).localeCompare(b.cells[i].textContent);
          });
          rows.forEach(function (r) { body.appendChild(r); });
        });
      });
    });
  }

  function start() {
    drawAll();
    sortable();
    document.body.dataset.ready = "1";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
