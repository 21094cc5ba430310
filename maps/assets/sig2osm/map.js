/* sig2osm maps: reviewer and council layers on a Leaflet map (AGPL-3.0-or-later).
 *
 * Safety rule: every string that comes from data reaches the page through textContent or a DOM
 * property, never through innerHTML; links are only built from validated OSM ids.
 */
(function () {
  "use strict";

  var OSM_ID = /^(node|way|relation)\/([0-9]+)$/;

  function readJson(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function link(href, text) {
    var a = el("a", null, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function num(value, locale, digits) {
    return Number(value).toLocaleString(locale, {maximumFractionDigits: digits});
  }

  // --- point layer: every point of a category drawn in one canvas pass ------------------------
  //
  // One Leaflet layer per category instead of one per feature: 50 000 points cost one path on
  // the canvas renderer, which still does hit-testing (click, hover) through _containsPoint.

  var SHAPES = {
    square: [[-1, -1], [1, -1], [1, 1], [-1, 1]],
    triangle: [[0, -1.2], [1.1, 0.8], [-1.1, 0.8]],
    diamond: [[0, -1.3], [1.3, 0], [0, 1.3], [-1.3, 0]]
  };

  function pointsOf(geometry) {
    if (geometry.type === "Point") { return [geometry.coordinates]; }
    if (geometry.type === "MultiPoint") { return geometry.coordinates; }
    return [];
  }

  var PointLayer = L.Path.extend({
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
        pointsOf(f.geometry).forEach(function (c) {
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
      ctx.globalAlpha = 1;
      for (var i = 0; i < this._points.length; i++) {
        var p = this._points[i];
        if (p.x + h < area.min.x || p.x - h > area.max.x || p.y + h < area.min.y || p.y - h > area.max.y) {
          continue;
        }
        ctx.drawImage(stamp.canvas, p.x - stamp.half, p.y - stamp.half, stamp.size, stamp.size);
        if (this._owner[i] !== seen) { seen = this._owner[i]; drawn += 1; }
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

  function swatch(colour, shape) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", "14");
    svg.setAttribute("height", "14");
    svg.setAttribute("viewBox", "-7 -7 14 14");
    svg.setAttribute("class", "s2o-swatch");
    var corners = SHAPES[shape];
    var mark;
    if (corners) {
      mark = document.createElementNS(ns, "polygon");
      mark.setAttribute("points", corners.map(function (c) { return c[0] * 5 + "," + c[1] * 5; }).join(" "));
    } else {
      mark = document.createElementNS(ns, "circle");
      mark.setAttribute("r", "5");
    }
    mark.style.fill = colour;
    mark.style.stroke = "#333";
    svg.appendChild(mark);
    return svg;
  }

  // --- layers ----------------------------------------------------------------------------------

  // A category's layer: its points in one PointLayer, its lines and areas as GeoJSON paths.
  function layerFor(features, entry, renderer) {
    var points = [], others = [];
    features.forEach(function (f) { (/Point$/.test(f.geometry.type) ? points : others).push(f); });
    var parts = [];
    if (points.length) {
      parts.push(new PointLayer(points, {renderer: renderer, shape: entry.shape || "circle",
        color: "#333", opacity: 1, fillColor: entry.colour, fillOpacity: 0.9}));
    }
    if (others.length) {
      parts.push(L.geoJSON({type: "FeatureCollection", features: others}, {
        style: function () { return {color: entry.colour, weight: 3, opacity: 0.9, fillColor: entry.colour,
                                     fillOpacity: 0.35, renderer: renderer}; },
        onEachFeature: function (feature, layer) {
          layer._s2oFeature = feature;
          if (layer.eachLayer) { layer.eachLayer(function (part) { part._s2oFeature = feature; }); }
        }
      }));
    }
    return L.featureGroup(parts);
  }

  function featureAt(e) {
    var layer = e.layer || e.propagatedFrom;
    if (layer instanceof PointLayer) { return {feature: layer.features[layer.hit], at: layer.hitLatLng}; }
    return {feature: layer._s2oFeature, at: e.latlng};
  }

  function bindInteractions(map, group, popup, tooltip) {
    var tip = L.tooltip({direction: "top", offset: [0, -6]}), current = null;
    group.on("click", function (e) {
      var hit = featureAt(e);
      map.closeTooltip(tip);
      current = null;
      L.popup({maxWidth: 440, maxHeight: 420}).setLatLng(hit.at).setContent(popup(hit.feature)).openOn(map);
    });
    group.on("mousemove", function (e) {
      var hit = featureAt(e);
      if (hit.feature !== current) {
        current = hit.feature;
        tip.setContent(el("span", null, tooltip(hit.feature)));
      }
      tip.setLatLng(hit.at);
      if (!map.hasLayer(tip)) { map.openTooltip(tip); }
    });
    group.on("mouseout", function () { map.closeTooltip(tip); current = null; });
  }

  function legend(map, title, entries, position) {
    var control = L.control({position: position || "topright"});
    control.onAdd = function () {
      var box = el("div", "s2o-legend leaflet-bar");
      box.appendChild(el("div", "s2o-legend-title", title));
      entries.forEach(function (entry) {
        var row = el("label", "s2o-legend-row");
        var box2 = el("input");
        box2.type = "checkbox";
        box2.checked = true;
        box2.disabled = !entry.layer;
        box2.addEventListener("change", function () {
          if (box2.checked) { map.addLayer(entry.layer); } else { map.removeLayer(entry.layer); }
        });
        row.appendChild(box2);
        row.appendChild(swatch(entry.colour, entry.shape));
        row.appendChild(el("span", "s2o-legend-label", entry.label));
        row.appendChild(el("span", "s2o-legend-count", num(entry.count, document.documentElement.lang, 0)));
        box.appendChild(row);
      });
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    control.addTo(map);
    return control;
  }

  // Fit the view first, then add the layers: each layer is projected once, not twice.
  function show(map, groups, timings) {
    var bounds = L.latLngBounds([]);
    groups.forEach(function (g) { if (g.getLayers().length) { bounds.extend(g.getBounds()); } });
    if (bounds.isValid()) { map.fitBounds(bounds, {padding: [24, 24], maxZoom: 18, animate: false}); }
    groups.forEach(function (g) { g.addTo(map); });
    timings.shown = performance.now();
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { timings.painted = performance.now(); });
    });
  }

  function attribution(map, cfg) {
    L.control.scale({imperial: false}).addTo(map);
    window.addEventListener("beforeprint", function () { map.invalidateSize({animate: false}); });
    map.attributionControl.setPrefix(false);
    // Built and escaped in Python: a fixed OSM notice and the escaped producer text.
    (cfg.attributions || []).forEach(function (html) { map.attributionControl.addAttribution(html); });
  }

  function background(map, data, renderer) {
    if (!data) { return null; }
    return L.geoJSON(data, {interactive: false, style: function () {
      return {color: "#6b6b6b", weight: 2, dashArray: "6 4", fill: true, fillColor: "#ffffff",
              fillOpacity: 0.5, renderer: renderer};
    }});
  }

  // --- reviewer map ----------------------------------------------------------------------------

  function josmUrl(props, feature) {
    var ids = [];
    [props.osm_id].concat((props.candidates || []).map(function (c) { return c.osm_id; }))
      .forEach(function (id) {
        var m = OSM_ID.exec(id || "");
        if (m && ids.indexOf(m[1][0] + m[2]) < 0) { ids.push(m[1][0] + m[2]); }
      });
    if (ids.length) { return "http://127.0.0.1:8111/load_object?objects=" + ids.join(","); }
    var b = L.geoJSON(feature).getBounds().pad(0.5);
    if (!b.isValid()) { return null; }
    var d = 0.0005;
    return "http://127.0.0.1:8111/zoom?left=" + (b.getWest() - d).toFixed(6) + "&right=" +
      (b.getEast() + d).toFixed(6) + "&top=" + (b.getNorth() + d).toFixed(6) + "&bottom=" +
      (b.getSouth() - d).toFixed(6);
  }

  function osmLink(id, text) {
    var m = OSM_ID.exec(id || "");
    return m ? link("https://www.openstreetmap.org/" + m[1] + "/" + m[2], text || id) : el("span", null, id);
  }

  function tagRows(props, t) {
    var rows = [];
    var changed = props.tags_changed || {}, added = props.tags_new || {}, kept = props.tags_kept || {};
    Object.keys(changed).sort().forEach(function (k) {
      rows.push([k, changed[k].old, changed[k].new, t.tag_changed, "s2o-changed"]);
    });
    Object.keys(added).sort().forEach(function (k) { rows.push([k, "", added[k], t.tag_new, "s2o-new"]); });
    Object.keys(kept).sort().forEach(function (k) {
      rows.push([k, kept[k].osm, kept[k].source, t.tag_kept, "s2o-kept"]);
    });
    var tags = props.tags || {};
    Object.keys(tags).sort().forEach(function (k) {
      if (!(k in changed) && !(k in added) && !(k in kept)) { rows.push([k, tags[k], tags[k], "", ""]); }
    });
    return rows;
  }

  function tagTable(props, t) {
    var rows = tagRows(props, t);
    if (!rows.length) { return null; }
    var table = el("table", "s2o-tags");
    var head = el("tr");
    [t.key, t.osm_value, t.proposed_value, ""].forEach(function (h) { head.appendChild(el("th", null, h)); });
    table.appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr", r[4]);
      for (var i = 0; i < 4; i++) { tr.appendChild(el("td", null, r[i])); }
      table.appendChild(tr);
    });
    return table;
  }

  function candidateList(props, cfg) {
    var t = cfg.texts, cands = props.candidates || [];
    if (!cands.length) { return null; }
    var box = el("div", "s2o-candidates");
    box.appendChild(el("div", "s2o-subtitle", t.candidates));
    var list = el("ul");
    cands.forEach(function (c) {
      var li = el("li");
      li.appendChild(osmLink(c.osm_id));
      var bits = [];
      if (c.distance_m !== null && c.distance_m !== undefined) { bits.push(num(c.distance_m, cfg.locale, 1) + " m"); }
      if (c.score !== null && c.score !== undefined) { bits.push(t.score + " " + num(c.score, cfg.locale, 2)); }
      li.appendChild(document.createTextNode(" — " + bits.join(", ")));
      list.appendChild(li);
    });
    box.appendChild(list);
    return box;
  }

  function reviewerPopup(feature, cfg) {
    var p = feature.properties || {}, t = cfg.texts;
    var root = el("div", "s2o-popup");
    var title = el("div", "s2o-popup-title");
    var entry = cfg.byKey[p.decision] || {label: p.decision, colour: "#999"};
    title.appendChild(swatch(entry.colour, "circle"));
    title.appendChild(el("span", "s2o-decision", entry.label));
    if (p.source_id !== null && p.source_id !== undefined) {
      title.appendChild(el("span", "s2o-source-id", t.source_id + " " + p.source_id));
    }
    root.appendChild(title);
    if (p.reason) { root.appendChild(el("p", "s2o-reason", p.reason)); }
    if (p.distance_m !== null && p.distance_m !== undefined) {
      root.appendChild(el("p", "s2o-distance", t.distance + t.colon + num(p.distance_m, cfg.locale, 1) + " m"));
    }
    var links = el("p", "s2o-links");
    if (OSM_ID.test(p.osm_id || "")) { links.appendChild(osmLink(p.osm_id, t.open_osm + " (" + p.osm_id + ")")); }
    var josm = josmUrl(p, feature);
    if (josm) {
      if (links.childNodes.length) { links.appendChild(document.createTextNode(" · ")); }
      links.appendChild(link(josm, t.open_josm));
    }
    root.appendChild(links);
    var table = tagTable(p, t);
    if (table) { root.appendChild(el("div", "s2o-subtitle", t.tags)); root.appendChild(table); }
    var cands = candidateList(p, cfg);
    if (cands) { root.appendChild(cands); }
    return root;
  }

  function reviewer(map, cfg) {
    var timings = {start: performance.now()};
    var data = readJson(cfg.data_id);
    timings.parsed = performance.now();
    var renderer = L.canvas({padding: 0.5});
    cfg.byKey = {};
    var byDecision = {};
    cfg.entries.forEach(function (entry) { cfg.byKey[entry.key] = entry; byDecision[entry.key] = []; });
    data.features.forEach(function (f) {
      if (f.geometry && byDecision[f.properties.decision]) { byDecision[f.properties.decision].push(f); }
    });
    var groups = [];
    cfg.entries.forEach(function (entry) {
      if (!byDecision[entry.key].length) { return; }
      entry.layer = layerFor(byDecision[entry.key], entry, renderer);
      bindInteractions(map, entry.layer, function (f) { return reviewerPopup(f, cfg); }, function (f) {
        var p = f.properties;
        return entry.label + (p.source_id ? " — " + p.source_id : "") + (p.osm_id ? " — " + p.osm_id : "");
      });
      groups.push(entry.layer);
    });
    timings.built = performance.now();
    attribution(map, cfg);
    legend(map, cfg.texts.legend_reviewer, cfg.entries);
    show(map, groups, timings);
    return {map: map, groups: groups, data: data, features: data.features.length, timings: timings};
  }

  // --- council map -----------------------------------------------------------------------------

  function councilPopup(feature, entry, cfg) {
    var root = el("div", "s2o-popup");
    var title = el("div", "s2o-popup-title");
    title.appendChild(swatch(entry.colour, entry.shape));
    title.appendChild(el("span", "s2o-category", entry.label));
    root.appendChild(title);
    var props = feature.properties || {};
    var table = el("table", "s2o-fields");
    cfg.popup_fields.forEach(function (name) {
      var value = props[name];
      if (value === null || value === undefined || value === "") { return; }
      var tr = el("tr");
      tr.appendChild(el("th", null, name));
      tr.appendChild(el("td", null, typeof value === "object" ? JSON.stringify(value) : value));
      table.appendChild(tr);
    });
    root.appendChild(table);
    return root;
  }

  function downloadLink(data, cfg) {
    var anchor = document.getElementById("s2o-download");
    if (!anchor) { return; }
    anchor.addEventListener("click", function () {
      // The data is inside the page: the download works from a USB stick or an e-mail too.
      var blob = new Blob([JSON.stringify(data)], {type: "application/geo+json"});
      anchor.href = URL.createObjectURL(blob);
      anchor.download = cfg.download_name;
    });
  }

  function council(map, cfg) {
    var timings = {start: performance.now()};
    var data = readJson(cfg.data_id);
    timings.parsed = performance.now();
    var renderer = L.canvas({padding: 0.5});
    var outline = background(map, cfg.background, renderer);
    var buckets = cfg.entries.map(function () { return []; });
    data.features.forEach(function (f, i) {
      var c = cfg.categories[i];
      if (f.geometry && c >= 0) { buckets[c].push(f); }
    });
    var groups = [];
    cfg.entries.forEach(function (entry, i) {
      if (!buckets[i].length) { return; }
      entry.layer = layerFor(buckets[i], entry, renderer);
      bindInteractions(map, entry.layer, function (f) { return councilPopup(f, entry, cfg); }, function (f) {
        var v = cfg.tooltip_field ? (f.properties || {})[cfg.tooltip_field] : null;
        return entry.label + (v !== null && v !== undefined && v !== "" ? " — " + v : "");
      });
      groups.push(entry.layer);
    });
    timings.built = performance.now();
    attribution(map, cfg);
    legend(map, cfg.texts.legend, cfg.entries);
    downloadLink(data, cfg);
    show(map, outline ? [outline].concat(groups) : groups, timings);
    return {map: map, groups: groups, data: data, features: data.features.length, timings: timings};
  }

  // Tests and curious users find the map here; rendered() counts features drawn on the map.
  window.sig2osm = {
    reviewer: function (map, cfg) { window.sig2osm.state = reviewer(map, cfg); },
    council: function (map, cfg) { window.sig2osm.state = council(map, cfg); },
    rendered: function () {
      var n = 0;
      window.sig2osm.state.map.eachLayer(function (l) {
        if (l instanceof PointLayer) { n += l.drawn; } else if (l.feature && l._s2oFeature) { n += 1; }
      });
      return n;
    },
    // Where a feature is (its first point), by the value of one of its properties.
    locate: function (field, value) {
      var found = null;
      window.sig2osm.state.data.features.forEach(function (f) {
        if (!found && f.geometry && (f.properties || {})[field] === value) { found = f; }
      });
      if (!found) { return null; }
      var c = pointsOf(found.geometry)[0] || L.geoJSON(found).getBounds().getCenter();
      return c.lat !== undefined ? c : L.latLng(c[1], c[0]);
    }
  };
}());
