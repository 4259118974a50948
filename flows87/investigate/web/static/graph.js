/* The case's money graph: accounts as circles sized by the money through them, transfers as
 * arrows whose width follows the amount (amount, count and first/last time in the tooltip and,
 * for the largest, a label). Click an account for its details; drag accounts or the background,
 * scroll to zoom. Plain JavaScript and SVG, no library; text is only ever set with textContent.
 * Layout: Fruchterman-Reingold force-directed, seeded from the account ids (same picture on
 * every load). */
/* The case page's table tools (sort, filter, print) are in tables.js, loaded from here so the
 * page keeps one script tag. */
(function () {
  "use strict";
  var own = document.querySelector("script[src^='/static/graph.js']");
  if (document.querySelector(".table-tools, table.sortable") && !window.flows87Tables) {
    var tools = document.createElement("script");
    tools.src = "/static/tables.js" + (own && own.src.indexOf("?") >= 0 ? own.src.slice(own.src.indexOf("?")) : "");
    document.head.appendChild(tools);
  }
})();
(function () {
  "use strict";

  var SVGNS = "http://www.w3.org/2000/svg";
  var W = 1000, H = 640;
  var box = document.getElementById("money-graph");
  if (!box) return;
  var panel = document.getElementById("graph-details");
  var toggle = document.getElementById("graph-counterparties");
  var resetButton = document.getElementById("graph-reset");
  var casesLink = box.getAttribute("data-cases") || "/cases?account=";

  var state = { data: null, svg: null, view: null, home: null, selected: null, nodes: [], edges: [] };

  function el(tag, attrs, parent) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function html(tag, text, parent, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }

  function money(v) {
    if (v === null || v === undefined) return "";
    return Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function shortMoney(v) {
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return v.toFixed(0);
  }

  function when(ts) {
    if (!ts) return "?";
    var d = new Date(ts);
    if (isNaN(d.getTime())) return String(ts);
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function day(ts) {
    var d = new Date(ts);
    if (isNaN(d.getTime())) return "";
    return d.toISOString().slice(5, 10);
  }

  function shortId(id) {
    id = String(id);
    return id.length > 10 ? "…" + id.slice(-8) : id;
  }

  // a small seeded PRNG (mulberry32) so the same case gives the same picture
  function rng(seedText) {
    var h = 1779033703 ^ seedText.length;
    for (var i = 0; i < seedText.length; i++) {
      h = Math.imul(h ^ seedText.charCodeAt(i), 3432918353);
      h = (h << 13) | (h >>> 19);
    }
    var a = h >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) | 0;
      var t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function layout(nodes, edges) {
    var n = nodes.length;
    if (!n) return;
    var random = rng(nodes.map(function (d) { return d.id; }).join("|"));
    var index = {};
    nodes.forEach(function (d, i) { index[d.id] = i; });
    var links = [];
    edges.forEach(function (e) {
      var a = index[e.src], b = index[e.dst];
      if (a !== undefined && b !== undefined && a !== b) links.push([a, b]);
    });
    // start: case accounts on a circle, counterparties near their first case neighbour
    var members = nodes.filter(function (d) { return d.in_case; });
    var r0 = Math.min(W, H) * 0.25;
    members.forEach(function (d, i) {
      var t = (2 * Math.PI * i) / Math.max(1, members.length);
      d.x = W / 2 + r0 * Math.cos(t) + (random() - 0.5) * 10;
      d.y = H / 2 + r0 * Math.sin(t) + (random() - 0.5) * 10;
    });
    var neighbour = {};
    links.forEach(function (l) {
      var a = nodes[l[0]], b = nodes[l[1]];
      if (a.in_case && !b.in_case && !neighbour[b.id]) neighbour[b.id] = a;
      if (b.in_case && !a.in_case && !neighbour[a.id]) neighbour[a.id] = b;
    });
    nodes.forEach(function (d) {
      if (d.in_case) return;
      var near = neighbour[d.id];
      var t = random() * 2 * Math.PI, r = 30 + random() * 60;
      d.x = (near ? near.x : W / 2) + r * Math.cos(t);
      d.y = (near ? near.y : H / 2) + r * Math.sin(t);
    });
    var heavy = nodes.reduce(function (acc, d) { return acc + (d.in_case ? 1 : 0.25); }, 0);
    var k = Math.sqrt((W * H) / Math.max(heavy, 1)) * 0.6;
    var iterations = n > 600 ? 60 : n > 300 ? 120 : 250;
    var temp = W / 8;
    var cool = temp / (iterations + 1);
    var dx = new Float64Array(n), dy = new Float64Array(n);
    for (var it = 0; it < iterations; it++) {
      dx.fill(0);
      dy.fill(0);
      for (var i = 0; i < n; i++) {
        var a = nodes[i];
        for (var j = i + 1; j < n; j++) {
          var b = nodes[j];
          var x = a.x - b.x, y = a.y - b.y;
          var d2 = x * x + y * y;
          if (d2 < 0.01) { x = random() - 0.5; y = random() - 0.5; d2 = 0.5; }
          // repulsion k^2/d along the unit vector (x, y)/d; counterparties outside the case
          // push each other less, so the many one-off payees of a hub stay close to it
          var f = ((k * k) / d2) * (a.in_case ? (b.in_case ? 1 : 0.4) : (b.in_case ? 0.4 : 0.08));
          dx[i] += x * f; dy[i] += y * f;
          dx[j] -= x * f; dy[j] -= y * f;
        }
      }
      for (var m = 0; m < links.length; m++) {
        var s = links[m][0], t2 = links[m][1];
        var u = nodes[s], v = nodes[t2];
        var lx = u.x - v.x, ly = u.y - v.y;
        var dist = Math.sqrt(lx * lx + ly * ly) || 0.01;
        var fa = dist / k; // attraction d^2/k along the unit vector
        dx[s] -= lx * fa; dy[s] -= ly * fa;
        dx[t2] += lx * fa; dy[t2] += ly * fa;
      }
      for (var q = 0; q < n; q++) {
        var p = nodes[q];
        dx[q] += (W / 2 - p.x) * 0.02 * (p.in_case ? 2 : 1); // gravity keeps components together
        dy[q] += (H / 2 - p.y) * 0.02 * (p.in_case ? 2 : 1);
        var len = Math.sqrt(dx[q] * dx[q] + dy[q] * dy[q]) || 1;
        var step = Math.min(len, temp);
        p.x += (dx[q] / len) * step;
        p.y += (dy[q] / len) * step;
      }
      temp = Math.max(temp - cool, 0.5);
    }
  }

  function radius(d, maxFlow) {
    var flow = Math.max(d.flow_in || 0, d.flow_out || 0);
    return 4 + 18 * Math.sqrt(flow / (maxFlow || 1));
  }

  function setView(v) {
    state.view = v;
    state.svg.setAttribute("viewBox", v.x + " " + v.y + " " + v.w + " " + v.h);
  }

  function fit(nodes) {
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    nodes.forEach(function (d) {
      x0 = Math.min(x0, d.x - d.r); y0 = Math.min(y0, d.y - d.r);
      x1 = Math.max(x1, d.x + d.r); y1 = Math.max(y1, d.y + d.r);
    });
    if (!isFinite(x0)) { x0 = 0; y0 = 0; x1 = W; y1 = H; }
    var pad = 40;
    var w = Math.max(x1 - x0 + 2 * pad, 200), h = Math.max(y1 - y0 + 2 * pad, 150);
    // keep the container's aspect ratio
    var ratio = W / H;
    if (w / h < ratio) { var nw = h * ratio; x0 -= (nw - w) / 2; w = nw; } else { var nh = w / ratio; y0 -= (nh - h) / 2; h = nh; }
    return { x: x0 - pad, y: y0 - pad, w: w, h: h };
  }

  function placeEdge(e) {
    var a = e.a, b = e.b;
    var x = b.x - a.x, y = b.y - a.y;
    var d = Math.sqrt(x * x + y * y) || 1;
    var ux = x / d, uy = y / d;
    var x1 = a.x + ux * a.r, y1 = a.y + uy * a.r;
    var gap = 3 * (state.unit || 1);
    var x2 = b.x - ux * (b.r + gap), y2 = b.y - uy * (b.r + gap);
    e.line.setAttribute("x1", x1.toFixed(1));
    e.line.setAttribute("y1", y1.toFixed(1));
    e.line.setAttribute("x2", x2.toFixed(1));
    e.line.setAttribute("y2", y2.toFixed(1));
    if (e.label) {
      e.label.setAttribute("x", ((x1 + x2) / 2).toFixed(1));
      e.label.setAttribute("y", ((y1 + y2) / 2 - 3).toFixed(1));
    }
  }

  function placeNode(d) {
    d.circle.setAttribute("cx", d.x.toFixed(1));
    d.circle.setAttribute("cy", d.y.toFixed(1));
    if (d.label) {
      d.label.setAttribute("x", (d.x + d.r + 3 * (state.unit || 1)).toFixed(1));
      d.label.setAttribute("y", (d.y + 3).toFixed(1));
    }
  }

  function render() {
    var data = state.data;
    var showOutside = !toggle || toggle.checked;
    var nodes = data.nodes
      .filter(function (d) { return showOutside || d.in_case; })
      .map(function (d) { return Object.assign({}, d); });
    var byId = {};
    nodes.forEach(function (d) { byId[d.id] = d; });
    var edges = data.edges
      .filter(function (e) { return byId[e.src] && byId[e.dst]; })
      .map(function (e) { return Object.assign({}, e); });
    layout(nodes, edges);
    var maxFlow = 0, maxAmount = 0;
    nodes.forEach(function (d) { maxFlow = Math.max(maxFlow, d.flow_in || 0, d.flow_out || 0); });
    edges.forEach(function (e) { maxAmount = Math.max(maxAmount, e.amount || 0); });
    // sizes follow the drawing's extent, so a large graph does not shrink to dots
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    nodes.forEach(function (d) { x0 = Math.min(x0, d.x); x1 = Math.max(x1, d.x); y0 = Math.min(y0, d.y); y1 = Math.max(y1, d.y); });
    var unit = nodes.length ? Math.max(0.8, Math.max((x1 - x0) / W, (y1 - y0) / H)) : 1;
    state.unit = unit;
    nodes.forEach(function (d) { d.r = radius(d, maxFlow) * unit; });

    while (box.firstChild) box.removeChild(box.firstChild);
    var svg = el("svg", { id: "graph-svg", role: "img", "aria-label": "money graph", preserveAspectRatio: "xMidYMid meet" }, box);
    state.svg = svg;
    var defs = el("defs", null, svg);
    var marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7 * unit, markerHeight: 7 * unit, markerUnits: "userSpaceOnUse", orient: "auto" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#7b8598" }, marker);
    var markerHot = el("marker", { id: "arrow-hot", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8 * unit, markerHeight: 8 * unit, markerUnits: "userSpaceOnUse", orient: "auto" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#1f5fbf" }, markerHot);
    var world = el("g", { class: "world", "font-size": (11 * unit).toFixed(1) }, svg);
    var gEdges = el("g", { class: "edges" }, world);
    var gLabels = el("g", { class: "edge-labels" }, world);
    var gNodes = el("g", { class: "nodes" }, world);
    var gNames = el("g", { class: "labels" }, world);

    var ranked = edges.slice().sort(function (a, b) { return b.amount - a.amount; });
    var labelled = {};
    ranked.slice(0, Math.min(10, ranked.length)).forEach(function (e) { labelled[e.src + "\u0000" + e.dst] = true; });
    edges.forEach(function (e) {
      e.a = byId[e.src];
      e.b = byId[e.dst];
      var width = (1 + 6 * Math.sqrt((e.amount || 0) / (maxAmount || 1))) * unit;
      e.line = el("line", { class: "edge", "stroke-width": width.toFixed(2), "marker-end": "url(#arrow)" }, gEdges);
      e.line.setAttribute("data-src", e.src);
      e.line.setAttribute("data-dst", e.dst);
      var title = el("title", null, e.line);
      title.textContent = e.src + " → " + e.dst + "\n" + money(e.amount) + " in " + e.count +
        " transfer" + (e.count === 1 ? "" : "s") + "\nfirst " + when(e.first_ts) +
        (e.count > 1 ? "\nlast " + when(e.last_ts) : "");
      if (labelled[e.src + "\u0000" + e.dst]) {
        e.label = el("text", { class: "label edge-label", "text-anchor": "middle" }, gLabels);
        e.label.textContent = shortMoney(e.amount) + " · " + day(e.first_ts) + (e.count > 1 && day(e.last_ts) !== day(e.first_ts) ? "–" + day(e.last_ts) : "");
      }
    });
    nodes.forEach(function (d) {
      var cls = d.in_case ? (d.role === "anchor" || d.role === "central" ? d.role : "member") : "counterparty";
      d.circle = el("circle", { class: "node " + cls, r: d.r.toFixed(1), tabindex: 0 }, gNodes);
      d.circle.setAttribute("data-id", d.id);
      var title = el("title", null, d.circle);
      title.textContent = d.id + (d.name ? " · " + d.name : "") + "\n" + (d.in_case ? d.role : "counterparty outside the case") +
        "\nin " + money(d.flow_in) + " · out " + money(d.flow_out);
      if (d.in_case) {
        d.label = el("text", { class: "label" }, gNames);
        d.label.textContent = shortId(d.id);
      }
      d.circle.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(d); }
      });
      placeNode(d);
    });
    edges.forEach(placeEdge);
    state.nodes = nodes;
    state.edges = edges;
    state.byId = byId;
    state.home = fit(nodes);
    setView(state.home);
    interact(svg);
    box.setAttribute("data-nodes", String(nodes.length));
    box.setAttribute("data-edges", String(edges.length));
    box.setAttribute("data-ready", "1");
    if (state.selected && byId[state.selected]) select(byId[state.selected]);
    else clearSelection();
  }

  function clearSelection() {
    state.selected = null;
    state.nodes.forEach(function (d) {
      d.circle.classList.remove("selected", "dim");
      if (d.label) d.label.classList.remove("dim");
    });
    state.edges.forEach(function (e) {
      e.line.classList.remove("hot", "dim");
      e.line.setAttribute("marker-end", "url(#arrow)");
    });
    if (panel) {
      while (panel.firstChild) panel.removeChild(panel.firstChild);
      html("p", "Click an account to see its details.", panel, "muted");
    }
  }

  function select(d) {
    state.selected = d.id;
    var near = {};
    near[d.id] = true;
    state.edges.forEach(function (e) {
      var on = e.src === d.id || e.dst === d.id;
      if (on) { near[e.src] = true; near[e.dst] = true; }
      e.line.classList.toggle("hot", on);
      e.line.classList.toggle("dim", !on);
      e.line.setAttribute("marker-end", on ? "url(#arrow-hot)" : "url(#arrow)");
    });
    state.nodes.forEach(function (n) {
      n.circle.classList.toggle("selected", n.id === d.id);
      n.circle.classList.toggle("dim", !near[n.id]);
      if (n.label) n.label.classList.toggle("dim", !near[n.id]);
    });
    showDetails(d);
  }

  function showDetails(d) {
    if (!panel) return;
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    var h = html("h3", d.id, panel);
    h.setAttribute("id", "graph-details-title");
    var table = html("table", null, panel, "compact");
    var rows = [
      ["Name", d.name || "—"],
      ["Role", d.in_case ? d.role : "counterparty (outside the case)"],
      ["Kind", d.kind || "—"],
      ["Risk score", d.risk_score === null || d.risk_score === undefined ? "—" : Number(d.risk_score).toFixed(3)],
      ["Money in", money(d.flow_in)],
      ["Money out", money(d.flow_out)]
    ];
    rows.forEach(function (r) {
      var tr = html("tr", null, table);
      html("td", r[0], tr, "muted");
      html("td", r[1], tr);
    });
    function list(title, items, other) {
      if (!items.length) return;
      html("h4", title + " (" + items.length + ")", panel);
      var ul = html("ul", null, panel);
      items.sort(function (a, b) { return b.amount - a.amount; }).slice(0, 25).forEach(function (e) {
        var li = html("li", null, ul);
        var btn = html("button", shortId(other(e)), li, "link-button small-button");
        btn.type = "button";
        btn.title = other(e);
        btn.addEventListener("click", function () { var t = state.byId[other(e)]; if (t) select(t); });
        html("span", " " + money(e.amount) + " · " + e.count + "× · " + when(e.first_ts) + (e.count > 1 ? " – " + when(e.last_ts) : ""), li, "small");
      });
      if (items.length > 25) html("p", "… and " + (items.length - 25) + " more", panel, "muted small");
    }
    list("Money in from", state.edges.filter(function (e) { return e.dst === d.id; }), function (e) { return e.src; });
    list("Money out to", state.edges.filter(function (e) { return e.src === d.id; }), function (e) { return e.dst; });
    var p = html("p", null, panel);
    var a = html("a", "Cases with this account", p);
    a.href = casesLink + encodeURIComponent(d.id);
  }

  function toWorld(svg, clientX, clientY) {
    var rect = svg.getBoundingClientRect();
    var v = state.view;
    // preserveAspectRatio meet: uniform scale, centred
    var scale = Math.min(rect.width / v.w, rect.height / v.h) || 1;
    var ox = (rect.width - v.w * scale) / 2, oy = (rect.height - v.h * scale) / 2;
    return { x: v.x + (clientX - rect.left - ox) / scale, y: v.y + (clientY - rect.top - oy) / scale, scale: scale };
  }

  function interact(svg) {
    var drag = null;
    svg.addEventListener("pointerdown", function (ev) {
      var target = ev.target;
      var id = target && target.getAttribute && target.classList.contains("node") ? target.getAttribute("data-id") : null;
      var p = toWorld(svg, ev.clientX, ev.clientY);
      drag = { node: id ? state.byId[id] : null, x: p.x, y: p.y, cx: ev.clientX, cy: ev.clientY, moved: false, view: Object.assign({}, state.view) };
      if (!drag.node) svg.classList.add("panning");
      svg.setPointerCapture(ev.pointerId);
    });
    svg.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      if (Math.abs(ev.clientX - drag.cx) + Math.abs(ev.clientY - drag.cy) > 3) drag.moved = true;
      if (!drag.moved) return;
      if (drag.node) {
        var p = toWorld(svg, ev.clientX, ev.clientY);
        drag.node.x = p.x;
        drag.node.y = p.y;
        placeNode(drag.node);
        state.edges.forEach(function (e) { if (e.a === drag.node || e.b === drag.node) placeEdge(e); });
      } else {
        var rect = svg.getBoundingClientRect();
        var scale = Math.min(rect.width / drag.view.w, rect.height / drag.view.h) || 1;
        setView({ x: drag.view.x - (ev.clientX - drag.cx) / scale, y: drag.view.y - (ev.clientY - drag.cy) / scale, w: drag.view.w, h: drag.view.h });
      }
    });
    function end(ev) {
      if (!drag) return;
      svg.classList.remove("panning");
      if (!drag.moved) {
        if (drag.node) select(drag.node);
        else clearSelection();
      }
      drag = null;
      try { svg.releasePointerCapture(ev.pointerId); } catch (e) { /* already released */ }
    }
    svg.addEventListener("pointerup", end);
    svg.addEventListener("pointercancel", end);
    svg.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var p = toWorld(svg, ev.clientX, ev.clientY);
      var f = ev.deltaY > 0 ? 1.15 : 1 / 1.15;
      var v = state.view;
      var w = Math.min(Math.max(v.w * f, state.home.w / 20), state.home.w * 8);
      var h = w * (v.h / v.w);
      var g = w / v.w;
      setView({ x: p.x - (p.x - v.x) * g, y: p.y - (p.y - v.y) * g, w: w, h: h });
    }, { passive: false });
  }

  function start(data) {
    state.data = data;
    var outside = data.nodes.filter(function (d) { return !d.in_case; }).length;
    if (toggle && data.nodes.length > 300 && outside > 0) toggle.checked = false;
    if (toggle && outside === 0) toggle.disabled = true;
    render();
    if (toggle) toggle.addEventListener("change", render);
    if (resetButton) resetButton.addEventListener("click", function () { if (state.home) setView(state.home); });
  }

  fetch(box.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.json();
    })
    .then(start)
    .catch(function (err) {
      while (box.firstChild) box.removeChild(box.firstChild);
      html("p", "The graph could not be drawn: " + err.message, box, "flash error");
      box.setAttribute("data-error", "1");
    });
})();
