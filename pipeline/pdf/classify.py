"""Classification: a legend file maps drawing styles to categories (and optional OSM tags);
without one, every distinct style is its own category, named after it.

Legend file (YAML):

    frame: [x0, y0, x1, y1]   # map frame, page points from the top-left of the displayed page
    symbol_size: 25           # points; larger shapes are never symbols
    label_distance: 20        # points; farthest a label may be from its feature
    others: keep              # keep (one layer per style) or drop unmatched shapes
    categories:               # first match wins
      - name: parcels
        stroke: "#231f20"     # colours as #rrggbb; tolerance is a distance in 0–255 RGB
        geometry: polygon     # point, line or polygon
      - name: access
        fill: "#ec3230"
        tolerance: 40
        geometry: point
        shape: triangle       # triangle, square, circle, polygon (symbols)
        tags: {entrance: yes}
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.sparse.csgraph import connected_components

from pipeline.kernel.errors import PdfError
from pipeline.pdf.shapes import Shape, Style
from pipeline.pdf.symbols import DEFAULT_LABEL_DISTANCE, DEFAULT_SYMBOL_SIZE

_MATCH_KEYS = {"stroke", "fill", "tolerance", "width", "width_tolerance", "dash", "layer",
               "geometry", "shape"}
_CATEGORY_KEYS = {"name", "tags"} | _MATCH_KEYS
_LEGEND_KEYS = {"frame", "symbol_size", "label_distance", "others", "categories"}
_HEX = re.compile(r"^#?[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Category:
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    stroke: str | None = None
    fill: str | None = None
    tolerance: float = 24.0  # Euclidean distance in 0–255 RGB
    width: float | None = None
    width_tolerance: float = 0.25
    dash: str | None = None  # "solid", "dashed" (any pattern) or the exact pattern
    layer: str | None = None  # OCG name; shell wildcards allowed
    geometry: str | None = None
    shape: str | None = None

    def matches(self, shape: Shape) -> bool:
        style = shape.style
        checks = (
            _colour_near(self.stroke, style.stroke, self.tolerance),
            _colour_near(self.fill, style.fill, self.tolerance),
            self.width is None or (style.width is not None
                                   and abs(style.width - self.width) <= self.width_tolerance),
            _dash_matches(self.dash, style.dash),
            self.layer is None or fnmatch.fnmatchcase(style.layer or "", self.layer),
            self.geometry is None or self.geometry == shape.kind,
            self.shape is None or self.shape == shape.symbol,
        )
        return all(checks)


@dataclass(frozen=True)
class Legend:
    categories: tuple[Category, ...] = ()
    frame: tuple[float, float, float, float] | None = None
    symbol_size: float = DEFAULT_SYMBOL_SIZE
    label_distance: float = DEFAULT_LABEL_DISTANCE
    keep_others: bool = True

    def category_of(self, shape: Shape) -> Category | None:
        return next((c for c in self.categories if c.matches(shape)), None)

    def point_styles(self, shapes: list[Shape]) -> frozenset[Style]:
        """Styles of shapes a category declares as points (so single symbols become points)."""
        wanted = [c for c in self.categories if c.geometry == "point"]
        found = set()
        for shape in shapes:
            for cat in wanted:
                if cat.matches(_as_point(shape)):
                    found.add(shape.style)
        return frozenset(found)


def _as_point(shape: Shape) -> Shape:
    return replace(shape, kind="point", symbol=None) if shape.kind != "point" else shape


def _rgb(text: str) -> tuple[int, int, int]:
    text = text.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def _colour_near(wanted: str | None, got: str | None, tolerance: float) -> bool:
    if wanted is None:
        return True
    if wanted.lower() == "none":
        return got is None
    if got is None:
        return False
    a, b = _rgb(wanted), _rgb(got)
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5 <= tolerance


def _dash_matches(wanted: str | None, got: str | None) -> bool:
    if wanted is None:
        return True
    if wanted == "solid":
        return got is None
    if wanted == "dashed":
        return got is not None
    return " ".join(wanted.split()) == " ".join((got or "").split())


def style_layer_name(style: Style, kind: str) -> str:
    """A GeoPackage layer name for an unclassified style, e.g. `fill_008000_point`."""
    parts = [style.layer or ""]
    if style.fill:
        parts.append(f"fill_{style.fill[1:]}")
    if style.stroke:
        parts.append(f"stroke_{style.stroke[1:]}_{style.width or 0:g}pt")
        if style.dash:
            parts.append("dashed")
    parts.append(kind)
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", "_".join(p for p in parts if p)).strip("_").lower()
    return slug[:63]


GROUP_TOLERANCE = 24.0  # RGB distance: colours this near, chained, are shades of one colour


def style_layers(keys: Iterable[tuple[Style, str]]) -> dict[tuple[Style, str], str]:
    """A layer name for each (style, geometry kind) of unclassified shapes (`keys`: one per
    shape). Styles that differ
    only by near colours within one OCG layer and kind share a layer: colours are near when the
    layer's own palette links them in steps of at most `GROUP_TOLERANCE` (the shades of a
    hill-shaded icon, a colour ramp), so red and blue categories stay apart while 600 shades of
    one green do not. The layer is named without the colours that vary (each feature keeps its
    colours in the `fill` and `stroke` fields); a style alone keeps its colours in the name."""
    counts = Counter(keys)
    keys = list(counts)
    shade = _shade_classes(keys)
    groups: dict[tuple[Any, ...], list[tuple[Style, str]]] = defaultdict(list)
    for style, kind in keys:
        groups[(style.layer, kind, style.width, style.dash, shade.get((style.layer, style.fill)),
                shade.get((style.layer, style.stroke)))].append((style, kind))
    names: dict[tuple[Style, str], str] = {}
    taken: set[str] = set()
    for group in sorted(groups.values(), key=lambda g: -sum(counts[k] for k in g)):
        name = _group_name(group, counts, taken)
        taken.add(name)
        names.update(dict.fromkeys(group, name))
    return names


def _shade_classes(keys: list[tuple[Style, str]]) -> dict[tuple[str | None, str | None], int]:
    """For each (OCG layer, colour) used, its class: colours of one layer chained by steps of
    at most `GROUP_TOLERANCE` share a class."""
    palettes: dict[str | None, list[str]] = defaultdict(list)
    for style, _ in keys:
        palettes[style.layer].extend(c for c in (style.fill, style.stroke) if c)
    classes: dict[tuple[str | None, str | None], int] = {}
    for layer, colours in palettes.items():
        unique = sorted(set(colours))
        rgb = np.array([_rgb(c) for c in unique], dtype=float)
        near = np.hypot.reduce(rgb[:, None, :] - rgb[None, :, :], axis=2) <= GROUP_TOLERANCE
        _, labels = connected_components(near, directed=False)
        start = len(set(classes.values()))
        classes.update({(layer, c): start + int(k) for c, k in zip(unique, labels, strict=True)})
    return classes


def _group_name(group: list[tuple[Style, str]], counts: Counter[tuple[Style, str]],
                taken: set[str]) -> str:
    """The name of the group's style; for shades, without the colours that vary (when another
    group of shades has that name already: the most common style's colours and `_shades`)."""
    style, kind = max(group, key=lambda k: counts[k])
    if len(group) == 1:
        return style_layer_name(style, kind)
    fills = {s.fill for s, _ in group}
    strokes = {s.stroke for s, _ in group}
    plain = style_layer_name(replace(style, fill="#" if len(fills) > 1 else style.fill,
                                     stroke="#" if len(strokes) > 1 else style.stroke), kind)
    if plain not in taken:
        return plain
    name = style_layer_name(style, kind).removesuffix(f"_{kind}")
    return f"{name[: 63 - len(kind) - 8]}_shades_{kind}"


