"""Symbols and labels: repeated small shapes of one style become points; text lines become
labels attached to the nearest feature."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pymupdf
import shapely
from shapely.geometry import Point, Polygon

from pipeline.pdf.georef import PageFrame
from pipeline.pdf.shapes import Shape

DEFAULT_SYMBOL_SIZE = 25.0  # points (about 9 mm): larger shapes are features, not symbols
_SIZE_SPREAD = 1.5  # the members of a symbol style differ in size by at most this factor
DEFAULT_LABEL_DISTANCE = 20.0  # points: a label farther than this from every feature is alone


@dataclass(frozen=True)
class Label:
    text: str
    point: Point  # centre of the text line, page coordinates
    size: float  # font size, points


def _extent(shape: Shape) -> float:
    x0, y0, x1, y1 = shape.geometry.bounds
    return max(x1 - x0, y1 - y0)


def _symbol_kind(shape: Shape) -> str:
    geom = shape.geometry
    if not isinstance(geom, Polygon):
        return "line" if shape.kind == "line" else "polygon"
    ring = shapely.simplify(geom.exterior, 0.05 * max(_extent(shape), 1e-6))
    corners = len(ring.coords) - 1
    if corners == 3:
        return "triangle"
    if corners == 4:
        return "square"
    return "circle" if len(geom.exterior.coords) > 12 and corners > 6 else "polygon"


def symbols_to_points(shapes: list[Shape], max_size: float = DEFAULT_SYMBOL_SIZE,
                      point_styles: frozenset[Any] = frozenset()) -> list[Shape]:
    """Shapes of a style that is always small and of one size (drawn at least twice on the page,
    e.g. on the map and in the legend) become points at their centre; so do shapes of styles the
    legend declares as points."""
    groups: dict[Any, list[Shape]] = defaultdict(list)
    for shape in shapes:
        groups[(shape.style, shape.kind)].append(shape)
    symbolic: set[Any] = set()
    for key, members in groups.items():
        sizes = [_extent(m) for m in members]
        declared = key[0] in point_styles and max(sizes) <= 4 * max_size
        repeated = len(members) >= 2 and max(sizes) <= max_size
        if declared or (repeated and max(sizes) <= _SIZE_SPREAD * max(min(sizes), 0.5)):
            symbolic.add(key)
    out = []
    for shape in shapes:
        if (shape.style, shape.kind) in symbolic:
            x0, y0, x1, y1 = shape.geometry.bounds
            out.append(replace(shape, geometry=Point((x0 + x1) / 2, (y0 + y1) / 2), kind="point",
                               outline=shape.geometry, symbol=_symbol_kind(shape)))
        else:
            out.append(shape)
    return _merge_composite(out)


def _merge_composite(shapes: list[Shape]) -> list[Shape]:
    """Symbols drawn as several overlapping shapes (a red triangle and its dark outline) are one
    point, keeping the style of the first shape drawn."""
    points = [s for s in shapes if s.kind == "point" and s.outline is not None]
    if len(points) < 2:
        return shapes
    outlines = [s.outline for s in points]
    tree = shapely.STRtree(outlines)
    absorbed: set[tuple[int, int]] = set()
    for i, shape in enumerate(points):
        if shape.key in absorbed:
            continue
        for j in tree.query(outlines[i]):
            other = points[int(j)]
            if other.key <= shape.key or other.key in absorbed:
                continue
            a, b = shapely.envelope(outlines[i]), shapely.envelope(other.outline)
            union = a.union(b).area
            if union > 0 and a.intersection(b).area / union >= 0.5:
                absorbed.add(other.key)
    return [s for s in shapes if s.key not in absorbed]


def page_labels(page: pymupdf.Page, frame: PageFrame) -> list[Label]:
    """Each text line of the page as a label at its centre."""
    labels = []
    for block in page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT).get("blocks", []):
        for line in block.get("lines", []):
            spans = line.get("spans", [])
            text = " ".join("".join(s.get("text", "") for s in spans).split())
            if not text:
                continue
            x0, y0, x1, y1 = line["bbox"]
            centre = frame.from_unrotated(np.array([[(x0 + x1) / 2, (y0 + y1) / 2]]))[0]
            size = max((float(s.get("size", 0.0)) for s in spans), default=0.0)
            labels.append(Label(text, Point(centre), size))
    return labels


def attach_labels(shapes: list[Shape], labels: list[Label],
                  max_distance: float = DEFAULT_LABEL_DISTANCE) -> dict[int, list[int]]:
    """For each shape (by index), the labels (by index) whose nearest shape it is; among shapes
    containing a label, the smallest (a house number goes to its parcel, not the block)."""
    attached: dict[int, list[int]] = defaultdict(list)
    if not shapes or not labels:
        return attached
    geoms = np.array([s.geometry for s in shapes], dtype=object)
    tree = shapely.STRtree(geoms)
    for li, label in enumerate(labels):
        near = tree.query(label.point, predicate="dwithin", distance=max_distance)
        if len(near) == 0:
            continue
        dist = shapely.distance(geoms[near], label.point)
        area = shapely.area(geoms[near])
        best = min(range(len(near)), key=lambda k: (round(float(dist[k]), 1), float(area[k])))
        attached[int(near[best])].append(li)
    return attached
