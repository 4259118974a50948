/* Where the money graph's accounts go (loaded by graph.js). Fruchterman-Reingold force-directed
 * layout seeded from the account ids, so a case gives the same picture on every load. Accounts
 * that already have a place (a redraw, or a click that adds counterparties) keep it; new ones
 * start beside a neighbour and settle around the fixed ones. The "+N others" nodes are fixed,
 * senders to the left of the drawing and receivers to the right, and pull the accounts that
 * trade with them to their side. Pushing stops at 6 k, so accounts linked to nothing drawn stay
 * near the rest instead of being driven off. */
(function () {
  "use strict";
  var W = 1000, H = 640;

  // a small seeded PRNG (mulberry32)
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

  // positions for the accounts without one in `pos` (all of them on the first drawing)
  function place(nodes, edges, pos) {
    nodes.forEach(function (d) {
      var p = pos[d.id];
      d.fixed = !!p;
      if (p) { d.x = p.x; d.y = p.y; }
    });
    var first = !nodes.some(function (d) { return d.fixed && !d.aggregate; });
    // "+N others": senders left, receivers right, pulling the accounts they trade with
    nodes.forEach(function (d) {
      if (!d.aggregate || d.fixed) return;
      d.x = d.side === "in" ? -0.15 * W : 1.15 * W;
      d.y = H / 2;
      d.fixed = true;
    });
    if (nodes.some(function (d) { return !d.fixed; })) {
      settle(nodes, edges, first, rng(nodes.map(function (d) { return d.id; }).join("|")));
    }
    nodes.forEach(function (d) { d.fixed = false; });
  }

  function settle(nodes, edges, first, random) {
    var n = nodes.length;
    var index = {};
    nodes.forEach(function (d, i) { index[d.id] = i; });
    var links = [];
    edges.forEach(function (e) {
      var a = index[e.src], b = index[e.dst];
      // an "others" node pulls gently: it trades with most accounts
      if (a !== undefined && b !== undefined && a !== b) links.push([a, b, nodes[a].aggregate || nodes[b].aggregate ? 0.03 : 1]);
    });
    if (first) { // case accounts on a circle
      var members = nodes.filter(function (d) { return d.in_case; });
      var r0 = Math.min(W, H) * 0.25;
      members.forEach(function (d, i) {
        var t = (2 * Math.PI * i) / Math.max(1, members.length);
        d.x = W / 2 + r0 * Math.cos(t) + (random() - 0.5) * 10;
        d.y = H / 2 + r0 * Math.sin(t) + (random() - 0.5) * 10;
        d.placed = true;
      });
    }
    // the others start near a neighbour that has a place
    nodes.forEach(function (d) { if (d.fixed) d.placed = true; });
    var neighbour = {};
    links.forEach(function (l) {
      var a = nodes[l[0]], b = nodes[l[1]];
      if (a.placed && !b.placed && !neighbour[b.id]) neighbour[b.id] = a;
      if (b.placed && !a.placed && !neighbour[a.id]) neighbour[a.id] = b;
    });
    // ... on the side away from the middle of what is drawn
    var cx = 0, cy = 0, placed = nodes.filter(function (d) { return d.placed; });
    placed.forEach(function (d) { cx += d.x / placed.length; cy += d.y / placed.length; });
    if (!placed.length) { cx = W / 2; cy = H / 2; }
    nodes.forEach(function (d) {
      if (d.placed) return;
      var near = neighbour[d.id];
      var out = near ? Math.atan2(near.y - cy, near.x - cx) : 0;
      var t = near ? out + (random() - 0.5) * Math.PI : random() * 2 * Math.PI;
      var r = first ? 30 + random() * 60 : 60 + random() * 60;
      d.x = (near ? near.x : W / 2) + r * Math.cos(t);
      d.y = (near ? near.y : H / 2) + r * Math.sin(t);
    });
    nodes.forEach(function (d) { delete d.placed; });
    var heavy = nodes.reduce(function (acc, d) { return acc + (d.in_case ? 1 : d.aggregate ? 0 : 0.25); }, 0);
    var k = Math.sqrt((W * H) / Math.max(heavy, 1)) * 0.6;
    var far = 36 * k * k;
    var iterations = first ? (n > 150 ? 100 : 220) : 100;
    var temp = first ? W / 8 : W / 16;
    var cool = temp / (iterations + 1);
    var dx = new Float64Array(n), dy = new Float64Array(n), degree = new Float64Array(n);
    links.forEach(function (l) { degree[l[0]]++; degree[l[1]]++; });
    for (var it = 0; it < iterations; it++) {
      dx.fill(0);
      dy.fill(0);
      for (var i = 0; i < n; i++) {
        var a = nodes[i];
        for (var j = i + 1; j < n; j++) {
          var b = nodes[j];
          var x = a.x - b.x, y = a.y - b.y;
          var d2 = x * x + y * y;
          if (d2 > far) continue; // beyond a few k nothing pushes: no account is driven off
          if (d2 < 0.01) { x = random() - 0.5; y = random() - 0.5; d2 = 0.5; }
          // repulsion k^2/d along the unit vector; counterparties outside the case push each
          // other less, so the one-off payees of a hub stay near it
          // (accounts added to a drawing push fully, to find room among the fixed ones)
          var f = ((k * k) / d2) * (!first && !(a.fixed && b.fixed) ? 1.5
            : a.in_case ? (b.in_case ? 1 : 0.5) : (b.in_case ? 0.5 : 0.3));
          dx[i] += x * f; dy[i] += y * f;
          dx[j] -= x * f; dy[j] -= y * f;
        }
      }
      for (var m = 0; m < links.length; m++) {
        var s = links[m][0], t2 = links[m][1];
        var u = nodes[s], v = nodes[t2];
        var lx = u.x - v.x, ly = u.y - v.y;
        var dist = Math.sqrt(lx * lx + ly * ly) || 0.01;
        var fa = (dist / k) * links[m][2]; // attraction d^2/k along the unit vector
        dx[s] -= lx * fa; dy[s] -= ly * fa;
        dx[t2] += lx * fa; dy[t2] += ly * fa;
      }
      for (var q = 0; q < n; q++) {
        var p = nodes[q];
        if (p.fixed) continue;
        // gravity keeps components together; an account linked to nothing drawn stays close
        var g = 0.02 * (p.in_case ? 2 : 1) * (degree[q] ? 1 : 4);
        dx[q] += (W / 2 - p.x) * g;
        dy[q] += (H / 2 - p.y) * g;
        var len = Math.sqrt(dx[q] * dx[q] + dy[q] * dy[q]) || 1;
        var step = Math.min(len, temp);
        p.x += (dx[q] / len) * step;
        p.y += (dy[q] / len) * step;
      }
      temp = Math.max(temp - cool, 0.5);
    }
  }

  // a pointer position in the drawing's coordinates (preserveAspectRatio meet: uniform, centred)
  function toWorld(svg, v, clientX, clientY) {
    var rect = svg.getBoundingClientRect();
    var scale = Math.min(rect.width / v.w, rect.height / v.h) || 1;
    var ox = (rect.width - v.w * scale) / 2, oy = (rect.height - v.h * scale) / 2;
    return { x: v.x + (clientX - rect.left - ox) / scale, y: v.y + (clientY - rect.top - oy) / scale, scale: scale };
  }

  window.flows87GraphLayout = { W: W, H: H, place: place, toWorld: toWorld };
})();
