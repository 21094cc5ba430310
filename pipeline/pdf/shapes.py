"""Vector drawings of a PDF page as shapes: geometry in page coordinates plus the drawing style.

Curves are flattened; rectangles, quads and closed paths become polygons; fills follow the
even-odd nesting of their subpaths; a filled ring thinner than a few points is a stroke that was
converted to outlines (Illustrator / PostScript printing) and is read back as the stroked shape.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.pdf.georef import PageFrame

log = logging.getLogger(__name__)

_CURVE_STEP = 2.0  # points of page per flattened curve segment
_CLOSE_TOL = 0.05  # points: a subpath ending this near its start is closed
_OUTLINE_WIDTH = 3.0  # points: a filled ring thinner than this is an outlined stroke


@dataclass(frozen=True)
class Style:
    """What distinguishes one kind of feature from another on a map."""

    stroke: str | None  # "#rrggbb"
    fill: str | None
    width: float | None  # stroke width, points
    dash: str | None  # dash pattern, e.g. "[3 2] 0"; None when solid
    layer: str | None  # optional-content layer (OCG) name

    @property
    def label(self) -> str:
        parts = [self.layer] if self.layer else []
        if self.fill:
            parts.append(f"fill {self.fill}")
        if self.stroke:
            parts.append(f"stroke {self.stroke} {self.width or 0:g}pt"
                         + (f" dash {self.dash}" if self.dash else ""))
        return " · ".join(parts) or "no paint"


@dataclass(frozen=True)
class Shape:
    """One drawing (or a merged fill and stroke) in page coordinates."""

    seqno: int  # order of painting on the page: a stable id
    geometry: BaseGeometry
    kind: str  # point, line or polygon
    style: Style
    outline: BaseGeometry | None = None  # for symbols: the drawn shape, before becoming a point
    symbol: str | None = None  # triangle, square, circle, polygon (points only)
    part: int = 0  # index among the shapes one drawing was split into (outlined networks)

    @property
    def key(self) -> tuple[int, int]:
        return (self.seqno, self.part)


def colour(rgb: Any) -> str | None:
    if rgb is None or len(rgb) < 3:
        return None
    return "#" + "".join(f"{round(max(0.0, min(1.0, float(c))) * 255):02x}" for c in rgb[:3])


def _dash(value: Any) -> str | None:
    text = str(value or "").strip()
    return None if not text or text.startswith("[]") else text


def drawing_style(drawing: dict[str, Any], layer: str | None) -> Style:
    kind = drawing.get("type", "")
    stroke = colour(drawing.get("color")) if "s" in kind else None
    width = round(float(drawing.get("width") or 0.0), 2) if stroke else None
    return Style(stroke, colour(drawing.get("fill")) if "f" in kind else None, width,
                 _dash(drawing.get("dashes")) if stroke else None, layer or None)


@functools.lru_cache(maxsize=64)
def _bezier_basis(steps: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, steps + 1)[1:, None]
    return np.hstack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3])


def _bezier(p0: Any, p1: Any, p2: Any, p3: Any) -> list[tuple[float, float]]:
    ctrl = np.array([[p0.x, p0.y], [p1.x, p1.y], [p2.x, p2.y], [p3.x, p3.y]], dtype=float)
    length = float(np.hypot(*np.diff(ctrl, axis=0).T).sum())
    steps = max(4, min(32, math.ceil(length / _CURVE_STEP)))
    return [(float(x), float(y)) for x, y in _bezier_basis(steps) @ ctrl]


def subpaths(items: list[tuple[Any, ...]]) -> list[tuple[list[tuple[float, float]], bool]]:
    """Split PyMuPDF path items into (points, explicitly closed) subpaths, curves flattened."""
    out: list[tuple[list[tuple[float, float]], bool]] = []
    current: list[tuple[float, float]] = []

    def flush() -> None:
        if len(current) >= 2:
            out.append((list(current), False))
        current.clear()

    for item in items:
        op = item[0]
        if op in ("re", "qu"):
            flush()
            quad = item[1].quad if op == "re" else item[1]
            corners = [quad.ul, quad.ur, quad.lr, quad.ll]
            out.append(([(float(p.x), float(p.y)) for p in corners], True))
            continue
        start = (float(item[1].x), float(item[1].y))
        if not current or math.dist(current[-1], start) > 1e-6:
            flush()
            current.append(start)
        if op == "l":
            current.append((float(item[2].x), float(item[2].y)))
        elif op == "c":
            current.extend(_bezier(item[1], item[2], item[3], item[4]))
    flush()
    return out


def polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygons of a geometry (make_valid may add lines and points to a collection)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(shapely.get_parts(geom))
             if g.geom_type == "Polygon" and not g.is_empty]
    return shapely.union_all(parts) if parts else Polygon()


def _rings_to_polygon(rings: list[np.ndarray]) -> BaseGeometry:
    """Even-odd nesting: a ring inside an odd number of others is a hole."""
    polys = np.array([Polygon(r) for r in rings if len(r) >= 3], dtype=object)
    if len(polys) == 0:
        return Polygon()
    invalid = ~shapely.is_valid(polys)
    if invalid.any():
        polys[invalid] = [polygonal(g) for g in shapely.make_valid(polys[invalid])]
    polys = polys[~shapely.is_empty(polys) & (shapely.area(polys) > 0)]
    if len(polys) <= 1:
        return polys[0] if len(polys) else Polygon()
    tree = shapely.STRtree(polys)
    # Nesting by whole rings: a point of a ring's own area may lie in one of its holes.
    pairs = tree.query(polys, predicate="within")
    depth = np.bincount(pairs[0], minlength=len(polys)) - 1  # minus the ring itself
    result = shapely.union_all(polys[depth % 2 == 0])
    holes = polys[depth % 2 == 1]
    return result.difference(shapely.union_all(holes)) if len(holes) else result


def shape_of(drawing: dict[str, Any], layer: str | None, frame: PageFrame) -> list[Shape]:
    """The geometry and style of one PyMuPDF drawing (several shapes for an outlined network of
    strokes, none when it draws nothing)."""
    parts = subpaths(drawing.get("items", []))
    if not parts:
        return []
    style = drawing_style(drawing, layer)
    seqno = int(drawing.get("seqno", 0))
    closed_flag = bool(drawing.get("closePath"))
    filled = "f" in drawing.get("type", "")
    rings: list[np.ndarray] = []
    lines: list[np.ndarray] = []
    for points, explicit in parts:
        xy = frame.from_unrotated(np.array(points))
        closed = explicit or closed_flag or math.dist(points[0], points[-1]) <= _CLOSE_TOL
        (rings if (closed or filled) and len(points) >= 3 else lines).append(xy)
    if rings:
        geometry = _rings_to_polygon(rings)
        if not geometry.is_empty:
            shape = Shape(seqno, geometry, "polygon", style)
            return _outlined_stroke(shape) if filled and not style.stroke else [shape]
    if lines:
        geometry = LineString(lines[0]) if len(lines) == 1 else MultiLineString(lines)
        return [Shape(seqno, geometry, "line", style)]
    return []


def _outlined_stroke(shape: Shape) -> list[Shape]:
    """A thin fill (a stroke converted to outlines by the PDF producer) stands for the stroked
    path: the areas it encloses become polygons (one per enclosed area, e.g. one per parcel of
    an outlined parcel network); an outlined open line stays the thin polygon it is."""
    geom = shape.geometry
    width = 2.0 * geom.area / max(geom.length, 1e-9)
    x0, y0, x1, y1 = geom.bounds
    if width > _OUTLINE_WIDTH or width > 0.1 * max(x1 - x0, y1 - y0):
        return [shape]  # a filled area, or a small solid symbol
    style = replace(shape.style, stroke=shape.style.fill, fill=None, width=round(width, 1))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(
        shapely.union_all(shapely.get_parts(geom.boundary)))))
    if len(faces) == 0:
        return [replace(shape, style=style)]
    inside = shapely.area(shapely.intersection(faces, geom)) < 0.5 * shapely.area(faces)
    enclosed = [f for f in faces[inside] if f.area > 4 * width * width]
    if not enclosed:
        return [replace(shape, style=style)]
    merged = shapely.get_parts(shapely.union_all(enclosed))
    return [replace(shape, geometry=g, style=style, part=i) for i, g in enumerate(merged)]


def merge_fill_and_stroke(shapes: list[Shape]) -> list[Shape]:
    """A fill and a stroke of the same outline become one polygon with both colours."""
    fills = [s for s in shapes if s.kind == "polygon" and s.style.fill and not s.style.stroke]
    strokes = [s for s in shapes if s.kind == "polygon" and s.style.stroke and not s.style.fill]
    if not fills or not strokes:
        return shapes
    tree = shapely.STRtree([f.geometry for f in fills])
    merged: dict[tuple[int, int], Shape] = {}
    dropped: set[tuple[int, int]] = set()
    for stroke in strokes:
        tol = max(1.0, stroke.style.width or 0.0)
        for i in tree.query(stroke.geometry):
            fill = fills[int(i)]
            if fill.key in merged or fill.style.layer != stroke.style.layer:
                continue
            if np.allclose(fill.geometry.bounds, stroke.geometry.bounds, atol=tol):
                style = replace(fill.style, stroke=stroke.style.stroke, width=stroke.style.width,
                                dash=stroke.style.dash)
                merged[fill.key] = replace(fill, style=style)
                dropped.add(stroke.key)
                break
    return [merged.get(s.key, s) for s in shapes if s.key not in dropped]
