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
_PART_COVER = 0.6  # a shape this much inside another symbol of another style is a part of it
DEFAULT_LABEL_DISTANCE = 20.0  # points: a label farther than this from every feature is alone


@dataclass(frozen=True)
class Label:
    text: str
    point: Point  # centre of the text line, page coordinates
    size: float  # font size, points
    angle: float = 0.0  # direction of the text line, degrees counter-clockwise (page coordinates)
    length: float = 0.0  # length of the text line along its direction, points


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
    return out


def merge_composites(shapes: list[Shape]) -> tuple[list[Shape], list[tuple[Shape, Shape]]]:
    """Symbols drawn as several overlapping shapes of different styles (a white disc, a green
    ring and a dot; a red triangle and its dark outline) are one point, keeping the style of the
    first shape drawn. Shapes of one style are never merged: two benches side by side, touching
    or overlapping, are two symbols. Returns the shapes kept and each part merged into a symbol
    with that symbol."""
    points = [s for s in shapes if s.kind == "point" and s.outline is not None]
    if len(points) < 2:
        return shapes, []
    boxes = np.array([shapely.envelope(s.outline) for s in points], dtype=object)
    left, right = shapely.STRtree(boxes).query(boxes, predicate="intersects")
    keep = (left < right) & np.array([points[a].style != points[b].style
                                      for a, b in zip(left, right, strict=True)], dtype=bool)
    left, right = left[keep], right[keep]
    smaller = np.minimum(shapely.area(boxes[left]), shapely.area(boxes[right]))
    cover = shapely.area(shapely.intersection(boxes[left], boxes[right])) / np.maximum(smaller, 1e-9)
    gap = np.abs([points[a].seqno - points[b].seqno for a, b in zip(left, right, strict=True)])
    paired = _paired_styles(points, left[cover >= _PART_COVER], right[cover >= _PART_COVER])
    group = list(range(len(points)))
    styles: list[set[Any]] = [{s.style} for s in points]

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for k in np.lexsort((gap, -cover)):  # best covered first, then nearest in painting order
        a, b = root(int(left[k])), root(int(right[k]))
        pair = frozenset((points[int(left[k])].style, points[int(right[k])].style))
        if cover[k] < _PART_COVER or pair not in paired or a == b or styles[a] & styles[b]:
            continue  # no part of it, styles that meet by chance, or one style twice
        host, part = min(a, b), max(a, b)
        group[part] = host
        styles[host] |= styles[part]
    parts = [(p, points[root(i)]) for i, p in enumerate(points) if root(i) != i]
    merged = {p.key for p, _ in parts}
    return [s for s in shapes if s.key not in merged], parts


def _paired_styles(points: list[Shape], left: np.ndarray, right: np.ndarray) -> set[frozenset[Any]]:
    """Pairs of styles drawn together as one symbol: nearly every shape of one of them (80 %)
    lies on a shape of the other. A bench that happens to overlap a bin does not pair them."""
    total: dict[Any, int] = defaultdict(int)
    for shape in points:
        total[shape.style] += 1
    met: dict[frozenset[Any], dict[Any, set[int]]] = defaultdict(lambda: defaultdict(set))
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        pair = frozenset((points[a].style, points[b].style))
        met[pair][points[a].style].add(a)
        met[pair][points[b].style].add(b)
    return {pair for pair, seen in met.items()
            if max(len(ids) / total[style] for style, ids in seen.items()) >= 0.8}


def page_labels(page: pymupdf.Page, frame: PageFrame) -> list[Label]:
    """Each text line of the page as a label at its centre, with its direction and length."""
    labels = []
    for block in page.get_text("rawdict", flags=pymupdf.TEXTFLAGS_TEXT).get("blocks", []):
        for line in block.get("lines", []):
            spans = line.get("spans", [])
            chars = [c for s in spans for c in s.get("chars", [])]
            text = " ".join("".join(c.get("c", "") for c in chars).split())
            if not text:
                continue
            x0, y0, x1, y1 = line["bbox"]
            centre = frame.from_unrotated(np.array([[(x0 + x1) / 2, (y0 + y1) / 2]]))[0]
            size = max((float(s.get("size", 0.0)) for s in spans), default=0.0)
            angle, length = _direction(frame, line.get("dir", (1.0, 0.0)), chars)
            labels.append(Label(text, Point(centre), size, angle, length))
    return labels


def _direction(frame: PageFrame, direction: Any, chars: list[dict[str, Any]]) -> tuple[float, float]:
    """The text line's angle in page coordinates and its length along that direction."""
    ends = frame.from_unrotated(np.array([[0.0, 0.0], [float(direction[0]), float(direction[1])]]))
    vector = ends[1] - ends[0]
    unit = vector / max(float(np.hypot(*vector)), 1e-9)
    corners = np.array([[c["bbox"][i], c["bbox"][j]] for c in chars
                        for i, j in ((0, 1), (2, 1), (0, 3), (2, 3))], dtype=float)
    along = frame.from_unrotated(corners) @ unit if len(corners) else np.zeros(1)
    return float(np.degrees(np.arctan2(unit[1], unit[0]))), float(along.max() - along.min())


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
