"""The reviewer map of a big run, in parts: one page per area instead of one page of everything.

A page of 20 000 features and the OSM objects around them opens in a few seconds; one page of a
national run (a million features, ten million OSM objects) would weigh gigabytes and never
open. Above `PART_SIZE` features, the run's reviewer map is therefore:

    map.html          an overview: each part's outline with its counts per decision, a link
                      to open it, and the same list as a table
    maps/NNN.html     the parts: reviewer pages (maps/reviewer.py) of at most PART_SIZE
                      features each, consecutive along the Hilbert curve of the review order
                      (so a part is a compact area), with the OSM objects and the background
                      inside their area (the features' bbox grown by the match distance), and
                      the OSM objects its features name wherever they are

The parts keep the review's choices under one name in the browser, so choices made in one part
are in the decisions file downloaded from any other. A feature without geometry goes to the last
part. The split depends only on the review file: the same run gives the same pages, whatever the
number of workers that made it.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import shapely

from maps.i18n import texts
from maps.page import Page, osm_attribution, render_page
from maps.reviewer import (
    DECISION_COLOURS,
    ReviewSetup,
    area_order,
    legend_entries,
    osm_block,
    reviewer_map_html,
)
from pipeline.kernel.decisions import geojson_bounds, grown_bbox
from pipeline.kernel.osm import OsmData, OsmElement

PART_SIZE = 20_000
PART_FOLDER = "maps"

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Part:
    number: int  # from 1
    features: list[int]  # indices into the review's features, in the review's order
    bounds: BBox | None  # of its features' geometries

    @property
    def file_name(self) -> str:
        return f"{PART_FOLDER}/{self.number:03d}.html"


def split(features: Sequence[Mapping[str, Any]], size: int = PART_SIZE) -> list[Part]:
    """Consecutive runs of at most `size` features along the Hilbert curve; [] when all fit
    on one page."""
    if len(features) <= size:
        return []
    order = area_order(features)
    located = set(order)
    runs = [order[start:start + size] for start in range(0, len(order), size)] or [[]]
    runs[-1] += [i for i in range(len(features)) if i not in located]
    parts = []
    for number, run in enumerate(runs, start=1):
        chosen = sorted(run)
        bounds = geojson_bounds(features[i].get("geometry") for i in chosen)
        parts.append(Part(number, chosen, bounds))
    return parts


class OsmInArea:
    """The OSM objects with a geometry, found by area (an STR tree built once for all parts)."""

    def __init__(self, osm: OsmData | None) -> None:
        self.elements = [e for e in (osm.elements if osm else ()) if e.geometry is not None]
        self._tree = shapely.STRtree([e.geometry for e in self.elements])
        self._position = {e.key: i for i, e in enumerate(self.elements)}

    def around(self, box: BBox | None, named: Iterable[str] = ()) -> list[OsmElement]:
        """Those that reach `box`, and those `named` (a match by ref or by a reviewer may lie
        farther than the match distance), in the OSM data's order."""
        found = set(self._tree.query(shapely.box(*box)).tolist()) if box is not None else set()
        found.update(self._position[k] for k in named if k in self._position)
        return [self.elements[i] for i in sorted(found)]


def named_objects(features: Iterable[Mapping[str, Any]]) -> set[str]:
    """The OSM objects the features name: matched (osm_id, osm_ids) or compared (candidates)."""
    keys: set[str] = set()
    for f in features:
        p = f.get("properties") or {}
        keys.update(k for k in (p.get("osm_id"), *(p.get("osm_ids") or ())) if k)
        keys.update(c["osm_id"] for c in p.get("candidates") or () if c.get("osm_id"))
    return keys


def context_within(context: Mapping[str, Any] | None, box: BBox | None
                   ) -> dict[str, Any] | None:
    """The background (`MapContext.to_json()`: flat [lon, lat, …] lists) that reaches `box`."""
    if not context or box is None:
        return None
    west, south, east, north = box

    def reaches(flat: Sequence[float]) -> bool:
        xs, ys = flat[0::2], flat[1::2]
        return bool(xs) and min(xs) <= east and max(xs) >= west and min(ys) <= north and \
            max(ys) >= south

    return {"streets": [s for s in context.get("streets", []) if reaches(s[2])],
            "buildings": [b for b in context.get("buildings", []) if reaches(b)],
            "water": [a for a in context.get("water", []) if a and reaches(a[0])],
            "waterways": [w for w in context.get("waterways", []) if reaches(w)]}


