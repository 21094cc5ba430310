/* sig2osm maps, part 1 of 5: shared helpers, the canvas point layer, reasons in words
 * (AGPL-3.0-or-later).
 *
 * Safety rule of every part: a string that comes from data reaches the page through
 * textContent or a DOM property, never through innerHTML; links are only built from validated
 * OSM ids. The parts share `window.sig2osmLib`; map.js (the last part) starts the pages.
 */
(function () {
  "use strict";

  var lib = window.sig2osmLib = {};
  var OSM_ID = lib.OSM_ID = /^(node|way|relation)\/([0-9]+)$/;

  lib.readJson = function (id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  };

  var el = lib.el = function (tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  };

  var link = lib.link = function (href, text) {
    var a = el("a", null, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  };

  lib.button = function (text, cls, onClick) {
    var b = el("button", cls, text);
    b.type = "button";
    b.addEventListener("click", function (e) { e.stopPropagation(); onClick(e); });
    return b;
  };

  lib.num = function (value, locale, digits) {
    return Number(value).toLocaleString(locale, {maximumFractionDigits: digits});
  };

  lib.osmLink = function (id, text) {
    var m = OSM_ID.exec(id || "");
    return m ? link("https://www.openstreetmap.org/" + m[1] + "/" + m[2], text || id) : el("span", null, id);
  };

  // "{done} / {total}" filled from our own texts, values as text.
  lib.fill = function (template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, name) {
      return values[name] === undefined ? whole : String(values[name]);
    });
  };

  // The first point of a geometry ([lon, lat]), or null.
  lib.firstPoint = function (geometry) {
    var c = geometry && geometry.coordinates;
    while (Array.isArray(c) && Array.isArray(c[0])) { c = c[0]; }
    return Array.isArray(c) && c.length >= 2 ? c : null;
  };

  lib.pointsOf = function (geometry) {
    if (geometry.type === "Point") { return [geometry.coordinates]; }
    if (geometry.type === "MultiPoint") { return geometry.coordinates; }
    return [];
  };

  // A table of key → value rows (tags), or null when there is none.
  lib.keyValues = function (values, headers) {
    var keys = Object.keys(values || {}).sort();
    if (!keys.length) { return null; }
    var table = el("table", "s2o-tags");
    if (headers) {
      var head = el("tr");
      headers.forEach(function (h) { head.appendChild(el("th", null, h)); });
      table.appendChild(head);
    }
    keys.forEach(function (k) {
      var tr = el("tr");
      tr.appendChild(el("td", null, k));
      tr.appendChild(el("td", null, values[k]));
      table.appendChild(tr);
    });
    return table;
  };

  // --- reasons: a decision's `why` in the page's language -------------------------------------
  //
  // A reason is {code, params}; its template (cfg.reasons.templates[code]) names parameters as
  // {name} or {name:spec}. Values are text, numbers, nested reasons or lists of them; the result
  // is plain text, put into the page with textContent.

  var FIELD = /\{(\w+)(?::([^}]*))?\}/g;

  function isReason(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v) && typeof v.code === "string" &&
      v.params !== null && typeof v.params === "object";
  }

  function formatNumber(value, spec, locale) {
    var fixed = /^(,?)\.(\d)f$/.exec(spec);
    if (fixed) {
      var d = Number(fixed[2]);
      return value.toLocaleString(locale, {minimumFractionDigits: d, maximumFractionDigits: d,
                                           useGrouping: fixed[1] === ","});
    }
    if (spec === "g") { return value.toLocaleString(locale, {maximumSignificantDigits: 6, useGrouping: false}); }
    return String(value);
  }

  function renderValue(value, spec, words, locale) {
    if (value === null || value === undefined) { return ""; }
    if (isReason(value)) { return renderReason(value, words, locale); }
    if (Array.isArray(value)) {
      var separator = (value.length && isReason(value[0]) && words.separators[value[0].code]) || ", ";
      return value.map(function (v) { return renderValue(v, null, words, locale); }).join(separator);
    }
    if (typeof value === "number" && spec) { return formatNumber(value, spec, locale); }
    return String(value);
  }

  function renderReason(reason, words, locale) {
    var template = words.templates[reason.code];
    if (template === undefined) { return String(reason.code); }
    return template.replace(FIELD, function (whole, name, spec) {
      return renderValue(reason.params[name], spec, words, locale);
    });
  }

  // A decision's reasons, outermost first, as one sentence.
  lib.sayWhy = function (chain, words, locale) {
    var text = "";
    chain.forEach(function (reason, i) {
      if (!isReason(reason)) { return; }
      text += renderReason(reason, words, locale);
      if (i < chain.length - 1) {
        var joiner = words.joiners[reason.code];
        text += joiner === undefined ? words.joiners[""] : joiner;
      }
    });
    return text;
  };

  // --- point layer: every point of a category drawn in one canvas pass ------------------------
  //
  // One Leaflet layer per category instead of one per feature: 50 000 points cost one path on
  // the canvas renderer, which still does hit-testing (click, hover) through _containsPoint.

  var SHAPES = lib.SHAPES = {
    square: [[-1, -1], [1, -1], [1, 1], [-1, 1]],
    triangle: [[0, -1.2], [1.1, 0.8], [-1.1, 0.8]],
    diamond: [[0, -1.3], [1.3, 0], [0, 1.3], [-1.3, 0]]
  };

  var CELL = 2;  // pixels: points closer than this share one stamp
  lib.PointLayer = L.Path.extend({
    options: {radius: 6, shape: "circle", fill: true, weight: 1},

    initialize: function (features, options) {
      L.setOptions(this, options);
      this.features = features;
      this._latlngs = [];
      this._owner = [];  // index in features of each point
      this._points = [];
      this.drawn = 0;
      var self = this;
      features.forEach(function (f, i) {
        lib.pointsOf(f.geometry).forEach(function (c) {
          self._latlngs.push(L.latLng(c[1], c[0]));
          self._owner.push(i);
        });
      });
    },

    getBounds: function () { return L.latLngBounds(this._latlngs); },

    _project: function () {
      var map = this._map, pts = [], minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
      for (var i = 0; i < this._latlngs.length; i++) {
        var p = map.latLngToLayerPoint(this._latlngs[i]);
        pts.push(p);
        if (p.x < minX) { minX = p.x; } if (p.x > maxX) { maxX = p.x; }
        if (p.y < minY) { minY = p.y; } if (p.y > maxY) { maxY = p.y; }
      }
      this._points = pts;
      var r = this.options.radius * 1.4 + this.options.weight;
      this._pxBounds = pts.length ? L.bounds([minX - r, minY - r], [maxX + r, maxY + r]) : null;
    },

    _update: function () { if (this._map) { this._updatePath(); } },

    _empty: function () { return !this._points.length; },

    // Points are stamped from a small pre-drawn image: 50 000 image copies rasterise far
    // faster than one path of 50 000 circles.
    _sprite: function () {
      if (this._stamp) { return this._stamp; }
      var o = this.options, ratio = window.devicePixelRatio || 1;
      var half = Math.ceil(o.radius * 1.4 + o.weight), size = 2 * half;
      var canvas = document.createElement("canvas");
      canvas.width = canvas.height = Math.ceil(size * ratio);
      var ctx = canvas.getContext("2d");
      ctx.scale(ratio, ratio);
      ctx.beginPath();
      var corners = SHAPES[o.shape];
      if (corners) {
        corners.forEach(function (c, i) {
          var x = half + c[0] * o.radius, y = half + c[1] * o.radius;
          if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
        });
        ctx.closePath();
      } else {
        ctx.arc(half, half, o.radius, 0, Math.PI * 2, false);
      }
      ctx.globalAlpha = o.fillOpacity;
      ctx.fillStyle = o.fillColor;
      ctx.fill();
      ctx.globalAlpha = o.opacity;
      ctx.lineWidth = o.weight;
      ctx.strokeStyle = o.color;
      ctx.stroke();
      this._stamp = {canvas: canvas, half: half, size: size};
      return this._stamp;
    },

    _updatePath: function () {
      var renderer = this._renderer;
      if (!renderer._drawing || this._empty()) { return; }
      var ctx = renderer._ctx, stamp = this._sprite(), seen = -1, drawn = 0;
      var area = renderer._bounds, h = stamp.half;  // the canvas, in layer points
      // A point on the same 2-pixel cell as one already stamped would look the same: stamped
      // once (100 000 OSM nodes seen from afar are some 20 000 stamps).
      var cols = Math.ceil((area.max.x - area.min.x + 2 * h) / CELL) + 1;
      var rows = Math.ceil((area.max.y - area.min.y + 2 * h) / CELL) + 1;
      var stamped = new Uint8Array(cols * rows);
      ctx.globalAlpha = 1;
      for (var i = 0; i < this._points.length; i++) {
        var p = this._points[i];
        if (p.x + h < area.min.x || p.x - h > area.max.x || p.y + h < area.min.y || p.y - h > area.max.y) {
          continue;
        }
        if (this._owner[i] !== seen) { seen = this._owner[i]; drawn += 1; }
        var cell = Math.floor((p.y - area.min.y + h) / CELL) * cols + Math.floor((p.x - area.min.x + h) / CELL);
        if (stamped[cell]) { continue; }
        stamped[cell] = 1;
        // whole pixels: a stamp at a fractional position is resampled, several times slower
        ctx.drawImage(stamp.canvas, Math.round(p.x - h), Math.round(p.y - h), stamp.size, stamp.size);
      }
      this.drawn = drawn;  // features painted by the last pass, in view (what rendered() reports)
    },

    // The topmost point under the mouse; remembered for the click or hover that asked.
    _containsPoint: function (p) {
      var r = this.options.radius + this._clickTolerance();
      for (var i = this._points.length - 1; i >= 0; i--) {
        var q = this._points[i];
        if (Math.abs(q.x - p.x) <= r && Math.abs(q.y - p.y) <= r && q.distanceTo(p) <= r) {
          this.hit = this._owner[i];
          this.hitLatLng = this._latlngs[i];
          return true;
        }
      }
      return false;
    }
  });

  lib.swatch = function (colour, shape, stroke) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", "14");
    svg.setAttribute("height", "14");
    svg.setAttribute("viewBox", "-7 -7 14 14");
    svg.setAttribute("class", "s2o-swatch");
    var mark;
    if (shape === "line" || shape === "dashed") {
      mark = document.createElementNS(ns, "line");
      mark.setAttribute("x1", "-6"); mark.setAttribute("y1", "4");
      mark.setAttribute("x2", "6"); mark.setAttribute("y2", "-4");
      mark.style.stroke = colour;
      mark.style.strokeWidth = "2";
      if (shape === "dashed") { mark.style.strokeDasharray = "3 2"; }
    } else {
      var corners = SHAPES[shape];
      if (corners) {
        mark = document.createElementNS(ns, "polygon");
        mark.setAttribute("points", corners.map(function (c) { return c[0] * 5 + "," + c[1] * 5; }).join(" "));
      } else {
        mark = document.createElementNS(ns, "circle");
        mark.setAttribute("r", "5");
      }
      mark.style.fill = colour;
      mark.style.stroke = stroke || "#333";
    }
    svg.appendChild(mark);
    return svg;
  };
}());
