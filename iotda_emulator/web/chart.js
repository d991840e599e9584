// A small line chart in inline SVG for the console (no library, nothing fetched): one chart per numeric
// property. Every reported value is one <circle> (data-t = epoch seconds, data-v = the value) on a polyline.
"use strict";

(function () {
  var NS = "http://www.w3.org/2000/svg";
  var W = 400, H = 170, LEFT = 48, RIGHT = 12, TOP = 12, BOTTOM = 28;

  function svg(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function label(v) {
    if (Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-3 && v !== 0)) { return v.toExponential(2); }
    return String(Math.round(v * 1000) / 1000);
  }

  function clock(t) {
    var d = new Date(t * 1000);
    function p(n) { return (n < 10 ? "0" : "") + n; }
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  // The SVG for `points` ([[t, v], ...], oldest first), scaled to fill the plot area.
  function lineChart(points, title) {
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "class": "chart-svg" });
    root.appendChild(svg("title", {}, title));
    var ts = points.map(function (p) { return p[0]; });
    var vs = points.map(function (p) { return p[1]; });
    var t0 = Math.min.apply(null, ts), t1 = Math.max.apply(null, ts);
    var v0 = Math.min.apply(null, vs), v1 = Math.max.apply(null, vs);
    if (t1 === t0) { t0 -= 1; t1 += 1; }
    if (v1 === v0) { v0 -= 1; v1 += 1; }
    function x(t) { return LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT); }
    function y(v) { return TOP + (v1 - v) / (v1 - v0) * (H - TOP - BOTTOM); }
    root.appendChild(svg("line", { x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM, "class": "axis" }));
    root.appendChild(svg("line", { x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM, "class": "axis" }));
    root.appendChild(svg("text", { x: LEFT - 4, y: TOP + 4, "text-anchor": "end", "class": "tick" }, label(v1)));
    root.appendChild(svg("text", { x: LEFT - 4, y: H - BOTTOM, "text-anchor": "end", "class": "tick" }, label(v0)));
    root.appendChild(svg("text", { x: LEFT, y: H - 8, "class": "tick" }, clock(t0)));
    root.appendChild(svg("text", { x: W - RIGHT, y: H - 8, "text-anchor": "end", "class": "tick" }, clock(t1)));
    root.appendChild(svg("polyline", { "class": "line", fill: "none",
      points: points.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" ") }));
    points.forEach(function (p) {
      var dot = svg("circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 3, "class": "point",
        "data-t": p[0], "data-v": p[1] });
      dot.appendChild(svg("title", {}, new Date(p[0] * 1000).toISOString() + "  " + p[1]));
      root.appendChild(dot);
    });
    return root;
  }

  // Replace the content of `container` with one chart per series ({service_id, property, points}).
  function draw(container, series) {
    while (container.firstChild) { container.removeChild(container.firstChild); }
    series.forEach(function (s) {
      var name = s.service_id + " / " + s.property;
      var last = s.points.length ? s.points[s.points.length - 1][1] : "";
      var box = document.createElement("figure");
      box.className = "chart";
      box.setAttribute("data-service-id", s.service_id);
      box.setAttribute("data-property", s.property);
      box.setAttribute("data-points", String(s.points.length));
      var caption = document.createElement("figcaption");
      caption.textContent = name + " - " + s.points.length + " point(s), last " + last;
      box.appendChild(caption);
      box.appendChild(lineChart(s.points, name));
      container.appendChild(box);
    });
  }

  window.ConsoleChart = { draw: draw };
}());
