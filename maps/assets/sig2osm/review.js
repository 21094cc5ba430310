/* sig2osm maps, part 4 of 5: reviewing in the page (AGPL-3.0-or-later).
 *
 * Each `review` (and, on request, each create and modify) in turn, in the page's area order;
 * accept, reject, "this is that OSM object" (picked on the map), "new object"; keyboard
 * shortcuts; progress; bulk choices for a selected area or a whole kind of review; choices kept
 * in the browser's local storage; "Download decisions" writes the `match.decisions` file the
 * next run reads (YAML, or CSV when the profile's file is a .csv), earlier decisions kept.
 */
(function () {
  "use strict";

  var lib = window.sig2osmLib, el = lib.el, button = lib.button, OSM_ID = lib.OSM_ID;
  var ACTIONS = {accept: 1, reject: 1, match: 1, create: 1};
  var CHOICE_COLOURS = {accept: "#1a9641", reject: "#d7191c", match: "#6a3d9a", create: "#1a9641"};

  function today() {
    var d = new Date(), pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  }

  // A YAML double-quoted scalar holding `text` exactly: every character outside printable
  // ASCII escaped (\uXXXX, \UXXXXXXXX beyond the BMP), so no line break or quote of the data
  // can end it.
  function yamlQuote(text) {
    var out = '"';
    for (var ch of String(text)) {
      var code = ch.codePointAt(0);
      if (ch === '"' || ch === "\\") { out += "\\" + ch; }
      else if (code >= 0x20 && code < 0x7f) { out += ch; }
      else if (code > 0xffff) { out += "\\U" + ("0000000" + code.toString(16)).slice(-8); }
      else { out += "\\u" + ("000" + code.toString(16)).slice(-4); }
    }
    return out + '"';
  }

  function csvField(text) {
    var s = text === null || text === undefined ? "" : String(text);
    return /[",\r\n]|^\s|\s$/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  // Decided features drawn as rings (accept, create: green; reject: red; match: purple).
  var ChoiceLayer = L.Path.extend({
    options: {interactive: false, fill: false},

    initialize: function (options) {
      L.setOptions(this, options);
      this._items = [];
      this._points = [];
    },

    setItems: function (items) {
      this._items = items;
      if (this._map) { this._project(); this.redraw(); }
    },

    _project: function () {
      var map = this._map;
      this._points = this._items.map(function (item) { return map.latLngToLayerPoint(item.at); });
      var b = L.bounds(this._points.length ? this._points : [[0, 0]]);
      this._pxBounds = this._points.length ? L.bounds(b.min.subtract([14, 14]), b.max.add([14, 14])) : null;
    },

    _update: function () { if (this._map) { this._updatePath(); } },

    _empty: function () { return !this._points.length; },

    _updatePath: function () {
      var renderer = this._renderer;
      if (!renderer._drawing || this._empty()) { return; }
      var ctx = renderer._ctx, items = this._items;
      ctx.lineWidth = 3;
      this._points.forEach(function (p, i) {
        ctx.beginPath();
        ctx.strokeStyle = CHOICE_COLOURS[items[i].decision] || "#333";
        ctx.arc(p.x, p.y, 10, 0, Math.PI * 2, false);
        if (items[i].decision === "reject") {
          ctx.moveTo(p.x - 7, p.y - 7); ctx.lineTo(p.x + 7, p.y + 7);
        }
        ctx.stroke();
      });
    }
  });

  // `ctx`: {map, cfg, features, osm (byKey), locate(i), open(i), renderer}.
  function Review(ctx) {
    this.ctx = ctx;
    this.map = ctx.map;
    this.t = ctx.cfg.texts;
    this.setup = ctx.cfg.review || {name: "", file_name: "decisions.yml", kind: "yaml", earlier: {}};
    this.earlier = this.setup.earlier || {};
    this.choices = {};  // source id -> {decision, osm, date}; decision "none": an earlier one withdrawn
    this.touched = {};  // the source ids chosen or undone here since the last save
    this.includeAll = false;
    this.queue = [];
    this.pos = -1;
    this.mode = null;  // "pick" (an OSM object for the current item) or "select" (an area)
    this.selected = [];
    this.stored = this._load();
    this.choiceLayer = new ChoiceLayer({renderer: ctx.renderer}).addTo(this.map);
    this.marker = L.circleMarker([0, 0], {radius: 16, color: "#111", weight: 2.5, fill: false,
                                          dashArray: "4 3", interactive: false, renderer: ctx.renderer});
    this._build();
    this.rebuild();
    var self = this;
    document.addEventListener("keydown", function (e) { self.onKey(e); });
    // Another page of the same run (a part of a big run's map) saved its choices: show them.
    window.addEventListener("storage", function (e) {
      if (e.key === self._storageKey()) { self._load(); self.redraw(); }
    });
  }

  Review.prototype = {
    // --- state --------------------------------------------------------------------------------

    _storageKey: function () { return "sig2osm-review:" + this.setup.name; },

    _load: function () {
      try {
        var saved = JSON.parse(window.localStorage.getItem(this._storageKey()) || "{}");
        if (saved && typeof saved.choices === "object" && saved.choices) { this.choices = saved.choices; }
        this.includeAll = !!(saved && saved.includeAll);
        return true;
      } catch (err) {
        return false;  // no local storage (a locked-down browser): choices live in the page only
      }
    },

    // Saved into what is stored now, so that the pages of one run (the parts of a big run's
    // map, open side by side) add to each other's choices instead of overwriting them.
    _save: function () {
      try {
        var key = this._storageKey(), saved = JSON.parse(window.localStorage.getItem(key) || "{}");
        var choices = saved && typeof saved.choices === "object" && saved.choices ? saved.choices : {};
        var self = this;
        Object.keys(this.touched).forEach(function (id) {
          if (self.choices[id]) { choices[id] = self.choices[id]; } else { delete choices[id]; }
        });
        this.touched = {};
        this.choices = choices;
        window.localStorage.setItem(key, JSON.stringify({choices: choices, includeAll: this.includeAll}));
      } catch (err) { this.stored = false; }
    },

    sourceId: function (i) {
      var id = (this.ctx.features[i].properties || {}).source_id;
      return id === null || id === undefined ? null : String(id);
    },

    // The choice in force for feature i: the page's, else the decisions file's.
    choiceOf: function (i) {
      var id = this.sourceId(i);
      if (id === null) { return null; }
      var own = this.choices[id];
      if (own) { return own.decision === "none" ? null : own; }
      var old = this.earlier[id];
      return old ? {decision: old.action, osm: old.osm_key, date: old.date, note: old.note, earlier: true} : null;
    },

    reviewable: function (i) {
      var p = this.ctx.features[i].properties || {};
      if (this.sourceId(i) === null || !this.ctx.features[i].geometry) { return false; }
      return p.decision === "review" || (this.includeAll && (p.decision === "create" || p.decision === "modify"));
    },

    rebuild: function () {
      var self = this, current = this.queue[this.pos];
      this.queue = (this.ctx.cfg.order || []).filter(function (i) { return self.reviewable(i); });
      this.pos = Math.max(this.queue.indexOf(current), -1);
      this._categories();
      this.refresh();
    },

    done: function () {
      var self = this;
      return this.queue.filter(function (i) { return self.choiceOf(i); }).length;
    },

    // --- moving through the queue ---------------------------------------------------------

    go: function (pos) {
      if (!this.queue.length) { return; }
      this.pos = (pos + this.queue.length) % this.queue.length;
      var i = this.queue[this.pos];
      this.marker.setLatLng(this.ctx.locate(i)).addTo(this.map);
      this.ctx.open(i);
      this.refresh();
    },

    next: function () { this.go(this.pos + 1); },

    previous: function () { this.go(this.pos < 0 ? -1 : this.pos - 1); },

    nextUndecided: function () {
      for (var step = 1; step <= this.queue.length; step++) {
        var pos = (this.pos + step) % this.queue.length;
        if (!this.choiceOf(this.queue[pos])) { this.go(pos); return; }
      }
      this.refresh();  // everything decided
    },

    current: function () { return this.pos >= 0 ? this.queue[this.pos] : null; },

    // --- choosing -------------------------------------------------------------------------

    set: function (i, decision, osm) {
      var id = this.sourceId(i);
      if (id === null) { return; }
      this.choices[id] = {decision: decision, osm: osm || null, date: today()};
      this.touched[id] = true;
    },

    choose: function (decision, osm) {
      var i = this.current();
      if (i === null) { this.go(0); return; }
      this.set(i, decision, osm);
      this.mode = null;
      this.changed();
      this.nextUndecided();
    },

    // "This is that OSM object": the next click on an OSM object answers.
    pick: function () {
      if (this.current() === null) { return; }
      this.mode = "pick";
      this.map.getContainer().classList.add("s2o-picking");
      this.refresh();
    },

    picked: function (key) {
      if (this.mode !== "pick" || !OSM_ID.test(key || "")) { return false; }
      this.map.getContainer().classList.remove("s2o-picking");
      this.choose("match", key);
      return true;
    },

    candidate: function (k) {
      var i = this.current();
      if (i === null) { return; }
      var c = ((this.ctx.features[i].properties || {}).candidates || [])[k - 1];
      if (c && OSM_ID.test(c.osm_id || "")) { this.choose("match", c.osm_id); }
    },

    undo: function () {
      var i = this.current(), id = i === null ? null : this.sourceId(i);
      if (id === null) { return; }
      this.touched[id] = true;
      if (this.choices[id] && this.choices[id].decision !== "none") {
        delete this.choices[id];
        if (this.earlier[id]) { this.choices[id] = {decision: "none"}; }
      } else if (this.earlier[id]) {
        this.choices[id] = {decision: "none"};
      }
      this.changed();
    },

    bulk: function (items, decision) {
      var self = this;
      items.forEach(function (i) { self.set(i, decision, null); });
      this.changed();
    },

    cancel: function () {
      this.mode = null;
      this.map.getContainer().classList.remove("s2o-picking");
      if (this._box) { this.map.removeLayer(this._box); this._box = null; }
      this.map.dragging.enable();
      this.refresh();
    },

    changed: function () {
      this._save();
      this.redraw();
    },

    redraw: function () {
      var self = this;
      var items = [];
      this.ctx.features.forEach(function (f, i) {
        var choice = f.geometry && self.choiceOf(i);
        if (choice) { items.push({at: self.ctx.locate(i), decision: choice.decision}); }
      });
      this.choiceLayer.setItems(items);
      this.refresh();
    },

    // --- bulk: an area, a kind ------------------------------------------------------------

    selectArea: function () {
      var self = this, map = this.map, start = null;
      this.cancel();
      this.mode = "select";
      map.dragging.disable();
      var down = function (e) {
        start = e.latlng;
        self._box = L.rectangle([start, start], {interactive: false, color: "#1f77b4", weight: 1.5,
                                                  dashArray: "4 3", fillOpacity: 0.08}).addTo(map);
      };
      var move = function (e) { if (start && self._box) { self._box.setBounds([start, e.latlng]); } };
      var up = function (e) {
        map.off("mousedown", down).off("mousemove", move).off("mouseup", up);
        if (!start) { return; }
        var bounds = L.latLngBounds(start, e.latlng);
        self.selected = self.queue.filter(function (i) { return bounds.contains(self.ctx.locate(i)); });
        self.cancel();
      };
      map.on("mousedown", down).on("mousemove", move).on("mouseup", up);
      this.refresh();
    },

    _kindOf: function (i) {
      var p = this.ctx.features[i].properties || {}, words = this.ctx.cfg.reasons;
      var codes = (p.why || []).slice(0, 2).map(function (r) { return r && r.code; });
      var labels = [];
      codes.forEach(function (code) {
        var label = words.kinds[code];
        if (label && labels.indexOf(label) < 0) { labels.push(label); }
      });
      var entry = this.ctx.cfg.byKey[p.decision] || {label: p.decision};
      return {key: p.decision + "|" + codes.join(">"),
              label: [entry.label].concat(labels.length ? labels : [this.t.other_reason]).join(" · ")};
    },

    _categories: function () {
      var self = this, found = {};
      this.queue.forEach(function (i) {
        var kind = self._kindOf(i);
        (found[kind.key] = found[kind.key] || {label: kind.label, items: []}).items.push(i);
      });
      this.kinds = found;
      var select = this.ui.kind;
      select.textContent = "";
      Object.keys(found).sort().forEach(function (key) {
        var option = el("option", null, found[key].label + " (" + found[key].items.length + ")");
        option.value = key;
        select.appendChild(option);
      });
    },

    // --- the decisions file ---------------------------------------------------------------

    entries: function () {
      var self = this, result = [], seen = {};
      this.ctx.features.forEach(function (f, i) {
        var id = self.sourceId(i), choice = self.choiceOf(i);
        if (id === null || seen[id]) { return; }
        seen[id] = true;
        if (choice && ACTIONS[choice.decision]) { result.push([id, choice]); }
      });
      // Decided but not on this page: in another part of the map, or no longer in the layer.
      var others = {};
      Object.keys(this.earlier).concat(Object.keys(this.choices)).forEach(function (id) { others[id] = true; });
      Object.keys(others).sort().forEach(function (id) {
        var old = self.earlier[id], own = self.choices[id];
        if (seen[id]) { return; }
        if (own) {
          if (ACTIONS[own.decision]) { result.push([id, own]); }
        } else {
          result.push([id, {decision: old.action, osm: old.osm_key, date: old.date, note: old.note}]);
        }
      });
      return result;
    },

    decisionsText: function () {
      var entries = this.entries();
      if (this.setup.kind === "csv") {
        return "source_id,decision,osm_id,date,note\n" + entries.map(function (e) {
          var c = e[1];
          return [e[0], c.decision, c.osm, c.date, c.note].map(csvField).join(",");
        }).join("\n") + (entries.length ? "\n" : "");
      }
      var head = "# sig2osm reviewer decisions (match.decisions) for " +
        String(this.setup.name).replace(/[\u0000-\u001f\u0085\u2028\u2029]/g, " ") + "\n";
      return head + entries.map(function (e) {
        var c = e[1], parts = ["decision: " + c.decision];
        if (c.osm && OSM_ID.test(c.osm)) { parts.push("osm: " + c.osm); }
        if (c.date && /^\d{4}-\d{2}-\d{2}$/.test(c.date)) { parts.push("date: " + c.date); }
        if (c.note) { parts.push("note: " + yamlQuote(c.note)); }
        return yamlQuote(e[0]) + ": {" + parts.join(", ") + "}";
      }).join("\n") + "\n";
    },

    download: function () {
      var blob = new Blob([this.decisionsText()], {type: "text/plain;charset=utf-8"});
      var a = el("a");
      a.href = URL.createObjectURL(blob);
      a.download = this.setup.file_name;
      document.body.appendChild(a);
      a.click();
      a.remove();
    },

    // --- keyboard ---------------------------------------------------------------------------

    onKey: function (e) {
      var target = e.target && e.target.tagName;
      if (e.ctrlKey || e.metaKey || e.altKey || target === "INPUT" || target === "SELECT" || target === "TEXTAREA") {
        return;
      }
      var keys = {
        n: this.next, p: this.previous, a: function () { this.choose("accept"); },
        r: function () { this.choose("reject"); }, c: function () { this.choose("create"); },
        m: this.pick, u: this.undo, Backspace: this.undo, s: this.selectArea, Escape: this.cancel
      };
      var action = keys[e.key];
      if (!action && /^[1-5]$/.test(e.key)) {
        action = function () { this.candidate(Number(e.key)); };
      }
      if (action) {
        e.preventDefault();
        action.call(this);
      }
    },

    // --- the panel ----------------------------------------------------------------------------

    _build: function () {
      var self = this, t = this.t, ui = this.ui = {};
      var control = L.control({position: "topleft"});
      control.onAdd = function () {
        var box = ui.box = el("div", "s2o-review leaflet-bar");
        var title = el("div", "s2o-legend-title s2o-review-title", t.review_panel);
        title.appendChild(button("−", "s2o-fold", function () {
          box.classList.toggle("s2o-folded");
          this.textContent = box.classList.contains("s2o-folded") ? "+" : "−";
        }));
        box.appendChild(title);
        ui.progress = el("div", "s2o-progress");
        ui.bar = el("div", "s2o-bar");
        ui.fill = el("div", "s2o-bar-fill");
        ui.bar.appendChild(ui.fill);
        box.appendChild(ui.progress);
        box.appendChild(ui.bar);
        var all = el("label", "s2o-include");
        ui.includeAll = el("input");
        ui.includeAll.type = "checkbox";
        ui.includeAll.checked = self.includeAll;
        ui.includeAll.addEventListener("change", function () {
          self.includeAll = ui.includeAll.checked;
          ui.includeAll.blur();  // the keys go on working
          self._save();
          self.rebuild();
        });
        all.appendChild(ui.includeAll);
        all.appendChild(el("span", null, " " + t.include_all));
        box.appendChild(all);
        var work = ui.work = el("div", "s2o-work");  // hidden while nothing is to review
        ui.item = el("div", "s2o-item");
        work.appendChild(ui.item);
        ui.hint = el("div", "s2o-hint");
        work.appendChild(ui.hint);
        work.appendChild(self.actions());
        var nav = el("div", "s2o-row");
        nav.appendChild(button("← " + t.previous + " (p)", "s2o-nav", function () { self.previous(); }));
        nav.appendChild(button(t.next + " (n) →", "s2o-nav", function () { self.next(); }));
        nav.appendChild(button(t.undo + " (u)", "s2o-nav", function () { self.undo(); }));
        work.appendChild(nav);
        work.appendChild(self._bulkRow());
        box.appendChild(work);
        ui.download = button(t.download_decisions, "s2o-download-decisions", function () { self.download(); });
        box.appendChild(ui.download);
        if (!self.stored) { box.appendChild(el("div", "s2o-hint s2o-note", t.storage_off)); }
        work.appendChild(el("div", "s2o-keys", t.keys));
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        return box;
      };
      control.addTo(this.map);
    },

    // The four choices as buttons (the panel's, and each reviewable popup's, for feature i).
    actions: function (i) {
      var self = this, t = this.t, row = el("div", "s2o-row s2o-actions-row");
      var on = function (fn) {
        return function () {
          if (i !== undefined && i !== self.current()) { self.pos = self.queue.indexOf(i); }
          fn.call(self);
        };
      };
      row.appendChild(button(t.accept + " (a)", "s2o-accept", on(function () { this.choose("accept"); })));
      row.appendChild(button(t.reject + " (r)", "s2o-reject", on(function () { this.choose("reject"); })));
      row.appendChild(button(t.match + " (m)", "s2o-match", on(this.pick)));
      row.appendChild(button(t.create_new + " (c)", "s2o-create", on(function () { this.choose("create"); })));
      return row;
    },

    _bulkRow: function () {
      var self = this, t = this.t, ui = this.ui, box = el("div", "s2o-bulk");
      var kindRow = el("div", "s2o-row");
      kindRow.appendChild(el("span", null, t.category + " "));
      ui.kind = el("select", "s2o-kind");
      ui.kind.addEventListener("change", function () { ui.kind.blur(); });
      kindRow.appendChild(ui.kind);
      box.appendChild(kindRow);
      var kindActions = el("div", "s2o-row");
      var ofKind = function () { return (self.kinds[ui.kind.value] || {items: []}).items; };
      kindActions.appendChild(button(t.accept_all, "s2o-kind-accept", function () { self.bulk(ofKind(), "accept"); }));
      kindActions.appendChild(button(t.reject_all, "s2o-kind-reject", function () { self.bulk(ofKind(), "reject"); }));
      box.appendChild(kindActions);
      var area = el("div", "s2o-row");
      area.appendChild(button(t.select_area + " (s)", "s2o-select", function () { self.selectArea(); }));
      ui.selection = el("span", "s2o-selection");
      area.appendChild(ui.selection);
      ui.selectAccept = button(t.accept_all, "s2o-area-accept", function () { self.bulk(self.selected, "accept"); });
      ui.selectReject = button(t.reject_all, "s2o-area-reject", function () { self.bulk(self.selected, "reject"); });
      area.appendChild(ui.selectAccept);
      area.appendChild(ui.selectReject);
      box.appendChild(area);
      return box;
    },

    describeChoice: function (choice) {
      if (!choice) { return ""; }
      var t = this.t;
      var text = choice.decision === "match" ? lib.fill(t.choice_match, {osm: choice.osm}) :
        t["choice_" + choice.decision] || choice.decision;
      return choice.earlier ? text + " (" + t.earlier + ")" : text;
    },

    refresh: function () {
      var ui = this.ui, t = this.t, total = this.queue.length, done = this.done();
      ui.progress.textContent = total ? lib.fill(t.progress, {done: done, total: total}) : t.nothing_to_review;
      ui.work.style.display = total ? "" : "none";
      ui.fill.style.width = (total ? Math.round(100 * done / total) : 0) + "%";
      ui.item.textContent = "";
      var i = this.current();
      if (i !== null) {
        var p = this.ctx.features[i].properties || {}, entry = this.ctx.cfg.byKey[p.decision] || {label: p.decision};
        ui.item.appendChild(el("strong", null, (this.pos + 1) + ". " + entry.label));
        ui.item.appendChild(el("span", null, " " + t.source_id + " " + this.sourceId(i)));
        var choice = this.choiceOf(i);
        if (choice) { ui.item.appendChild(el("span", "s2o-choice s2o-choice-" + choice.decision, " — " + this.describeChoice(choice))); }
      }
      ui.hint.textContent = this.mode === "pick" ? t.pick_hint : this.mode === "select" ? t.select_hint : "";
      var n = this.selected.length;
      ui.selection.textContent = n ? " " + lib.fill(t.selected, {n: n}) + " " : "";
      ui.selectAccept.style.display = ui.selectReject.style.display = n ? "" : "none";
    }
  };

  lib.Review = Review;
  lib.yamlQuote = yamlQuote;
}());
