/* The case's money graph: accounts as circles sized by the money through them and named where the
 * store knows the name (the full id on hover), transfers as arrows whose width follows the amount,
 * labelled with amount, currency and dates. The server draws at most a fixed number of accounts
 * and folds the rest into "+N others" nodes (senders left, receivers right). A time slider shows
 * the flows within a period; a click shows an account's details, and its "draw counterparties"
 * button (or a double click) adds its counterparties from every transaction the store holds.
 * Drag accounts or the background, scroll or +/- to zoom; SVG and PNG downloads.
 * Plain JavaScript and SVG, no library, no inline script or style (the CSP); text is only ever
 * set with textContent. The layout (force-directed, seeded from the account ids) is in
 * graph-layout.js. */
/* The case page's table tools (sort, filter, print) are in tables.js, loaded from here so the
 * page keeps one script tag; so are the graph's layout and export (graph-layout.js,
 * graph-export.js; their tags are removed once they have run, the page lists its own scripts). */
(function () {
  "use strict";
  var own = document.querySelector("script[src^='/static/graph.js']");
  var query = own && own.src.indexOf("?") >= 0 ? own.src.slice(own.src.indexOf("?")) : "";
  function load(name, then) {
    var tag = document.createElement("script");
    tag.src = "/static/" + name + query;
    if (then) tag.addEventListener("load", function () { tag.remove(); then(); });
    document.head.appendChild(tag);
  }
  if (document.querySelector(".table-tools, table.sortable") && !window.flows87Tables) load("tables.js");
  var graphBox = document.getElementById("money-graph");
  if (graphBox) { // the data and both parts at once; draw when all three are in
    var limitBox = document.getElementById("graph-limit");
    var early = getJSON(graphBox.getAttribute("data-src") + (limitBox ? "?limit=" + encodeURIComponent(limitBox.value) : ""));
    var pending = 2;
    var ready = function () { if (--pending === 0) main(early); };
    load("graph-layout.js", ready);
    load("graph-export.js", ready);
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("the server answered " + r.status); return r.json(); });
  }

  function main(early) {
    var SVGNS = "http://www.w3.org/2000/svg";
    var L = window.flows87GraphLayout, X = window.flows87GraphExport;
    var W = L.W, H = L.H;
    var box = document.getElementById("money-graph");
    var panel = document.getElementById("graph-details");
    var toggle = document.getElementById("graph-counterparties");
    var status = document.getElementById("graph-status");
    var fromInput = document.getElementById("graph-from");
    var toInput = document.getElementById("graph-to");
    var period = document.getElementById("graph-period");
    var limitSelect = document.getElementById("graph-limit");
    var caseId = box.getAttribute("data-case") || "case";
    var src = box.getAttribute("data-src");

    var state = { data: null, pos: {}, svg: null, view: null, home: null, selected: null,
                  nodes: [], edges: [], byId: {}, times: [], from: -Infinity, to: Infinity };

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
    function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
    function money(v) {
      return Number(v || 0).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    function shortMoney(v) {
      var a = Math.abs(v);
      if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
      if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
      return v.toFixed(0);
    }
    function iso(ts) {
      var d = new Date(ts);
      return isNaN(d.getTime()) ? "" : d.toISOString();
    }
    function when(ts) { return ts === null || ts === undefined ? "?" : iso(ts).slice(0, 16).replace("T", " ") + " UTC"; }
    function day(ts) { return iso(ts).slice(0, 10); }
    function shortId(id) { id = String(id); return id.length > 12 ? "…" + id.slice(-9) : id; }
    function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }
    function label(d) { return d.aggregate ? d.name : clip(d.name || shortId(d.id), 22); }
    function who(d) { return d ? (d.aggregate ? d.name : (d.name ? d.name + " (" + d.id + ")" : d.id)) : "?"; }
    function inPeriod(t) { return t[0] >= state.from && t[0] <= state.to; }

    // the part of an edge inside the period: amount, count, first and last time
    function within(e) {
      var txns = (e.txns || []).filter(inPeriod);
      if (state.from === -Infinity && state.to === Infinity && !(e.txns || []).length) {
        return { amount: e.amount, count: e.count, first: e.first_ts, last: e.last_ts };
      }
      var amount = txns.reduce(function (s, t) { return s + t[1]; }, 0);
      return { amount: amount, count: txns.length, first: txns.length ? txns[0][0] : null,
               last: txns.length ? txns[txns.length - 1][0] : null };
    }
    function currencyText(e, w) {
      var cs = Object.keys(e.currencies || {});
      var base = state.data.base_currency;
      if (cs.length === 1 && w.count === e.count) return shortMoney(e.currencies[cs[0]]) + " " + cs[0];
      return shortMoney(w.amount) + " " + (base || "(base)");
    }
    function edgeTitle(e, w) {
      var lines = [who(state.byId[e.src]) + " → " + who(state.byId[e.dst])];
      var base = state.data.base_currency || "in the base currency";
      lines.push(money(w.amount) + " " + base + " in " + w.count + " transfer" + (w.count === 1 ? "" : "s") +
        (w.count < e.count ? " (of " + e.count + " in all)" : ""));
      var cs = Object.keys(e.currencies || {});
      if (cs.length) lines.push("currencies: " + cs.map(function (c) { return money(e.currencies[c]) + " " + c; }).join(", "));
      lines.push("first " + when(w.first) + (w.count > 1 ? "\nlast " + when(w.last) : ""));
      if (e.store) lines.push("from the store (" + (e.outside_case || 0) + " outside this case)");
      return lines.join("\n");
    }
    function edgeLabel(e, w) {
      var a = day(w.first), b = day(w.last);
      return currencyText(e, w) + " · " + a + (b && b !== a ? " – " + b.slice(a.slice(0, 4) === b.slice(0, 4) ? 5 : 0) : "");
    }

    function radius(d, maxFlow) {
      var flow = Math.max(d.flow_in || 0, d.flow_out || 0);
      return Math.min(4 + 18 * Math.sqrt(flow / (maxFlow || 1)), d.aggregate ? 16 : 22);
    }

    function setView(v) {
      state.view = v;
      state.svg.setAttribute("viewBox", v.x + " " + v.y + " " + v.w + " " + v.h);
    }

    // the whole drawing (labels included) with a margin, in the box's aspect ratio
    function fit(world) {
      var b = world.getBBox();
      var pad = 20 * (state.unit || 1);
      var x0 = b.x - pad, y0 = b.y - pad, w = Math.max(b.width + 2 * pad, 200), h = Math.max(b.height + 2 * pad, 150);
      var rect = state.svg.getBoundingClientRect();
      var ratio = rect.width && rect.height ? rect.width / rect.height : W / H;
      if (w / h < ratio) { var nw = h * ratio; x0 -= (nw - w) / 2; w = nw; } else { var nh = w / ratio; y0 -= (nh - h) / 2; h = nh; }
      return { x: x0, y: y0, w: w, h: h };
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
      d.label.setAttribute("x", (d.x + d.r + 3 * (state.unit || 1)).toFixed(1));
      d.label.setAttribute("y", (d.y + 3.5 * (state.unit || 1)).toFixed(1));
      state.pos[d.id] = { x: d.x, y: d.y };
    }
    function nodeClass(d) {
      if (d.aggregate) return "others";
      if (d.in_case) return d.role === "anchor" || d.role === "central" ? d.role : "member";
      return "counterparty";
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
      L.place(nodes, edges, state.pos);
      var maxFlow = 0, maxAmount = 0;
      nodes.forEach(function (d) { if (!d.aggregate) maxFlow = Math.max(maxFlow, d.flow_in || 0, d.flow_out || 0); });
      edges.forEach(function (e) { maxAmount = Math.max(maxAmount, e.amount || 0); });
      // sizes follow the drawing's extent, so a large graph does not shrink to dots
      var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      nodes.forEach(function (d) { x0 = Math.min(x0, d.x); x1 = Math.max(x1, d.x); y0 = Math.min(y0, d.y); y1 = Math.max(y1, d.y); });
      var unit = nodes.length ? Math.max(0.8, Math.max((x1 - x0) / W, (y1 - y0) / H)) : 1;
      state.unit = unit;
      nodes.forEach(function (d) { d.r = radius(d, maxFlow) * unit; });

      clear(box);
      var svg = el("svg", { id: "graph-svg", role: "img", "aria-label": "money graph", preserveAspectRatio: "xMidYMid meet" }, box);
      state.svg = svg;
      var defs = el("defs", null, svg);
      [["arrow", "#7b8598"], ["arrow-hot", "#1f5fbf"]].forEach(function (m) {
        var marker = el("marker", { id: m[0], viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7 * unit, markerHeight: 7 * unit, markerUnits: "userSpaceOnUse", orient: "auto" }, defs);
        el("path", { d: "M0,0 L10,5 L0,10 z", fill: m[1] }, marker);
      });
      var world = el("g", { class: "world", "font-size": (11 * unit).toFixed(1) }, svg);
      var gEdges = el("g", { class: "edges" }, world);
      var gLabels = el("g", { class: "edge-labels" }, world);
      var gNodes = el("g", { class: "nodes" }, world);
      var gNames = el("g", { class: "labels" }, world);

      var ranked = edges.slice().sort(function (a, b) { return b.amount - a.amount; });
      var labelled = {};
      ranked.slice(0, Math.min(12, ranked.length)).forEach(function (e) { labelled[e.src + "\u0000" + e.dst] = true; });
      edges.forEach(function (e) {
        e.a = byId[e.src];
        e.b = byId[e.dst];
        var width = (1 + 6 * Math.sqrt((e.amount || 0) / (maxAmount || 1))) * unit;
        e.line = el("line", { class: "edge" + (e.store ? " store" : ""), "stroke-width": width.toFixed(2), "marker-end": "url(#arrow)" }, gEdges);
        e.line.setAttribute("data-src", e.src);
        e.line.setAttribute("data-dst", e.dst);
        e.title = el("title", null, e.line);
        if (labelled[e.src + "\u0000" + e.dst]) e.label = el("text", { class: "label edge-label", "text-anchor": "middle" }, gLabels);
      });
      nodes.forEach(function (d) {
        d.circle = el("circle", { class: "node " + nodeClass(d), r: d.r.toFixed(1), tabindex: 0 }, gNodes);
        d.circle.setAttribute("data-id", d.id);
        if (d.expanded) d.circle.classList.add("expanded");
        var title = el("title", null, d.circle);
        title.textContent = d.aggregate
          ? d.name + " " + (d.side === "in" ? "sending into" : "receiving from") + " the drawn accounts (click for the list)\nin " + money(d.flow_in) + " · out " + money(d.flow_out)
          : d.id + (d.name ? "\n" + d.name : "") + "\n" + (d.in_case ? d.role : "counterparty outside the case") + "\nin " + money(d.flow_in) + " · out " + money(d.flow_out);
        d.label = el("text", { class: "label node-label" + (d.in_case || d.aggregate ? " strong" : "") }, gNames);
        d.label.setAttribute("data-id", d.id);
        d.label.textContent = label(d);
        d.circle.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(d); }
        });
        d.circle.addEventListener("dblclick", function (ev) { ev.preventDefault(); select(d); expand(d); });
        placeNode(d);
      });
      edges.forEach(placeEdge);
      state.nodes = nodes;
      state.edges = edges;
      state.byId = byId;
      applyPeriod();
      // labels about 10.5 px on screen, whatever the drawing's extent; then the whole fits again
      var rect = svg.getBoundingClientRect(), first = fit(world);
      var scale = rect.width ? Math.min(rect.width / first.w, rect.height / first.h) : 1;
      world.setAttribute("font-size", Math.max(11 * unit, 10.5 / scale).toFixed(1));
      state.home = fit(world);
      setView(state.home);
      interact(svg);
      box.setAttribute("data-nodes", String(nodes.length));
      box.setAttribute("data-edges", String(edges.length));
      box.setAttribute("data-ready", "1");
      showStatus();
      if (state.selected && byId[state.selected]) select(byId[state.selected]);
      else clearSelection();
    }

    function showStatus() {
      if (!status) return;
      var s = state.data.summary || {};
      var extra = state.data.nodes.filter(function (d) { return d.added; }).length;
      var text = "Drawn: " + s.drawn + " of " + s.accounts + " accounts";
      if (s.hidden) text += " (the case's own first, then the counterparties that moved most money); " + s.hidden + " more in the “+N others” nodes";
      if (extra) text += ", " + extra + " added from the store";
      status.textContent = text + " · " + s.transactions + " transfers.";
    }

    // the time slider: edges with no transfer in the period are hidden, their accounts faded
    function applyPeriod() {
      var active = {};
      state.edges.forEach(function (e) {
        var w = within(e);
        var on = w.count > 0;
        e.line.classList.toggle("off-period", !on);
        if (e.label) { e.label.classList.toggle("off-period", !on); e.label.textContent = on ? edgeLabel(e, w) : ""; }
        e.title.textContent = edgeTitle(e, w);
        e.line.setAttribute("data-first", w.first === null ? "" : iso(w.first));
        if (on) { active[e.src] = true; active[e.dst] = true; }
      });
      state.nodes.forEach(function (d) {
        var idle = !active[d.id] && state.edges.length > 0;
        d.circle.classList.toggle("idle", idle);
        d.label.classList.toggle("idle", idle);
      });
      box.setAttribute("data-visible-edges", String(state.edges.filter(function (e) { return !e.line.classList.contains("off-period"); }).length));
    }

    function setupSlider() {
      var all = [];
      state.data.edges.forEach(function (e) { (e.txns || []).forEach(function (t) { all.push(t[0]); }); });
      all.sort(function (a, b) { return a - b; });
      var times = all.filter(function (t, i) { return i === 0 || t !== all[i - 1]; });
      if (times.length > 400) { // at most 400 stops, the last always kept
        var step = times.length / 400;
        times = times.filter(function (t, i) { return Math.floor(i / step) !== Math.floor((i - 1) / step) || i === times.length - 1; });
      }
      state.times = times;
      if (!fromInput || !toInput) return;
      var wrap = document.getElementById("graph-time");
      if (times.length < 2) { if (wrap) wrap.hidden = true; return; }
      [fromInput, toInput].forEach(function (input) { input.min = "0"; input.max = String(times.length - 1); input.disabled = false; });
      fromInput.value = "0";
      toInput.value = String(times.length - 1);
      function changed(ev) {
        var a = Number(fromInput.value), b = Number(toInput.value);
        if (a > b) { if (ev && ev.target === fromInput) toInput.value = String(a); else fromInput.value = String(b); }
        readSlider();
        applyPeriod();
        if (state.selected && state.byId[state.selected]) showDetails(state.byId[state.selected]);
      }
      fromInput.addEventListener("input", changed);
      toInput.addEventListener("input", changed);
      readSlider();
    }
    function readSlider() {
      var t = state.times, a = Number(fromInput.value), b = Number(toInput.value);
      var full = a === 0 && b === t.length - 1;
      state.from = full ? -Infinity : t[a];
      state.to = full ? Infinity : t[b];
      var n = 0, total = 0;
      state.data.edges.forEach(function (e) { (e.txns || []).forEach(function (x) { total++; if (inPeriod(x)) n++; }); });
      if (period) period.textContent = when(t[a]) + " – " + when(t[b]) + " · " + n + " of " + total + " transfers";
    }

    function clearSelection() {
      state.selected = null;
      state.nodes.forEach(function (d) { d.circle.classList.remove("selected", "dim"); d.label.classList.remove("dim"); });
      state.edges.forEach(function (e) { e.line.classList.remove("hot", "dim"); e.line.setAttribute("marker-end", "url(#arrow)"); });
      if (panel) { clear(panel); html("p", "Click an account to see its details.", panel, "muted"); }
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
        n.label.classList.toggle("dim", !near[n.id]);
      });
      showDetails(d);
    }

    function accountLink(parent, id, text, known) {
      if (!known) return html("span", text, parent);
      var a = html("a", text, parent);
      a.href = "/accounts/" + encodeURIComponent(id);
      a.title = id;
      return a;
    }

    function showDetails(d) {
      if (!panel) return;
      clear(panel);
      var h = html("h3", d.aggregate ? d.name : d.id, panel);
      h.setAttribute("id", "graph-details-title");
      if (d.aggregate) return showOthers(d);
      var table = html("table", null, panel, "compact");
      [["Name", d.name || "—"], ["Role", d.in_case ? d.role : "counterparty (outside the case)"], ["Kind", d.kind || "—"],
       ["Risk score", d.risk_score === null || d.risk_score === undefined ? "—" : Number(d.risk_score).toFixed(3)],
       ["Money in", money(d.flow_in)], ["Money out", money(d.flow_out)]].forEach(function (r) {
        var tr = html("tr", null, table);
        html("td", r[0], tr, "muted");
        html("td", r[1], tr);
      });
      var tools = html("p", null, panel, "graph-node-tools");
      var btn = html("button", d.expanded ? "Counterparties drawn" : "Draw its counterparties from the store", tools, "small-button");
      btn.type = "button";
      btn.id = "graph-expand";
      btn.disabled = !!d.expanded;
      btn.addEventListener("click", function () { expand(d); });
      html("br", null, tools);
      accountLink(tools, d.id, "Account page", d.in_case || d.name);
      html("span", " · ", tools);
      var a = html("a", "Cases with this account", tools);
      a.href = "/cases?account=" + encodeURIComponent(d.id);
      function list(title, items, other) {
        items = items.map(function (e) { return { e: e, w: within(e) }; }).filter(function (x) { return x.w.count > 0; });
        if (!items.length) return;
        html("h4", title + " (" + items.length + ")", panel);
        var ul = html("ul", null, panel);
        items.sort(function (a, b) { return b.w.amount - a.w.amount; }).slice(0, 25).forEach(function (x) {
          var li = html("li", null, ul);
          var t = state.byId[other(x.e)];
          var b = html("button", t ? label(t) : shortId(other(x.e)), li, "link-button small-button");
          b.type = "button";
          b.title = other(x.e);
          b.addEventListener("click", function () { if (t) select(t); });
          html("span", " " + edgeLabel(x.e, x.w) + " · " + x.w.count + "×", li, "small");
        });
        if (items.length > 25) html("p", "… and " + (items.length - 25) + " more", panel, "muted small");
      }
      list("Money in from", state.edges.filter(function (e) { return e.dst === d.id; }), function (e) { return e.src; });
      list("Money out to", state.edges.filter(function (e) { return e.src === d.id; }), function (e) { return e.dst; });
    }

    function showOthers(d) {
      html("p", d.count + " accounts that " + (d.side === "in" ? "sent money into" : "received money from") +
        " the drawn accounts" + (d.members_in_case ? " (" + d.members_in_case + " of them in the case)" : "") +
        ", folded into one node to keep the graph legible. Draw more with “Accounts drawn”.", panel, "small");
      var ul = html("ul", null, panel, "graph-others");
      d.members.forEach(function (m) {
        var li = html("li", null, ul);
        accountLink(li, m.id, m.name ? clip(m.name, 28) : shortId(m.id), m.in_case || m.name);
        html("span", " " + money(m.amount) + (m.in_case ? " · in the case" : ""), li, "small");
      });
      if (d.count > d.members.length) html("p", "… and " + (d.count - d.members.length) + " more", panel, "muted small");
    }

    // a node's counterparties from the store: new accounts placed around it, new flows dashed
    function expand(d) {
      if (d.aggregate || d.expanded) return;
      var btn = document.getElementById("graph-expand");
      if (btn) { btn.disabled = true; btn.textContent = "Drawing…"; }
      getJSON(src + "/expand/" + encodeURIComponent(d.id))
        .then(function (found) {
          var known = {}, pairs = {};
          state.data.nodes.forEach(function (n) { known[n.id] = n; });
          state.data.edges.forEach(function (e) { pairs[e.src + "\u0000" + e.dst] = true; });
          var added = 0;
          found.nodes.forEach(function (n) {
            if (known[n.id]) return;
            n.added = true;
            state.data.nodes.push(n);
            added++;
          });
          found.edges.forEach(function (e) {
            if (pairs[e.src + "\u0000" + e.dst]) return;
            e.store = true;
            state.data.edges.push(e);
          });
          known[d.id].expanded = true;
          if (toggle && added && !toggle.checked) toggle.checked = true;
          render();
          var msg = added ? added + " counterpart" + (added === 1 ? "y" : "ies") + " added from the store" : "no counterparties beyond those drawn";
          if (found.more) msg += "; " + found.more + " more not drawn";
          if (panel) html("p", msg + ".", panel, "flash ok small").id = "graph-expanded";
        })
        .catch(function (err) {
          if (panel) html("p", "Could not draw the counterparties: " + err.message, panel, "flash error small");
        });
    }

    function interact(svg) {
      var drag = null;
      svg.addEventListener("pointerdown", function (ev) {
        var target = ev.target;
        var id = target && target.classList && target.classList.contains("node") ? target.getAttribute("data-id") : null;
        var p = L.toWorld(svg, state.view, ev.clientX, ev.clientY);
        drag = { node: id ? state.byId[id] : null, x: p.x, y: p.y, cx: ev.clientX, cy: ev.clientY, moved: false, view: Object.assign({}, state.view) };
        if (!drag.node) svg.classList.add("panning");
        svg.setPointerCapture(ev.pointerId);
      });
      svg.addEventListener("pointermove", function (ev) {
        if (!drag) return;
        if (Math.abs(ev.clientX - drag.cx) + Math.abs(ev.clientY - drag.cy) > 3) drag.moved = true;
        if (!drag.moved) return;
        if (drag.node) {
          var p = L.toWorld(svg, state.view, ev.clientX, ev.clientY);
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
        if (!drag.moved) { if (drag.node) select(drag.node); else clearSelection(); }
        drag = null;
        try { svg.releasePointerCapture(ev.pointerId); } catch (e) { /* already released */ }
      }
      svg.addEventListener("pointerup", end);
      svg.addEventListener("pointercancel", end);
      svg.addEventListener("wheel", function (ev) {
        ev.preventDefault();
        zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, L.toWorld(svg, state.view, ev.clientX, ev.clientY));
      }, { passive: false });
    }

    function zoom(f, p) {
      var v = state.view;
      p = p || { x: v.x + v.w / 2, y: v.y + v.h / 2 };
      var w = Math.min(Math.max(v.w * f, state.home.w / 20), state.home.w * 8);
      var g = w / v.w;
      setView({ x: p.x - (p.x - v.x) * g, y: p.y - (p.y - v.y) * g, w: w, h: v.h * g });
    }

    function download(blob, name) {
      var url = URL.createObjectURL(blob);
      var a = document.createElement("a");
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 5000);
    }
    function fileName(ext) { return "case-" + caseId.replace(/[^A-Za-z0-9_.-]/g, "_") + "-graph." + ext; }

    function bind(id, event, fn) { var e = document.getElementById(id); if (e) e.addEventListener(event, fn); }
    function start(data) {
      state.data = data;
      state.pos = {};
      var outside = data.nodes.filter(function (d) { return !d.in_case; }).length;
      if (toggle) toggle.disabled = outside === 0;
      setupSlider();
      render();
    }
    function fetchGraph(limit, pending) {
      box.removeAttribute("data-ready");
      (pending || getJSON(src + (limit ? "?limit=" + encodeURIComponent(limit) : "")))
        .then(start)
        .catch(function (err) {
          clear(box);
          html("p", "The graph could not be drawn: " + err.message, box, "flash error");
          box.setAttribute("data-error", "1");
        });
    }
    if (toggle) toggle.addEventListener("change", render);
    bind("graph-reset", "click", function () { if (state.home) setView(state.home); });
    bind("graph-zoom-in", "click", function () { if (state.view) zoom(1 / 1.4); });
    bind("graph-zoom-out", "click", function () { if (state.view) zoom(1.4); });
    bind("graph-download-svg", "click", function () {
      download(new Blob([X.svgText(state.svg, state.home, caseId)], { type: "image/svg+xml" }), fileName("svg"));
    });
    bind("graph-download-png", "click", function () {
      X.png(state.svg, state.home, caseId, function (blob) { if (blob) download(blob, fileName("png")); });
    });
    if (limitSelect) limitSelect.addEventListener("change", function () { fetchGraph(limitSelect.value); });
    fetchGraph(null, early);
  }
})();
