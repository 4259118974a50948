/* The money graph as a file (loaded by graph.js): an SVG that stands on its own (the page's CSS
 * copied onto each shape as presentation attributes, hidden shapes left out, a white
 * background, the whole drawing whatever the zoom) and a PNG of it, drawn on a canvas from a
 * data: URL (the CSP allows data: images; no library). */
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var WIDTH = 1600;
  var PROPS = ["fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-dasharray",
               "stroke-linejoin", "paint-order", "opacity", "font-size", "font-family", "font-weight"];
  var SHAPES = { circle: 1, line: 1, text: 1, path: 1, rect: 1 };

  function svgText(svg, view, caseId) {
    var copy = svg.cloneNode(true);
    var from = svg.querySelectorAll("*"), to = copy.querySelectorAll("*");
    var hidden = [];
    for (var i = 0; i < from.length; i++) {
      if (!SHAPES[from[i].localName]) continue;
      var cs = window.getComputedStyle(from[i]);
      if (cs.display === "none" || cs.visibility === "hidden") { hidden.push(to[i]); continue; }
      for (var p = 0; p < PROPS.length; p++) {
        var v = cs.getPropertyValue(PROPS[p]);
        if (v) to[i].setAttribute(PROPS[p], v);
      }
      to[i].removeAttribute("tabindex");
    }
    hidden.forEach(function (e) { e.remove(); });
    copy.removeAttribute("class");
    copy.removeAttribute("id");
    copy.setAttribute("viewBox", [view.x, view.y, view.w, view.h].map(function (n) { return n.toFixed(1); }).join(" "));
    copy.setAttribute("width", String(WIDTH));
    copy.setAttribute("height", String(Math.round((WIDTH * view.h) / view.w)));
    var title = document.createElementNS(SVGNS, "title");
    title.textContent = "Money graph of case " + caseId;
    var bg = document.createElementNS(SVGNS, "rect");
    [["x", view.x], ["y", view.y], ["width", view.w], ["height", view.h]].forEach(function (a) { bg.setAttribute(a[0], a[1].toFixed(1)); });
    bg.setAttribute("fill", "#ffffff");
    copy.insertBefore(bg, copy.firstChild);
    copy.insertBefore(title, copy.firstChild);
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(copy);
  }

  // done(blob) with the PNG, or done(null, error)
  function png(svg, view, caseId, done) {
    var text = svgText(svg, view, caseId);
    var img = new Image();
    img.addEventListener("load", function () {
      var canvas = document.createElement("canvas");
      canvas.width = WIDTH;
      canvas.height = Math.round((WIDTH * view.h) / view.w);
      var ctx = canvas.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      try { canvas.toBlob(function (b) { done(b, b ? null : new Error("no image")); }, "image/png"); } catch (e) { done(null, e); }
    });
    img.addEventListener("error", function () { done(null, new Error("the drawing could not be rendered")); });
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text);
  }

  window.flows87GraphExport = { svgText: svgText, png: png };
})();
