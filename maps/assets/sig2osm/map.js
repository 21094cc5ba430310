/* sig2osm maps, part 5 of 5: the reviewer and council pages (AGPL-3.0-or-later).
 *
 * Safety rule: every string that comes from data reaches the page through textContent or a DOM
 * property, never through innerHTML; links are only built from validated OSM ids.
 */
(function () {
  "use strict";

  var lib = window.sig2osmLib, el = lib.el, link = lib.link, num = lib.num, swatch = lib.swatch;
  var PointLayer = lib.PointLayer, OSM_ID = lib.OSM_ID;

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

  // A popup kept clear of the controls beside it (the review panel on the left, the legend on
  // the right): Leaflet pans the map so that the popup and its buttons are not under them.
  function popupBeside(map) {
    var corner = function (name) {
      var box = map.getContainer().querySelector(".leaflet-top.leaflet-" + name);
      return box ? box.offsetWidth : 0;
    };
    return L.popup({maxWidth: 460, maxHeight: 440, autoPanPaddingTopLeft: [corner("left") + 8, 8],
                    autoPanPaddingBottomRight: [corner("right") + 8, 8]});
  }

  function bindInteractions(map, group, popup, tooltip, at) {
    var tip = L.tooltip({direction: "top", offset: [0, -6]}), current = null;
    at = at || featureAt;
    group.on("click", function (e) {
      var hit = at(e);
      map.closeTooltip(tip);
      current = null;
      var content = popup(hit.feature, hit);
      if (content) {
        popupBeside(map).setLatLng(hit.at).setContent(content).openOn(map);
      }
    });
    group.on("mousemove", function (e) {
      var hit = at(e);
      if (hit.feature !== current) {
        current = hit.feature;
        tip.setContent(el("span", null, tooltip(hit.feature, hit)));
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
        if (entry.heading) { box.appendChild(el("div", "s2o-legend-title s2o-legend-sub", entry.heading)); return; }
        var row = el("label", "s2o-legend-row");
        var box2 = el("input");
        box2.type = "checkbox";
        box2.checked = true;
        box2.disabled = !entry.layer;
        box2.addEventListener("change", function () {
          if (box2.checked) { map.addLayer(entry.layer); } else { map.removeLayer(entry.layer); }
        });
        row.appendChild(box2);
        row.appendChild(swatch(entry.colour, entry.shape, entry.stroke));
        row.appendChild(el("span", "s2o-legend-label", entry.label));
        if (entry.count !== undefined) {
          row.appendChild(el("span", "s2o-legend-count", num(entry.count, document.documentElement.lang, 0)));
        }
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
  function show(map, groups, timings, extra) {
    var bounds = L.latLngBounds([]);
    groups.forEach(function (g) { if (g.getLayers().length) { bounds.extend(g.getBounds()); } });
    if (bounds.isValid()) { map.fitBounds(bounds, {padding: [24, 24], maxZoom: 18, animate: false}); }
    (extra || []).concat(groups).forEach(function (g) { g.addTo(map); });
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

  function background(data, renderer) {
    if (!data) { return null; }
    return L.geoJSON(data, {interactive: false, style: function () {
      return {color: "#6b6b6b", weight: 2, dashArray: "6 4", fill: true, fillColor: "#ffffff",
              fillOpacity: 0.5, renderer: renderer};
    }});
  }

  function coverageLayer(geometry, renderer) {
    if (!geometry) { return null; }
    return L.geoJSON(geometry, {interactive: false, style: function () {
      return {color: "#444", weight: 1.5, dashArray: "8 5", fill: false, renderer: renderer};
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

  function tagRows(props, t) {
    var rows = [];
    var changed = props.tags_changed || {}, added = props.tags_new || {}, kept = props.tags_kept || {};
    var removed = props.tags_removed || {};
    Object.keys(changed).sort().forEach(function (k) {
      rows.push([k, changed[k].old, changed[k].new, t.tag_changed, "s2o-changed"]);
    });
    Object.keys(added).sort().forEach(function (k) { rows.push([k, "", added[k], t.tag_new, "s2o-new"]); });
    Object.keys(removed).sort().forEach(function (k) { rows.push([k, removed[k], "", t.tag_removed, "s2o-removed"]); });
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

  function candidateList(props, cfg, review, i) {
    var t = cfg.texts, cands = props.candidates || [];
    if (!cands.length) { return null; }
    var box = el("div", "s2o-candidates");
    box.appendChild(el("div", "s2o-subtitle", t.candidates));
    var list = el("ol");
    cands.forEach(function (c) {
      var li = el("li");
      li.appendChild(lib.osmLink(c.osm_id));
      var bits = [];
      if (c.distance_m !== null && c.distance_m !== undefined) { bits.push(num(c.distance_m, cfg.locale, 1) + " m"); }
      if (c.score !== null && c.score !== undefined) { bits.push(t.score + " " + num(c.score, cfg.locale, 2)); }
      li.appendChild(document.createTextNode(" — " + bits.join(", ")));
      if (review && review.reviewable(i) && OSM_ID.test(c.osm_id || "")) {
        li.appendChild(document.createTextNode(" "));
        li.appendChild(lib.button(t.this_one, "s2o-this-one", function () {
          review.pos = review.queue.indexOf(i);
          review.choose("match", c.osm_id);
        }));
      }
      list.appendChild(li);
    });
    box.appendChild(list);
    return box;
  }

  function reasonText(p, cfg) {
    return Array.isArray(p.why) && p.why.length ? lib.sayWhy(p.why, cfg.reasons, cfg.locale) : p.reason;
  }

  // The matched OSM object beside the source feature: the pair a line joins.
  function pairedObject(p, cfg, osm) {
    var object = p.decision !== "missing" && osm.byKey[p.osm_id];
    if (!object) { return null; }
    var t = cfg.texts, box = el("div", "s2o-pair");
    var title = el("div", "s2o-subtitle");
    title.appendChild(el("span", null, t.osm_object + " "));
    title.appendChild(lib.osmLink(p.osm_id));
    title.appendChild(el("span", "s2o-source-id", " " + t.version + " " + object.properties.version));
    box.appendChild(title);
    var tags = lib.keyValues(object.properties.tags, [t.key, t.osm_value]);
    if (tags) { box.appendChild(tags); }
    return box;
  }

  function reviewerPopup(i, cfg, osm, review) {
    var feature = cfg.features[i], p = feature.properties || {}, t = cfg.texts;
    var root = el("div", "s2o-popup");
    var title = el("div", "s2o-popup-title");
    var entry = cfg.byKey[p.decision] || {label: p.decision, colour: "#999"};
    title.appendChild(swatch(entry.colour, "circle"));
    title.appendChild(el("span", "s2o-decision", entry.label));
    if (p.source_id !== null && p.source_id !== undefined) {
      title.appendChild(el("span", "s2o-source-id", t.source_id + " " + p.source_id));
    }
    root.appendChild(title);
    var why = reasonText(p, cfg);
    if (why) { root.appendChild(el("p", "s2o-reason", why)); }
    if (p.distance_m !== null && p.distance_m !== undefined) {
      root.appendChild(el("p", "s2o-distance", t.distance + t.colon + num(p.distance_m, cfg.locale, 1) + " m"));
    }
    if (p.decision === "skip") {  // nothing of it is to upload: no link to JOSM, no "added"
      root.appendChild(el("p", "s2o-note", t.skip_note));
      var proposed = lib.keyValues(p.tags, [t.key, t.proposed_value]);
      if (proposed) { root.appendChild(el("div", "s2o-subtitle", t.proposed_tags)); root.appendChild(proposed); }
      return root;
    }
    var links = el("p", "s2o-links");
    if (OSM_ID.test(p.osm_id || "")) { links.appendChild(lib.osmLink(p.osm_id, t.open_osm + " (" + p.osm_id + ")")); }
    var josm = josmUrl(p, feature);
    if (josm) {
      if (links.childNodes.length) { links.appendChild(document.createTextNode(" · ")); }
      links.appendChild(link(josm, t.open_josm));
    }
    root.appendChild(links);
    if (review && review.reviewable(i)) {
      var choice = review.choiceOf(i);
      if (choice) { root.appendChild(el("p", "s2o-choice s2o-choice-" + choice.decision, review.describeChoice(choice))); }
      root.appendChild(review.actions(i));
    }
    var table = tagTable(p, t);
    if (table) { root.appendChild(el("div", "s2o-subtitle", t.tags)); root.appendChild(table); }
    var pair = pairedObject(p, cfg, osm);
    if (pair) { root.appendChild(pair); }
    var cands = candidateList(p, cfg, review, i);
    if (cands) { root.appendChild(cands); }
    return root;
  }

  function describeSource(i, cfg) {
    var p = cfg.features[i].properties || {}, entry = cfg.byKey[p.decision] || {label: p.decision};
    var li = el("li");
    li.appendChild(el("strong", null, entry.label));
    li.appendChild(el("span", null, " " + cfg.texts.source_id + " " + p.source_id + " — " + reasonText(p, cfg)));
    return li;
  }

  function osmLegend(cfg, osmParts, links, context, coverage) {
    var t = cfg.texts, C = lib.COLOURS, rows = [{heading: "OpenStreetMap"}];
    osmParts.forEach(function (part) {
      rows.push({label: part.compared ? t.osm_compared : t.osm_objects, colour: part.compared ? C.compared : C.other,
                 shape: "diamond", count: part.count, layer: part.group});
    });
    if (links.match.links.length) {
      rows.push({label: t.links, colour: C.match, shape: "line", count: links.match.links.length, layer: links.match});
    }
    if (links.candidate.links.length) {
      rows.push({label: t.candidates, colour: C.candidate, shape: "dashed", count: links.candidate.links.length,
                 layer: links.candidate});
    }
    if (coverage) { rows.push({label: t.coverage, colour: "#444", shape: "dashed", layer: coverage}); }
    if (context) { rows.push({label: t.background, colour: "#bbb1a6", shape: "line", layer: context}); }
    return rows;
  }

  function reviewer(map, cfg) {
    var timings = {start: performance.now()};
    var data = lib.readJson(cfg.data_id), extra = lib.readJson(cfg.osm_id) || {};
    timings.parsed = performance.now();
    var renderer = L.canvas({padding: 0.5});
    cfg.features = data.features;
    cfg.byKey = {};
    var byDecision = {};
    cfg.entries.forEach(function (entry) { cfg.byKey[entry.key] = entry; byDecision[entry.key] = []; });
    var index = new Map();
    data.features.forEach(function (f, i) {
      index.set(f, i);
      if (f.geometry && byDecision[f.properties.decision]) { byDecision[f.properties.decision].push(f); }
    });
    var osm = lib.osmFeatures(extra.objects, extra.tagsets);
    var named = lib.linksOf(data.features, osm.byKey);
    var links = {};
    ["match", "candidate"].forEach(function (kind) {
      links[kind] = new lib.LinkLayer(named.links.filter(function (l) { return l.kind === kind; }), data.features,
        osm.byKey, {renderer: renderer, color: lib.COLOURS[kind], weight: kind === "match" ? 2.5 : 2,
                    dashArray: kind === "candidate" ? "5 4" : null});
    });
    var locate = function (i) {
      var c = lib.firstPoint(data.features[i].geometry);
      return L.latLng(c[1], c[0]);
    };
    var state = {map: map, cfg: cfg, features: data.features, osm: osm, renderer: renderer, locate: locate};
    var open = state.open = function (i) {
      popupBeside(map).setLatLng(locate(i))
        .setContent(reviewerPopup(i, cfg, osm, state.review)).openOn(map);
    };
    var groups = [];
    cfg.entries.forEach(function (entry) {
      if (!byDecision[entry.key].length) { return; }
      entry.layer = layerFor(byDecision[entry.key], entry, renderer);
      bindInteractions(map, entry.layer, function (f, hit) {
        return reviewerPopup(index.get(f), cfg, osm, state.review);
      }, function (f) {
        var p = f.properties;
        return entry.label + (p.source_id ? " — " + p.source_id : "") + (p.osm_id ? " — " + p.osm_id : "");
      });
      groups.push(entry.layer);
    });
    var osmParts = lib.osmLayers(osm, named.named, renderer);
    osmParts.forEach(function (part) {
      bindInteractions(map, part.group, function (f) {
        if (state.review && state.review.picked(f.properties.osm_id)) { return null; }
        return lib.osmPopup(f, (named.named[f.properties.osm_id] || []), cfg,
                            function (i) { return describeSource(i, cfg); });
      }, function (f) { return f.properties.osm_id; }, lib.osmAt);
    });
    ["match", "candidate"].forEach(function (kind) {
      bindInteractions(map, links[kind], function (f, hit) {
        var chosen = links[kind].links[hit.index];
        var root = reviewerPopup(chosen.feature, cfg, osm, state.review);
        root.appendChild(lib.osmPopup(osm.byKey[chosen.osm], [], cfg, null));
        return root;
      }, function (f, hit) {
        var chosen = links[kind].links[hit.index];
        return (data.features[chosen.feature].properties.source_id || "") + " — " + chosen.osm;
      }, function (e) {
        var layer = e.layer || e.propagatedFrom;
        return {feature: layer.links[layer.hit], index: layer.hit, at: layer.hitLatLng};
      });
    });
    var context = extra.context ? new lib.ContextLayer(extra.context) : null;
    var coverage = coverageLayer(extra.coverage, renderer);
    timings.built = performance.now();
    attribution(map, cfg);
    var osmGroups = osmParts.map(function (part) { return part.group; });
    legend(map, cfg.texts.legend_reviewer, cfg.entries.concat(
      osmLegend(cfg, osmParts, links, context, coverage)));
    var under = [context, coverage, links.candidate, links.match].filter(Boolean).concat(osmGroups);
    show(map, groups, timings, under);
    state.review = new lib.Review(state);
    state.review.changed();
    return {map: map, groups: groups, data: data, features: data.features.length, timings: timings,
            osm: osm, osmParts: osmParts, links: links, context: context, coverage: coverage,
            review: state.review, locate: locate};
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
    var data = lib.readJson(cfg.data_id), extra = lib.readJson(cfg.osm_id) || {};
    timings.parsed = performance.now();
    var renderer = L.canvas({padding: 0.5});
    var outline = background(cfg.background, renderer);
    var context = extra.context ? new lib.ContextLayer(extra.context) : null;
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
    show(map, outline ? [outline].concat(groups) : groups, timings, context ? [context] : []);
    return {map: map, groups: groups, data: data, features: data.features.length, timings: timings,
            context: context};
  }

  // --- the overview of a reviewer map in parts ---------------------------------------------------

  // Each part's area, coloured by what is left to review in it; a click gives its counts and
  // the link that opens it (file names are ours: "maps/NNN.html").
  function overview(map, cfg) {
    var timings = {start: performance.now()};
    var data = lib.readJson(cfg.data_id), t = cfg.texts;
    timings.parsed = performance.now();
    var renderer = L.canvas({padding: 0.5});
    var rows = {};
    cfg.parts.forEach(function (row) { rows[row.number] = row; });
    var colour = function (row) {
      return row.counts.review ? cfg.colours.review : row.counts.create || row.counts.modify ?
        cfg.colours.create : cfg.colours.unchanged;
    };
    var areas = L.geoJSON(data, {
      style: function (f) {
        return {color: colour(rows[f.properties.part]), weight: 2, fillOpacity: 0.2, renderer: renderer};
      },
      onEachFeature: function (f, layer) {
        layer._s2oFeature = f;
        layer.bindTooltip(el("span", null, String(f.properties.part)),  // its number, always shown
                          {permanent: true, direction: "center", className: "s2o-part-label", interactive: false});
      }
    });
    var popup = function (f) {
      var row = rows[f.properties.part], root = el("div", "s2o-popup");
      root.appendChild(el("div", "s2o-popup-title", lib.fill(t.part_short, {n: row.number}) + " — " +
                          num(row.count, cfg.locale) + " " + t.features.toLowerCase()));
      var list = el("ul", "s2o-linked");
      Object.keys(row.counts).forEach(function (d) {
        list.appendChild(el("li", null, (t[d] || d) + t.colon + num(row.counts[d], cfg.locale)));
      });
      root.appendChild(list);
      if (/^maps\/[0-9]{3,}\.html$/.test(row.file)) {
        var open = link(row.file, lib.fill(t.open_part, {n: row.number}));
        open.className = "s2o-open-part";
        open.removeAttribute("target");
        root.appendChild(open);
      }
      return root;
    };
    bindInteractions(map, areas, popup, function (f) {
      var row = rows[f.properties.part];
      return lib.fill(t.part_short, {n: row.number}) + " — " + num(row.counts.review || 0, cfg.locale) +
        " " + t.review.toLowerCase();
    });
    var coverage = coverageLayer(cfg.coverage, renderer);
    timings.built = performance.now();
    attribution(map, cfg);
    legend(map, cfg.texts.legend_reviewer, cfg.entries);
    show(map, [areas], timings, coverage ? [coverage] : []);
    return {map: map, groups: [areas], data: data, features: data.features.length, timings: timings,
            parts: cfg.parts, coverage: coverage};
  }

  // Tests and curious users find the map here; rendered() counts features drawn on the map.
  window.sig2osm = {
    reviewer: function (map, cfg) { window.sig2osm.state = reviewer(map, cfg); },
    council: function (map, cfg) { window.sig2osm.state = council(map, cfg); },
    overview: function (map, cfg) { window.sig2osm.state = overview(map, cfg); },
    rendered: function () {
      var n = 0;
      window.sig2osm.state.map.eachLayer(function (l) {
        if (l instanceof PointLayer && !l.options.osm) { n += l.drawn; } else if (l.feature && l._s2oFeature) { n += 1; }
      });
      return n;
    },
    // What is drawn besides the features: OSM objects, lines, background (in view, last pass).
    counts: function () {
      var s = window.sig2osm.state, result = {osm_objects: 0, osm_compared: 0, osm_drawn: 0, links: 0,
                                              candidate_links: 0, links_drawn: 0, coverage: !!s.coverage};
      (s.osmParts || []).forEach(function (part) {
        result[part.compared ? "osm_compared" : "osm_objects"] += part.count;
        part.group.eachLayer(function (l) {
          if (l instanceof PointLayer) { result.osm_drawn += l.drawn; } else if (l.eachLayer) { l.eachLayer(function () { result.osm_drawn += 1; }); }
        });
      });
      result.osm_objects += result.osm_compared;
      if (s.links) {
        result.links = s.links.match.links.length;
        result.candidate_links = s.links.candidate.links.length;
        result.links_drawn = s.links.match.drawn + s.links.candidate.drawn;
      }
      result.context = s.context ? {total: s.context.counts, drawn: s.context.drawn} : null;
      return result;
    },
    // Where a feature is (its first point), by the value of one of its properties.
    locate: function (field, value) {
      var found = null;
      window.sig2osm.state.data.features.forEach(function (f) {
        if (!found && f.geometry && (f.properties || {})[field] === value) { found = f; }
      });
      if (!found) { return null; }
      var c = lib.pointsOf(found.geometry)[0] || L.geoJSON(found).getBounds().getCenter();
      return c.lat !== undefined ? c : L.latLng(c[1], c[0]);
    },
    // Where an OSM object is (its point, or its first vertex), by its id.
    locateOsm: function (key) {
      var f = window.sig2osm.state.osm && window.sig2osm.state.osm.byKey[key];
      var c = f && lib.firstPoint(f.geometry);
      return c ? L.latLng(c[1], c[0]) : null;
    }
  };
}());
