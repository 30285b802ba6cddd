/* The interactive DQM page: table filters and sorting, plotly plots with the reference run, history trends.
 * The data come from <script id="dqm-data" type="application/json">; plotly.min.js is loaded before this file.
 * window.dqm.ready is true once the table is set up; each plot div gets data-rendered="true" once drawn. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("dqm-data").textContent);
  var RANK = { none: 0, pass: 1, warn: 2, fail: 3 };
  var GREY = "rgba(110,119,129,0.55)";
  var COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  var CONFIG = { displaylogo: false, responsive: true, scrollZoom: false };

  function $(id) { return document.getElementById(id); }
  function fmt(value) {
    if (value === null || value === undefined) { return "n/a"; }
    return Math.abs(value) >= 1e4 || (Math.abs(value) < 1e-3 && value !== 0) ? value.toExponential(3) : String(+value.toPrecision(5));
  }

  /* ---- table: filters and sorting ---- */
  var table = $("me-table");
  var tbody = table.tBodies[0];
  var allRows = Array.prototype.slice.call(tbody.rows);
  var filters = { status: $("filter-status"), amp: $("filter-amp"), image: $("filter-image"), me: $("filter-me") };

  function matches(el, keys) {
    var status = filters.status.value, amp = filters.amp.value, image = filters.image.value;
    var name = filters.me.value.trim().toLowerCase();
    return (!status || el.dataset.status === status) && (!amp || el.dataset.amp === amp) &&
      (!keys.image || !image || el.dataset.image === image) &&
      (!name || el.dataset.me.toLowerCase().indexOf(name) >= 0);
  }

  function applyFilters() {
    var shown = 0;
    allRows.forEach(function (tr) {
      var ok = matches(tr, { image: true });
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    table.dataset.shown = String(shown);
    $("me-count").textContent = shown + " of " + allRows.length + " rows";
    // the plot cards follow the status, amplifier and name filters (a card covers all images)
    document.querySelectorAll("#plots article.me").forEach(function (card) { card.hidden = !matches(card, {}); });
  }

  function sortKey(tr, key, type) {
    var text = tr.dataset[key];
    if (type === "status") { return RANK[text]; }
    if (type === "number") {
      if (text === "run") { return Infinity; }
      var number = parseFloat(text);
      return isNaN(number) ? null : number;
    }
    return text.toLowerCase();
  }

  function sortBy(th) {
    var key = th.dataset.key, type = th.dataset.type;
    var direction = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction);
    var sign = direction === "ascending" ? 1 : -1;
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var ka = sortKey(a, key, type), kb = sortKey(b, key, type);
      if (ka === kb) { return 0; }
      if (ka === null) { return 1; }  // no value: last in both directions
      if (kb === null) { return -1; }
      return (ka < kb ? -1 : 1) * sign;
    });
    rows.forEach(function (tr) { tbody.appendChild(tr); });
    table.dataset.sortKey = key;
    table.dataset.sortDirection = direction;
  }

  Object.keys(filters).forEach(function (name) {
    filters[name].addEventListener(name === "me" ? "input" : "change", applyFilters);
  });
  table.querySelectorAll("thead th[data-key]").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
  });
  applyFilters();

  /* ---- plots ---- */
  function axisTitle(label, unit) { return unit && label.indexOf(unit) < 0 ? label + " [" + unit + "]" : label; }

  function scalarTraces(plot) {
    var traces = [];
    var ref = plot.reference || [];
    if (ref.length) {
      var values = ref.map(function (p) { return p[1]; });
      var mean = values.reduce(function (s, v) { return s + v; }, 0) / values.length;
      var sd = Math.sqrt(values.reduce(function (s, v) { return s + (v - mean) * (v - mean); }, 0) / Math.max(1, values.length - 1));
      var xs = plot.points.map(function (p) { return p[0]; }).concat(ref.map(function (p) { return p[0]; }));
      var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
      traces.push({ x: [lo, hi, hi, lo], y: [mean - sd, mean - sd, mean + sd, mean + sd], fill: "toself", mode: "none",
        fillcolor: "rgba(110,119,129,0.15)", name: "reference mean \u00b1 sd", hoverinfo: "skip" });
      traces.push({ x: ref.map(function (p) { return p[0]; }), y: values, mode: "markers", name: "reference run " + plot.reference_run,
        marker: { color: GREY, symbol: "circle-open", size: 8 },
        customdata: ref.map(function (p) { return [plot.reference_run, p[0], "reference run " + plot.reference_run + ", image " + p[0]]; }),
        hovertemplate: "reference run %{customdata[0]}, image %{customdata[1]}<br>%{y}<extra></extra>" });
    }
    traces.push({ x: plot.points.map(function (p) { return p[0]; }), y: plot.points.map(function (p) { return p[1]; }),
      error_y: { type: "data", array: plot.points.map(function (p) { return p[2] || 0; }), visible: true },
      mode: "markers+lines", name: "run " + data.run, marker: { color: COLOURS[0], size: 7 },
      customdata: plot.points.map(function (p) { return [data.run, p[0], p[3], "run " + data.run + ", image " + p[0]]; }),
      hovertemplate: "run %{customdata[0]}, image %{customdata[1]} (%{customdata[2]})<br>%{y}<extra></extra>" });
    return traces;
  }

  function curveTraces(plot) {
    var traces = (plot.reference || []).map(function (c, i) {
      return { x: c.x, y: c.y, mode: "lines", line: { color: GREY, width: 1, dash: "dot" },
        name: "reference run " + plot.reference_run, legendgroup: "reference", showlegend: i === 0,
        customdata: c.x.map(function () { return [plot.reference_run, c.image, "reference run " + plot.reference_run + ", image " + c.image]; }),
        hovertemplate: "reference run %{customdata[0]}, image %{customdata[1]}<br>(%{x}, %{y})<extra></extra>" };
    });
    plot.curves.forEach(function (c, i) {
      traces.push({ x: c.x, y: c.y, mode: "lines", name: "image " + c.image, line: { color: COLOURS[i % COLOURS.length], width: 1.5 },
        error_y: c.yerr ? { type: "data", array: c.yerr, visible: true, thickness: 0.5 } : undefined,
        customdata: c.x.map(function () { return [data.run, c.image, "run " + data.run + ", image " + c.image]; }),
        hovertemplate: "run %{customdata[0]}, image %{customdata[1]}<br>(%{x}, %{y})<extra></extra>" });
    });
    return traces;
  }

  function historyTraces(trend) {
    var traces = [];
    Object.keys(trend.amps).forEach(function (amp, i) {
      var series = trend.amps[amp], colour = COLOURS[i % COLOURS.length];
      if (series.points.length) {
        traces.push({ x: series.points.map(function (p) { return p[0]; }), y: series.points.map(function (p) { return p[2]; }),
          mode: "markers", name: "amplifier " + amp + " images", marker: { color: colour, size: 5, opacity: 0.35 },
          customdata: series.points.map(function (p) { return [p[0], p[1], amp, "run " + p[0] + ", image " + p[1] + ", amplifier " + amp]; }),
          hovertemplate: "run %{customdata[0]}, image %{customdata[1]}, amplifier %{customdata[2]}<br>%{y}<extra></extra>" });
      }
      traces.push({ x: series.means.map(function (m) { return m[0]; }), y: series.means.map(function (m) { return m[1]; }),
        error_y: { type: "data", array: series.means.map(function (m) { return m[2] || 0; }), visible: true },
        mode: "markers+lines", name: "amplifier " + amp + (series.points.length ? " run mean" : ""),
        marker: { color: colour, size: 8 }, line: { color: colour },
        customdata: series.means.map(function (m) { return [m[0], m[3], amp, "run " + m[0] + ", amplifier " + amp + ", mean of " + m[3] + " image(s)"]; }),
        hovertemplate: "run %{customdata[0]}, amplifier %{customdata[2]}: %{y} (%{customdata[1]} image(s))<extra></extra>" });
    });
    return traces;
  }

  function layout(xtitle, ytitle, extra) {
    var out = { margin: { l: 60, r: 10, t: 32, b: 50 }, hovermode: "closest", legend: { orientation: "h", y: -0.3 },
      xaxis: { title: { text: xtitle }, zeroline: false, automargin: true },
      yaxis: { title: { text: ytitle }, zeroline: false, exponentformat: "power", automargin: true } };
    Object.keys(extra || {}).forEach(function (k) { out[k] = extra[k]; });
    return out;
  }

  function describe(point) {
    // the last item of every point's customdata says where it comes from ("run 3, image 2", ...)
    var c = point.customdata || [];
    return c[c.length - 1] + ": x = " + fmt(point.x) + ", y = " + fmt(point.y);
  }

  function wire(div) {
    var info = div.parentNode.querySelector(".info");
    div.on("plotly_hover", function (event) {
      var text = describe(event.points[0]);
      info.textContent = text;
      div.dataset.hover = text;
    });
    div.on("plotly_relayout", function (event) {
      var range = div.layout.xaxis.range;
      if (event["xaxis.autorange"]) { info.textContent = "zoom reset"; div.dataset.xrange = ""; return; }
      if (range) {
        div.dataset.xrange = JSON.stringify(range);
        info.textContent = "zoomed: x from " + fmt(range[0]) + " to " + fmt(range[1]);
      }
    });
    div.dataset.rendered = "true";
  }

  function draw(div) {
    if (div.dataset.rendered || div.dataset.drawing) { return Promise.resolve(div); }
    div.dataset.drawing = "true";
    var traces, lay;
    if (div.dataset.plot !== undefined) {
      var plot = data.plots[+div.dataset.plot];
      var scalar = plot.kind === "scalar";
      traces = scalar ? scalarTraces(plot) : curveTraces(plot);
      lay = layout(scalar ? "image" : plot.xlabel || "x", scalar ? axisTitle(plot.me, plot.unit) : plot.ylabel || axisTitle(plot.me, plot.unit));
    } else {
      var trend = data.history.trends[+div.dataset.trend];
      traces = historyTraces(trend);
      var shapes = data.history.current === null ? [] : [{ type: "line", x0: data.history.current, x1: data.history.current,
        yref: "paper", y0: 0, y1: 1, line: { color: "#888", dash: "dash", width: 1 } }];
      lay = layout("run", axisTitle(trend.label, trend.unit), { shapes: shapes });
      lay.xaxis.tickformat = "d";
    }
    return Plotly.newPlot(div, traces, lay, CONFIG).then(function () { wire(div); return div; });
  }

  var divs = Array.prototype.slice.call(document.querySelectorAll("div.plot"));
  window.dqm = { data: data, draw: draw, applyFilters: applyFilters, sortBy: sortBy, ready: true };
  // draw the plots as they come into view (a run has a hundred or more of them)
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { observer.unobserve(entry.target); draw(entry.target); }
      });
    }, { rootMargin: "300px" });
    divs.forEach(function (div) { observer.observe(div); });
  } else {
    divs.forEach(draw);
  }
})();
