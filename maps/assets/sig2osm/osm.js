/* sig2osm maps, part 3 of 5: what OSM has — every OSM object the run compared the layer with
 * (those a decision names highlighted), a line from each source feature to the OSM object it
 * is matched or compared to, and the outline of the area the OSM data covers
 * (AGPL-3.0-or-later).
 */
(function () {
  "use strict";

  var lib = window.sig2osmLib, el = lib.el;
  var COMPARED = "#6a3d9a", OTHER = "#a58fc4", MATCH_LINE = "#6a3d9a", CANDIDATE_LINE = "#d9821f";

  // The OSM objects as features: {geometry, properties: {osm_id, version, tags}}; each object
  // is [id, version, index into tagsets, geometry], a node's geometry its [lon, lat].
  lib.osmFeatures = function (objects, tagsets) {
    var byKey = {};
    tagsets = tagsets || [];
    var features = (objects || []).map(function (o) {
      var geometry = Array.isArray(o[3]) ? {type: "Point", coordinates: o[3]} : o[3];
      var f = {type: "Feature", geometry: geometry,
               properties: {osm_id: o[0], version: o[1], tags: tagsets[o[2]] || {}}};
      byKey[o[0]] = f;
      return f;
    });
    return {features: features, byKey: byKey};
  };

  // Which source features name each OSM object (matched: osm_id, osm_ids; compared: candidates).
  lib.linksOf = function (features, byKey) {
    var links = [], named = {};
    features.forEach(function (f, i) {
      var p = f.properties || {};
      if (!f.geometry || p.decision === "missing") { return; }
      var seen = {};
      var add = function (key, kind) {
        if (!key || seen[key] || !byKey[key]) { return; }
        seen[key] = true;
        links.push({feature: i, osm: key, kind: kind});
        (named[key] = named[key] || []).push(i);
      };
      add(p.osm_id, "match");
      if (p.decision === "review") {
        (p.candidates || []).forEach(function (c) { add(c.osm_id, "candidate"); });
      }
    });
    return {links: links, named: named};
  };

  // Where a line from `from` ([lon, lat]) meets an OSM geometry: its nearest vertex.
  function nearestVertex(geometry, from) {
    var best = null, distance = Infinity;
    (function walk(c) {
      if (typeof c[0] === "number") {
        var dx = (c[0] - from[0]) * Math.cos(from[1] * Math.PI / 180), dy = c[1] - from[1];
        var d = dx * dx + dy * dy;
        if (d < distance) { distance = d; best = c; }
      } else {
        c.forEach(walk);
      }
    }(geometry.coordinates));
    return best;
  }

  // Every link of one kind drawn in one canvas pass; a click finds the segment under it.
  lib.LinkLayer = L.Path.extend({
    options: {weight: 2, opacity: 0.85, fill: false},

    initialize: function (links, features, byKey, options) {
      L.setOptions(this, options);
      this.links = [];
      this._ends = [];
      this.drawn = 0;
      var self = this;
      links.forEach(function (link) {
        var source = features[link.feature], from = lib.firstPoint(source.geometry);
        var to = from && nearestVertex(byKey[link.osm].geometry, from);
        if (!from || !to) { return; }
        self.links.push(link);
        self._ends.push([L.latLng(from[1], from[0]), L.latLng(to[1], to[0])]);
      });
      this._points = [];
    },

    getBounds: function () {
      var b = L.latLngBounds([]);
      this._ends.forEach(function (e) { b.extend(e[0]); b.extend(e[1]); });
      return b;
    },

    _project: function () {
      var map = this._map, w = this.options.weight;
      var min = [Infinity, Infinity], max = [-Infinity, -Infinity];
      this._points = this._ends.map(function (e) {
        var a = map.latLngToLayerPoint(e[0]), b = map.latLngToLayerPoint(e[1]);
        min = [Math.min(min[0], a.x, b.x), Math.min(min[1], a.y, b.y)];
        max = [Math.max(max[0], a.x, b.x), Math.max(max[1], a.y, b.y)];
        return [a, b];
      });
      this._pxBounds = this._points.length ? L.bounds([min[0] - w, min[1] - w], [max[0] + w, max[1] + w]) : null;
    },

    _update: function () { if (this._map) { this._updatePath(); } },

    _empty: function () { return !this._points.length; },

    _updatePath: function () {
      var renderer = this._renderer;
      if (!renderer._drawing || this._empty()) { return; }
      var ctx = renderer._ctx, area = renderer._bounds, o = this.options, drawn = 0;
      ctx.beginPath();
      this._points.forEach(function (s) {
        if (Math.max(s[0].x, s[1].x) < area.min.x || Math.min(s[0].x, s[1].x) > area.max.x ||
            Math.max(s[0].y, s[1].y) < area.min.y || Math.min(s[0].y, s[1].y) > area.max.y) {
          return;
        }
        ctx.moveTo(s[0].x, s[0].y);
        ctx.lineTo(s[1].x, s[1].y);
        drawn += 1;
      });
      ctx.globalAlpha = o.opacity;
      ctx.lineWidth = o.weight;
      ctx.strokeStyle = o.color;
      ctx.setLineDash(o.dashArray ? o.dashArray.split(" ").map(Number) : []);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
      this.drawn = drawn;
    },

    _containsPoint: function (p) {
      var tolerance = this.options.weight / 2 + this._clickTolerance() + 2;
      for (var i = this._points.length - 1; i >= 0; i--) {
        if (L.LineUtil.pointToSegmentDistance(p, this._points[i][0], this._points[i][1]) <= tolerance) {
          this.hit = i;
          this.hitLatLng = this._map.layerPointToLatLng(p);
          return true;
        }
      }
      return false;
    }
  });

  // The OSM objects' layers: nodes on two point layers (named by a decision, or not), ways
  // and areas as paths; each remembers its feature for clicks.
  lib.osmLayers = function (osm, named, renderer) {
    var layers = [];
    [true, false].forEach(function (compared) {
      var members = osm.features.filter(function (f) { return !!named[f.properties.osm_id] === compared; });
      var points = members.filter(function (f) { return f.geometry.type === "Point"; });
      var others = members.filter(function (f) { return f.geometry.type !== "Point"; });
      var colour = compared ? COMPARED : OTHER;
      var parts = [];
      if (points.length) {
        parts.push(new lib.PointLayer(points, {renderer: renderer, shape: "diamond", osm: true,
          radius: compared ? 6 : 4.5, color: compared ? "#2d1a45" : "#6f5f86", opacity: 1,
          fillColor: colour, fillOpacity: compared ? 0.95 : 0.7}));
      }
      if (others.length) {
        parts.push(L.geoJSON({type: "FeatureCollection", features: others}, {
          style: function () {
            return {color: colour, weight: compared ? 2.5 : 1.5, opacity: 0.9, fillColor: colour,
                    fillOpacity: compared ? 0.15 : 0.06, renderer: renderer};
          },
          onEachFeature: function (feature, layer) {
            layer._s2oOsm = feature;
            if (layer.eachLayer) { layer.eachLayer(function (part) { part._s2oOsm = feature; }); }
          }
        }));
      }
      layers.push({compared: compared, count: members.length, group: L.featureGroup(parts)});
    });
    return layers;
  };

  lib.osmAt = function (e) {
    var layer = e.layer || e.propagatedFrom;
    if (layer instanceof lib.PointLayer) { return {feature: layer.features[layer.hit], at: layer.hitLatLng}; }
    return {feature: layer._s2oOsm, at: e.latlng};
  };

  lib.COLOURS = {compared: COMPARED, other: OTHER, match: MATCH_LINE, candidate: CANDIDATE_LINE};

  // The popup of an OSM object: id, version, tags, and the source features that name it.
  lib.osmPopup = function (feature, sources, cfg, describe) {
    var t = cfg.texts, p = feature.properties;
    var root = el("div", "s2o-popup s2o-osm-popup");
    var title = el("div", "s2o-popup-title");
    title.appendChild(lib.swatch(COMPARED, "diamond"));
    title.appendChild(el("span", null, t.osm_object + " "));
    title.appendChild(lib.osmLink(p.osm_id));
    title.appendChild(el("span", "s2o-source-id", t.version + " " + p.version));
    root.appendChild(title);
    var tags = lib.keyValues(p.tags, [t.key, t.osm_value]);
    if (tags) { root.appendChild(tags); }
    if (sources.length) {
      root.appendChild(el("div", "s2o-subtitle", t.linked_features));
      var list = el("ul", "s2o-linked");
      sources.forEach(function (f) { list.appendChild(describe(f)); });
      root.appendChild(list);
    }
    return root;
  };
}());
