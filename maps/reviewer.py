"""The reviewer map (`map.html`): what a run proposes, beside what OSM has, and the review itself.

Built from the run's `review.geojson`, the OSM data the run compared it with and the background
read around it. The page draws:
- one layer per decision, with its count in the legend; a popup shows the reason (in the page's
  language, from the decision's structured `why`), the tag diff, the candidates, and links to
  openstreetmap.org and JOSM (none for a `skip`: nothing of it is to upload);
- every OSM object of the matched kinds in the covered area (those a decision names
  highlighted; a click shows id, version and tags), a line from each source feature to the OSM
  object it is matched or compared to, and the outline of the area the OSM data covers;
- the background (streets with their names, buildings, water) drawn offline under it all;
- a review panel: each `review` (and on request each create and modify) in turn, in an order
  that walks the map area by area (a Hilbert curve: the next one is nearby), with accept,
  reject, "this is that OSM object" (picked on the map), "new object", keyboard shortcuts,
  progress, bulk choices by area or by kind, choices kept in the browser's local storage, and
  "Download decisions": the `match.decisions` file the next run reads.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from shapely.geometry import mapping

from maps.i18n import reason_texts, texts
from maps.page import COORD_DIGITS, OSM_ID, Page, osm_attribution, render_page, rounded
from pipeline.kernel.decisions import geometries_json
from pipeline.kernel.osm import OsmData, OsmElement

DECISION_COLOURS = {
    "create": "#2ca02c",
    "modify": "#1f77b4",
    "review": "#ff7f0e",
    "missing": "#d62728",
    "unchanged": "#7f7f7f",
    "skip": "#9467bd",
}
HILBERT_ORDER = 16  # cells of 1/65 536 of the map's width: finer than any two features


@dataclass(frozen=True)
class ReviewSetup:
    """How the page's review panel saves: under `name` in the browser, into `file_name` (YAML,
    or CSV for a `.csv` name), starting from the `earlier` decisions of that file (by source
    id: decision, osm_key, date, note), which the download keeps."""

    name: str
    file_name: str = "decisions.yml"
    earlier: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        kind = "csv" if PurePath(self.file_name).suffix.lower() == ".csv" else "yaml"
        return {"name": self.name, "file_name": PurePath(self.file_name).name, "kind": kind,
                "earlier": {k: dict(v) for k, v in self.earlier.items()}}


def reviewer_map_html(collection: Mapping[str, Any], title: str, *, locale: str = "fr",
                      tiles: bool = True, collection_text: str | None = None,
                      osm: OsmData | None = None, context: Mapping[str, Any] | None = None,
                      review: ReviewSetup | None = None,
                      osm_elements: Sequence[OsmElement] | None = None,
                      header_extra: str = "") -> str:
    """The self-contained reviewer page for a review FeatureCollection; `collection_text`: the
    same collection as JSON text when already written (review.geojson), embedded as is; `osm`:
    the OSM data it was compared with (`osm_elements`: only those objects of it); `context`:
    the background (`MapContext.to_json()`); `header_extra`: HTML under the title (built from
    our own text)."""
    t = texts(locale)
    features = list(collection.get("features") or [])
    counts = Counter(str((f.get("properties") or {}).get("decision")) for f in features)
    drawn = Counter(str((f.get("properties") or {}).get("decision")) for f in features
                    if f.get("geometry"))
    attribution = osm_attribution(t["osm_data"])
    setup = review or ReviewSetup(name=title)
    page = Page(
        title=title,
        locale=locale,
        kind="reviewer",
        config={"entries": legend_entries(counts, t), "texts": dict(t),
                "attributions": [attribution], "reasons": reason_texts(locale),
                "order": area_order(features), "review": setup.to_json(), "osm_id": OSM_ID},
        data={"type": "FeatureCollection", "features": features},
        header_html=_header(title, t, sum(counts.values()) - sum(drawn.values()), header_extra),
        tiles=tiles,
        tile_attribution=attribution,
        data_text=collection_text,
        blocks={OSM_ID: osm_block(osm, context, osm_elements)},
    )
    return render_page(page)


def legend_entries(counts: Mapping[str, int], t: Mapping[str, str]) -> list[dict[str, Any]]:
    """One legend entry per decision, with its count (a decision we do not know included:
    never hide a feature)."""
    entries = [{"key": d, "label": t[d], "colour": c, "shape": "circle", "count": counts.get(d, 0)}
               for d, c in DECISION_COLOURS.items()]
    unknown = sorted(set(counts) - set(DECISION_COLOURS))
    return entries + [{"key": d, "label": d, "colour": "#000000", "shape": "circle",
                       "count": counts[d]} for d in unknown]


def osm_block(osm: OsmData | None, context: Mapping[str, Any] | None,
              elements: Sequence[OsmElement] | None = None) -> dict[str, Any]:
    """The OSM objects (`elements`, by default all of `osm`), the area they cover and the
    background, as the page reads them: each object [id, version, tags, geometry], where tags
    is an index into `tagsets` (an import's candidates mostly share a few tag sets) and a
    node's geometry is its [lon, lat] (a page of a big run holds tens of thousands)."""
    if elements is None:
        elements = [e for e in (osm.elements if osm else ()) if e.geometry is not None]
    geometries = geometries_json([e.geometry for e in elements])
    tagsets: list[dict[str, str]] = []
    by_content: dict[tuple[tuple[str, str], ...], int] = {}
    by_identity: dict[int, int] = {}  # the readers share one mapping among equal tag sets
    objects = []
    for e, g in zip(elements, geometries, strict=True):
        if g is None:
            continue
        index = by_identity.get(id(e.tags))
        if index is None:
            content = tuple(e.tags.items())
            index = by_content.setdefault(content, len(tagsets))
            if index == len(tagsets):
                tagsets.append(dict(content))
            by_identity[id(e.tags)] = index
        if g["type"] == "Point":
            x, y = g["coordinates"][:2]
            objects.append([e.key, e.version, index, [round(x, COORD_DIGITS),
                                                      round(y, COORD_DIGITS)]])
        else:
            objects.append([e.key, e.version, index, rounded(g)])
    coverage = osm.coverage if osm is not None else None
    return {
        "tagsets": tagsets,
        "objects": objects,
        "coverage": rounded(mapping(coverage), 6) if coverage is not None else None,
        "context": dict(context) if context else None,
    }


def area_order(features: Sequence[Mapping[str, Any]]) -> list[int]:
    """The features with a geometry, in the order of a Hilbert curve over their bbox: an order
    that goes through the map area by area, each feature followed by a near one."""
    located = [(i, point) for i, f in enumerate(features)
               if (point := _first_point(f.get("geometry"))) is not None]
    if not located:
        return []
    xs = [p[0] for _, p in located]
    ys = [p[1] for _, p in located]
    west, south = min(xs), min(ys)
    span = max(max(xs) - west, max(ys) - south) or 1.0
    side = (1 << HILBERT_ORDER) - 1
    keyed = [(_hilbert(int((p[0] - west) / span * side), int((p[1] - south) / span * side)), i)
             for i, p in located]
    return [i for _, i in sorted(keyed)]


def _first_point(geometry: Mapping[str, Any] | None) -> tuple[float, float] | None:
    if not geometry or "coordinates" not in geometry:
        return None
    c: Any = geometry["coordinates"]
    while c and isinstance(c[0], list | tuple):
        c = c[0]
    return (float(c[0]), float(c[1])) if c else None


def _hilbert(x: int, y: int) -> int:
    """The distance of cell (x, y) along the Hilbert curve filling 2^HILBERT_ORDER cells a side."""
    n = 1 << HILBERT_ORDER
    d, s = 0, n // 2
    while s > 0:
        rx, ry = int(x & s > 0), int(y & s > 0)
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:  # rotate the quadrant
            if rx == 1:
                x, y = n - 1 - x, n - 1 - y
            x, y = y, x
        s //= 2
    return d


def _header(title: str, t: Mapping[str, str], without_geometry: int, extra: str = "") -> str:
    note = (f'<p class="s2o-meta s2o-note">{html.escape(t["no_geometry"].format(n=without_geometry))}'
            "</p>" if without_geometry else "")
    return (f'<header class="s2o-header"><h1>{html.escape(title)}</h1>{extra}'
            f'<p class="s2o-meta">{html.escape(t["reviewer_note"])}</p>{note}</header>')