def load_legend(path: Path) -> Legend:
    """Read and check a legend file; errors name the file, the category and the key."""
    if not path.is_file():
        raise PdfError(f"Legend file {path}: no such file.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PdfError(f"Legend file {path}: malformed YAML ({exc}).") from exc
    if not isinstance(data, dict):
        raise PdfError(f"Legend file {path}: expected a mapping with 'categories'.")
    _unknown(path, "legend", data, _LEGEND_KEYS)
    categories = tuple(_category(path, i, c) for i, c in enumerate(data.get("categories") or []))
    frame = data.get("frame")
    if frame is not None and (not isinstance(frame, list) or len(frame) != 4):
        raise PdfError(f"Legend file {path}: frame is {frame!r}; expected [x0, y0, x1, y1] in "
                       "page points from the top-left corner.")
    others = str(data.get("others", "keep"))
    if others not in ("keep", "drop"):
        raise PdfError(f"Legend file {path}: others is {others!r}; expected keep or drop.")
    box = tuple(_number(path, "frame", v, -1e6, 1e6) for v in frame) if frame else None
    return Legend(categories, box,  # type: ignore[arg-type]
                  _number(path, "symbol_size", data.get("symbol_size", DEFAULT_SYMBOL_SIZE), 0, 1e4),
                  _number(path, "label_distance",
                          data.get("label_distance", DEFAULT_LABEL_DISTANCE), 0, 1e4),
                  others == "keep")


def _number(path: Path, key: str, value: Any, low: float, high: float) -> float:
    """A finite number of page points within [low, high], or an error naming the key."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value) and low <= value <= high:
        return float(value)
    raise PdfError(f"Legend file {path}: {key} is {value!r}; expected a finite number of page "
                   f"points from {low:g} to {high:g}.")


def _unknown(path: Path, where: str, data: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(map(str, data)) - known)
    if extra:
        raise PdfError(f"Legend file {path}, {where}: unknown key(s) {', '.join(extra)}; "
                       f"known keys: {', '.join(sorted(known))}.")


def _category(path: Path, index: int, data: Any) -> Category:
    where = f"category {index + 1}"
    if not isinstance(data, dict) or not data.get("name"):
        raise PdfError(f"Legend file {path}, {where}: expected a mapping with a 'name'.")
    where = f"category '{data['name']}'"
    _unknown(path, where, data, _CATEGORY_KEYS)
    for key in ("stroke", "fill"):
        value = data.get(key)
        if value is not None and str(value).lower() != "none" and not _HEX.match(str(value)):
            raise PdfError(f"Legend file {path}, {where}: {key} is {value!r}; expected a colour "
                           "like '#e3342f' or none.")
        if value is not None and _HEX.match(str(value)):
            data[key] = "#" + str(value).lstrip("#").lower()
    if data.get("geometry") not in (None, "point", "line", "polygon"):
        raise PdfError(f"Legend file {path}, {where}: geometry is {data['geometry']!r}; expected "
                       "point, line or polygon.")
    tags = {str(k): str(v) for k, v in (data.get("tags") or {}).items()}
    values = {k: v for k, v in data.items() if k in _MATCH_KEYS}
    for key, high in (("tolerance", 442.0), ("width", 1e4), ("width_tolerance", 1e4)):
        if values.get(key) is not None:
            values[key] = _number(path, f"{where}: {key}", values[key], 0, high)
    return Category(name=str(data["name"]), tags=tags, **values)
