/* sig2osm maps, part 2 of 5: the offline background (streets with their names, buildings,
 * water) drawn on a canvas of its own, under the tile layer: online the tiles cover it, offline
 * (no tile arrives) it is what the reviewer sees (AGPL-3.0-or-later).
 *
 * Coordinates are projected once to Web Mercator pixels at zoom 0; each redraw only scales and
 * shifts them, and skips what lies out of view, so tens of thousands of streets stay fast.
 */
(function () {
  "use strict";

  var lib = window.sig2osmLib;
  var PADDING = 0.3;  // drawn beyond the view on each side, as Leaflet's own canvas does
  var MAIN = {motorway: 1, trunk: 1, primary: 1, secondary: 1, tertiary: 1, motorway_link: 1,
              trunk_link: 1, primary_link: 1, secondary_link: 1, tertiary_link: 1};
  var STYLE = {
    water: "#aad3df", building: "#d9d0c9", buildingLine: "#c4b6ab", casing: "#bbb1a6",
    street: "#ffffff", main: "#fcd6a4", mainCasing: "#c99a5f", path: "#b5835a", label: "#333",
    halo: "rgba(255,255,255,0.9)"
  };

  // Web Mercator pixels at zoom 0 (as Leaflet's EPSG:3857), for a flat [lon, lat, …] list.
  function project(flat) {
    var out = new Float64Array(flat.length), box = [Infinity, Infinity, -Infinity, -Infinity];
    for (var i = 0; i < flat.length; i += 2) {
      var s = Math.sin(Math.max(Math.min(flat[i + 1], 85.0511287798), -85.0511287798) * Math.PI / 180);
      var x = (flat[i] + 180) / 360 * 256, y = (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * 256;
      out[i] = x; out[i + 1] = y;
      if (x < box[0]) { box[0] = x; } if (y < box[1]) { box[1] = y; }
      if (x > box[2]) { box[2] = x; } if (y > box[3]) { box[3] = y; }
    }
    return {xy: out, box: box};
  }

  function streetWidth(kind, zoom) {
    var base = MAIN[kind] ? 5 : kind === "service" ? 2.5 : kind === "path" ? 1.3 : 3.5;
    return Math.max(0.8, base * Math.pow(1.35, zoom - 16));
  }

  lib.ContextLayer = L.Layer.extend({
    initialize: function (data) {
      this.drawn = {streets: 0, named: 0, labels: 0, buildings: 0, water: 0};
      this._streets = (data.streets || []).map(function (s) {
        var p = project(s[2]);
        return {name: s[0], kind: s[1], xy: p.xy, box: p.box};
      });
      this._buildings = (data.buildings || []).map(project);
      this._water = (data.water || []).map(function (rings) { return rings.map(project); });
      this._waterways = (data.waterways || []).map(project);
      this.counts = {streets: this._streets.length,
                     named: this._streets.filter(function (s) { return s.name; }).length,
                     buildings: this._buildings.length,
                     water: this._water.length + this._waterways.length};
    },

    onAdd: function (map) {
      var pane = map.getPane("s2o-context") || map.createPane("s2o-context");
      pane.style.zIndex = 150;  // under the tiles (200)
      pane.style.pointerEvents = "none";
      this._canvas = L.DomUtil.create("canvas", "s2o-context-canvas", pane);
      map.on("moveend zoomend resize viewreset", this._redraw, this);
      map.on("zoomstart", this._hide, this);
      this._redraw();
    },

    onRemove: function (map) {
      map.off("moveend zoomend resize viewreset", this._redraw, this);
      map.off("zoomstart", this._hide, this);
      L.DomUtil.remove(this._canvas);
    },

    _hide: function () { this._canvas.style.visibility = "hidden"; },

    _redraw: function () {
      var map = this._map;
      if (!map) { return; }
      var size = map.getSize(), pad = size.multiplyBy(PADDING).round();
      var ratio = window.devicePixelRatio || 1, canvas = this._canvas;
      var width = size.x + 2 * pad.x, height = size.y + 2 * pad.y;
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      canvas.style.width = width + "px";
      canvas.style.height = height + "px";
      L.DomUtil.setPosition(canvas, map.containerPointToLayerPoint(pad.multiplyBy(-1)));
      canvas.style.visibility = "visible";
      var zoom = map.getZoom(), scale = Math.pow(2, zoom);
      var origin = map.getPixelBounds().min.subtract(pad);
      var view = {scale: scale, ox: origin.x, oy: origin.y, zoom: zoom,
                  box: [origin.x / scale, origin.y / scale, (origin.x + width) / scale,
                        (origin.y + height) / scale]};
      var ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      ctx.lineJoin = ctx.lineCap = "round";
      this.drawn = {streets: 0, named: 0, labels: 0, buildings: 0, water: 0};
      this._drawWater(ctx, view);
      if (zoom >= 14) { this._drawBuildings(ctx, view); }
      this._drawStreets(ctx, view);
      if (zoom >= 16) { this._drawLabels(ctx, view); }
    },

    _inView: function (box, view) {
      return !(box[2] < view.box[0] || box[0] > view.box[2] || box[3] < view.box[1] || box[1] > view.box[3]);
    },

    // One ring or line into the current path; vertices less than a pixel from the last one
    // drawn are skipped (at low zoom most of them: a city's streets stay fast).
    _trace: function (ctx, xy, view, close) {
      var n = xy.length, lastX = 0, lastY = 0;
      for (var i = 0; i < n; i += 2) {
        var x = xy[i] * view.scale - view.ox, y = xy[i + 1] * view.scale - view.oy;
        if (i === 0) {
          ctx.moveTo(x, y);
        } else if (i === n - 2 || Math.abs(x - lastX) + Math.abs(y - lastY) >= 1) {
          ctx.lineTo(x, y);
        } else {
          continue;
        }
        lastX = x; lastY = y;
      }
      if (close) { ctx.closePath(); }
    },

    _drawWater: function (ctx, view) {
      var self = this;
      ctx.fillStyle = ctx.strokeStyle = STYLE.water;
      this._water.forEach(function (rings) {
        if (!rings.length || !self._inView(rings[0].box, view)) { return; }
        ctx.beginPath();
        rings.forEach(function (ring) { self._trace(ctx, ring.xy, view, true); });
        ctx.fill("evenodd");
        self.drawn.water += 1;
      });
      ctx.lineWidth = Math.max(1, 2 * Math.pow(1.3, view.zoom - 15));
      this._waterways.forEach(function (line) {
        if (!self._inView(line.box, view)) { return; }
        ctx.beginPath();
        self._trace(ctx, line.xy, view, false);
        ctx.stroke();
        self.drawn.water += 1;
      });
    },

    _drawBuildings: function (ctx, view) {
      var self = this;
      ctx.beginPath();
      this._buildings.forEach(function (b) {
        if (!self._inView(b.box, view)) { return; }
        self._trace(ctx, b.xy, view, true);
        self.drawn.buildings += 1;
      });
      ctx.fillStyle = STYLE.building;
      ctx.fill();
      ctx.lineWidth = 0.7;
      ctx.strokeStyle = STYLE.buildingLine;
      ctx.stroke();
    },

    // Casing first, then the fill, by class: minor streets under the main ones; one path per
    // class and pass (a stroke per street would take a second for a city at low zoom).
    _drawStreets: function (ctx, view) {
      var self = this, zoom = view.zoom;
      var shown = this._streets.filter(function (s) {
        return self._inView(s.box, view) && (zoom >= 13 || MAIN[s.kind]) && (zoom >= 15 || s.kind !== "path");
      });
      var byKind = {};
      shown.forEach(function (s) { (byKind[s.kind] = byKind[s.kind] || []).push(s); });
      var kinds = Object.keys(byKind).filter(function (k) { return k !== "path"; });
      kinds.sort(function (a, b) { return (MAIN[a] || 0) - (MAIN[b] || 0) || (a < b ? -1 : a > b ? 1 : 0); });
      var stroke = function (streets, width, colour) {
        ctx.beginPath();
        streets.forEach(function (s) { self._trace(ctx, s.xy, view, false); });
        ctx.lineWidth = width;
        ctx.strokeStyle = colour;
        ctx.stroke();
      };
      ctx.setLineDash([]);
      kinds.forEach(function (k) {
        stroke(byKind[k], streetWidth(k, zoom) + 2, MAIN[k] ? STYLE.mainCasing : STYLE.casing);
      });
      kinds.forEach(function (k) {
        stroke(byKind[k], streetWidth(k, zoom), MAIN[k] ? STYLE.main : STYLE.street);
      });
      ctx.setLineDash([3, 3]);
      if (byKind.path) { stroke(byKind.path, streetWidth("path", zoom), STYLE.path); }
      ctx.setLineDash([]);
      this.drawn.streets = shown.length;
      this.drawn.named = shown.filter(function (s) { return s.name; }).length;
      this._shown = shown;
    },

    // Each named street's name along its longest segment, where it fits and overlaps no other.
    _drawLabels: function (ctx, view) {
      var self = this, taken = [];
      ctx.font = "11px system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.lineWidth = 3;
      ctx.strokeStyle = STYLE.halo;
      ctx.fillStyle = STYLE.label;
      (this._shown || []).forEach(function (s) {
        if (!s.name) { return; }
        var best = null, length = 0;
        for (var i = 0; i + 3 < s.xy.length; i += 2) {
          var dx = (s.xy[i + 2] - s.xy[i]) * view.scale, dy = (s.xy[i + 3] - s.xy[i + 1]) * view.scale;
          var d = Math.sqrt(dx * dx + dy * dy);
          if (d > length) { length = d; best = i; }
        }
        var width = ctx.measureText(s.name).width;
        if (best === null || width > length * 0.95) { return; }
        var x = (s.xy[best] + s.xy[best + 2]) / 2 * view.scale - view.ox;
        var y = (s.xy[best + 1] + s.xy[best + 3]) / 2 * view.scale - view.oy;
        var box = [x - width / 2 - 2, y - width / 2 - 2, x + width / 2 + 2, y + width / 2 + 2];
        if (taken.some(function (t) { return !(box[2] < t[0] || box[0] > t[2] || box[3] < t[1] || box[1] > t[3]); })) {
          return;
        }
        taken.push(box);
        var angle = Math.atan2(s.xy[best + 3] - s.xy[best + 1], s.xy[best + 2] - s.xy[best]);
        if (angle > Math.PI / 2) { angle -= Math.PI; } else if (angle < -Math.PI / 2) { angle += Math.PI; }
        ctx.save();
        ctx.translate(x, y);
        ctx.rotate(angle);
        ctx.strokeText(s.name, 0, 0);
        ctx.fillText(s.name, 0, 0);
        ctx.restore();
        self.drawn.labels += 1;
      });
    }
  });
}());