@dataclass(frozen=True)
class PartedMap:
    """A reviewer map in parts: `pages()` gives each page's maker, to be called one at a time."""

    collection: Mapping[str, Any]
    title: str
    parts: list[Part]
    margin_m: float  # the profile's match distance: OSM objects that far around a part
    locale: str = "fr"
    tiles: bool = True
    osm: OsmData | None = None
    context: Mapping[str, Any] | None = None
    review: ReviewSetup | None = None

    def pages(self, overview_name: str) -> dict[str, Callable[[], str]]:
        """The overview (under `overview_name`) and the parts, by file name."""
        index = OsmInArea(self.osm)
        makers: dict[str, Callable[[], str]] = {
            overview_name: self.overview_html}
        for part in self.parts:
            makers[part.file_name] = partial(self.part_html, part, index)
        return makers

    def part_html(self, part: Part, index: OsmInArea) -> str:
        t = texts(self.locale)
        features = self.collection.get("features") or []
        box = grown_bbox(part.bounds, self.margin_m) if part.bounds else None
        chosen = [features[i] for i in part.features]
        nav = {"number": part.number, "count": len(self.parts), "overview": "../map.html",
               "previous": _name(part.number - 1) if part.number > 1 else None,
               "next": _name(part.number + 1) if part.number < len(self.parts) else None}
        title = f"{self.title} — {t['part'].format(n=part.number, total=len(self.parts))}"
        return reviewer_map_html(
            {"type": "FeatureCollection", "features": chosen}, title, locale=self.locale,
            tiles=self.tiles, osm=self.osm, osm_elements=index.around(box, named_objects(chosen)),
            context=context_within(self.context, box), review=self.review,
            header_extra=_part_nav(nav, t))

    def overview_html(self) -> str:
        t = texts(self.locale)
        features = list(self.collection.get("features") or [])
        decisions = [str((f.get("properties") or {}).get("decision")) for f in features]
        rows = []
        outlines = []
        for part in self.parts:
            counts = Counter(decisions[i] for i in part.features)
            rows.append({"number": part.number, "file": part.file_name, "count": len(part.features),
                         "counts": dict(sorted(counts.items()))})
            if part.bounds is not None:
                outlines.append({"type": "Feature", "geometry": _box_polygon(part.bounds),
                                 "properties": {"part": part.number}})
        attribution = osm_attribution(t["osm_data"])
        block = osm_block(self.osm, None, [])  # the area the OSM data covers, no object
        page = Page(
            title=self.title, locale=self.locale, kind="overview",
            config={"entries": legend_entries(Counter(decisions), t), "texts": dict(t),
                    "attributions": [attribution], "parts": rows,
                    "coverage": block["coverage"], "colours": DECISION_COLOURS},
            data={"type": "FeatureCollection", "features": outlines},
            header_html=_overview_header(self.title, rows, t, len(features)),
            tiles=self.tiles, tile_attribution=attribution)
        return render_page(page)


def _name(number: int) -> str:
    return f"{number:03d}.html"


def _box_polygon(bounds: BBox) -> dict[str, Any]:
    west, south, east, north = (round(v, 6) for v in bounds)
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                [west, north], [west, south]]]}


def _part_nav(nav: Mapping[str, Any], t: Mapping[str, str]) -> str:
    """Links to the overview and the neighbouring parts (our own file names: no data text)."""
    links = [f'<a class="s2o-part-link" href="{nav["overview"]}">{html.escape(t["overview"])}</a>']
    if nav["previous"]:
        links.append(f'<a class="s2o-part-link" rel="prev" href="{nav["previous"]}">'
                     f'← {html.escape(t["part_short"].format(n=nav["number"] - 1))}</a>')
    if nav["next"]:
        links.append(f'<a class="s2o-part-link" rel="next" href="{nav["next"]}">'
                     f'{html.escape(t["part_short"].format(n=nav["number"] + 1))} →</a>')
    return f'<p class="s2o-meta s2o-parts-nav">{" · ".join(links)}</p>'


def _overview_header(title: str, rows: Sequence[Mapping[str, Any]], t: Mapping[str, str],
                     total: int) -> str:
    """The title, what the page is, and the parts as a table with links (works without
    scripts too)."""
    order = [d for d in DECISION_COLOURS if any(d in r["counts"] for r in rows)]
    order += sorted({d for r in rows for d in r["counts"]} - set(order))
    head = "".join(f"<th>{html.escape(t.get(d, d))}</th>" for d in order)
    body = "".join(
        f'<tr><td><a class="s2o-part-link" href="{r["file"]}">'
        f'{html.escape(t["part_short"].format(n=r["number"]))}</a></td><td>{r["count"]}</td>'
        + "".join(f"<td>{r['counts'].get(d, 0)}</td>" for d in order) + "</tr>"
        for r in rows)
    note = t["overview_note"].format(n=total, parts=len(rows))
    return (f'<header class="s2o-header"><h1>{html.escape(title)}</h1>'
            f'<p class="s2o-meta">{html.escape(note)}</p>'
            f'<details class="s2o-parts"><summary>{html.escape(t["parts"])}</summary>'
            f'<table class="s2o-parts-table"><thead><tr><th>{html.escape(t["part_head"])}</th>'
            f'<th>{html.escape(t["features"])}</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></details></header>")
