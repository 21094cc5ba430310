"""Plain (not georeferenced) vector PDF maps drawn from real OSM streets, with known truth.

A council map exported from a drawing tool: streets as lines with their names as rotated text
labels, project symbols, a legend, a frame, a title and a scale bar, at an arbitrary scale and
rotation, and no geospatial dictionary. The tests and `bench.pdf_georef` draw them at run time
(never committed) and compare what `sig2osm pdf georef` + `pdf extract` place with the map
positions the symbols were drawn from.

Styles:
- `plain`: grey street lines, labels centred on the street, red triangles and blue squares.
- `casing`: dark casings under white street fills (two passes, as map renderers draw them),
  upper-case abbreviated labels beside the street, composite symbols (a white disc, a green
  ring and a dot drawn as three paths), touching and overlapping symbols of one style, the page
  turned a quarter (`/Rotate 90`) as council plans often are.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymupdf
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, box
from shapely.geometry.base import BaseGeometry

from pipeline.osm_files import read_osm_file

PAGE = (842.0, 595.0)  # A4 landscape, points
FRAME = (30.0, 60.0, 640.0, 565.0)  # map frame on the page: x0, y0, x1, y1 (y downwards)
_ABBREVIATED = {"avenue": "AV.", "rue": "R.", "boulevard": "BD", "allée": "ALL.", "place": "PL.",
                "impasse": "IMP.", "chemin": "CH.", "saint": "ST", "général": "GAL"}


@dataclass(frozen=True)
class MapSpec:
    """What to draw: an OSM file, the map centre (lon, lat), scale, rotation and style."""

    osm: Path
    centre: tuple[float, float]
    metres_per_point: float  # 0.35 is 1:1 000 (a point is 0.353 mm)
    rotation: float  # degrees, counter-clockwise: the map's north on the page
    style: str = "plain"  # plain or casing
    crs: str = "EPSG:2154"
    symbols: int = 12
    seed: int = 1
    # A map drawn from other data than OSM's: streets simplified (Douglas-Peucker, metres) and
    # moved by a smooth field of this amplitude (metres); labels that name no OSM street, and
    # real names written on the wrong street.
    simplify_m: float = 0.0
    warp_m: float = 0.0
    unknown_labels: int = 0
    wrong_labels: int = 0
    aspect: float = 1.0  # east-west stretch of the page: 1.5 as a map drawn in degrees at 48°N


@dataclass
class DrawnMap:
    """The truth of a drawn map: symbol positions in `crs`, street labels written."""

    path: Path
    crs: str
    symbols: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # per style
    labels: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # labels written on the wrong street
    unknown: list[str] = field(default_factory=list)  # labels naming no OSM street
    streets_drawn: int = 0


class _Placement:
    """Map (metric) ↔ PyMuPDF page coordinates (y downwards) of the map frame."""

    def __init__(self, centre_xy: tuple[float, float], spec: MapSpec) -> None:
        self.centre = np.array(centre_xy)
        self.scale = spec.metres_per_point
        a = math.radians(spec.rotation)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        self.rot = rot @ np.diag([spec.aspect, 1.0])  # stretch east-west, then turn
        x0, y0, x1, y1 = FRAME
        self.page_centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])

    def to_page(self, xy: np.ndarray) -> np.ndarray:
        u = (np.asarray(xy, dtype=float).reshape(-1, 2) - self.centre) / self.scale
        u = u @ self.rot.T
        return np.column_stack([self.page_centre[0] + u[:, 0], self.page_centre[1] - u[:, 1]])

    def to_map(self, page_xy: np.ndarray) -> np.ndarray:
        p = np.asarray(page_xy, dtype=float).reshape(-1, 2)
        u = np.column_stack([p[:, 0] - self.page_centre[0], self.page_centre[1] - p[:, 1]])
        return (u @ np.linalg.inv(self.rot).T) * self.scale + self.centre


def _streets(spec: MapSpec) -> tuple[list[tuple[str | None, str, BaseGeometry]], Transformer]:
    data = read_osm_file(spec.osm, {"highway": "*"}, None)
    to_metric = Transformer.from_crs("EPSG:4326", spec.crs, always_xy=True)
    streets = []
    for element in data.elements:
        if element.type != "way" or element.geometry.geom_type != "LineString":
            continue
        if element.tags.get("highway") in ("footway", "steps", "path", "cycleway", "service",
                                           "track", "pedestrian", "corridor", "platform"):
            continue
        xy = np.array(element.geometry.coords)
        metric = np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1]))
        line = shapely.simplify(LineString(_warp(metric, spec)), spec.simplify_m)
        streets.append((element.tags.get("name"), element.tags["highway"], line))
    return streets, to_metric


def _warp(xy: np.ndarray, spec: MapSpec) -> np.ndarray:
    """A smooth displacement (wavelengths 150–400 m) of at most `spec.warp_m` metres."""
    if spec.warp_m <= 0:
        return xy
    rng = np.random.default_rng(spec.seed)
    waves = rng.uniform(150, 400, size=(3, 2))
    phases = rng.uniform(0, 2 * np.pi, size=(3, 2))
    shift = sum(np.column_stack([np.sin(xy[:, 1] / waves[k, 0] + phases[k, 0]),
                                 np.cos(xy[:, 0] / waves[k, 1] + phases[k, 1])])
                for k in range(3))
    return xy + shift * spec.warp_m / 3.0


def _width(highway: str) -> float:
    return {"primary": 5.0, "secondary": 4.5, "tertiary": 4.0, "trunk": 5.5}.get(highway, 3.0)


def _draw_lines(page: pymupdf.Page, geom: BaseGeometry, colour: tuple[float, float, float],
                width: float) -> None:
    for part in shapely.get_parts(geom):
        if part.geom_type != "LineString" or part.length < 0.5:
            continue
        page.draw_polyline([tuple(c) for c in part.coords], color=colour, width=width,
                           lineCap=1, lineJoin=1)


def _label_text(name: str, style: str) -> str:
    if style != "casing":
        return name
    words = name.split()
    first = _ABBREVIATED.get(words[0].lower()) if words else None
    return " ".join([first, *words[1:]] if first else words).upper()


def _label_spot(line: BaseGeometry, text_width: float) -> tuple[np.ndarray, float] | None:
    """The middle and angle (degrees, y downwards, readable) of the longest straight stretch of
    `line` that holds the text, or None."""
    best: tuple[float, np.ndarray, float] | None = None
    for part in shapely.get_parts(line):
        coords = np.array(shapely.simplify(part, 2.0).coords)
        for a, b in itertools.pairwise(coords):
            length = float(np.hypot(*(b - a)))
            if length >= text_width + 12 and (best is None or length > best[0]):
                angle = math.degrees(math.atan2(-(b - a)[1], (b - a)[0]))  # counter-clockwise
                angle = (angle + 90) % 180 - 90  # readable: never upside down
                best = (length, (a + b) / 2, angle)
    return None if best is None else (best[1], best[2])


def _draw_label(page: pymupdf.Page, text: str, centre: np.ndarray, angle: float, size: float,
                offset: float, font: str) -> Point:
    a = math.radians(angle)
    direction = np.array([math.cos(a), -math.sin(a)])  # along the text, page y downwards
    normal = np.array([math.sin(a), math.cos(a)])  # towards the text's bottom
    width = pymupdf.get_text_length(text, fontname=font, fontsize=size)
    start = centre - direction * width / 2 + normal * (0.35 * size - offset)
    origin = pymupdf.Point(float(start[0]), float(start[1]))
    page.insert_text(origin, text, fontsize=size, fontname=font, color=(0.15, 0.15, 0.15),
                     morph=(origin, pymupdf.Matrix(angle)))
    return Point(*(centre - normal * offset))


def _label_streets(page: pymupdf.Page, named: dict[str, list[BaseGeometry]], spec: MapSpec,
                   frame: BaseGeometry, drawn: DrawnMap) -> None:
    """Label each street that has a straight stretch for it; then, as on real maps made from
    other data, a few labels name no OSM street and a few name the wrong street."""
    size, font = (6.5, "hebo") if spec.style == "casing" else (7.0, "helv")
    taken: list[BaseGeometry] = []
    spots: list[tuple[str, np.ndarray, float]] = []
    for name in sorted(named):
        line = shapely.line_merge(shapely.union_all(named[name])).intersection(frame.buffer(-8))
        width = pymupdf.get_text_length(_label_text(name, spec.style), fontname=font, fontsize=size)
        spot = _label_spot(line, width)
        if spot is None:
            continue
        centre, angle = spot
        a = math.radians(angle)
        along = np.array([math.cos(a), -math.sin(a)]) * width / 2
        footprint = shapely.buffer(LineString([centre - along, centre + along]), size)
        if not any(footprint.intersects(t) for t in taken):
            taken.append(footprint)
            spots.append((name, centre, angle))
    texts = [name for name, _, _ in spots]
    rng = random.Random(spec.seed)
    chosen = rng.sample(range(len(spots)), min(len(spots), spec.unknown_labels + spec.wrong_labels))
    for k, i in enumerate(chosen):
        if k < spec.unknown_labels:
            texts[i] = ["Rue du Projet", "Allée des Futurs Jardins", "Promenade du Conseil",
                        "Chemin de la Concertation"][k % 4]
            drawn.unknown.append(_label_text(texts[i], spec.style))
        else:
            texts[i] = rng.choice(sorted(n for n in named if n not in texts))  # another street
            drawn.wrong.append(_label_text(texts[i], spec.style))
    for text, (_name, centre, angle) in zip(texts, spots, strict=True):
        _draw_label(page, _label_text(text, spec.style), centre, angle, size,
                    7.0 if spec.style == "casing" else 0.0, font)
    drawn.labels = [_label_text(t, spec.style) for t in texts]


def _symbol_positions(spec: MapSpec, inner: BaseGeometry) -> list[np.ndarray]:
    rng = random.Random(spec.seed)
    x0, y0, x1, y1 = inner.bounds
    spots = [np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)]) for _ in range(spec.symbols)]
    # two symbols of one style side by side (touching) and two overlapping by half
    spots += [spots[0] + [9.0, 0.0], spots[1] + [2.0, 0.5]]
    return spots


def _draw_symbol(page: pymupdf.Page, kind: str, at: np.ndarray) -> None:
    x, y = float(at[0]), float(at[1])
    if kind == "triangle":
        page.draw_polyline([(x - 4.5, y + 4), (x + 4.5, y + 4), (x, y - 4), (x - 4.5, y + 4)],
                           color=(0.4, 0, 0), fill=(0.9, 0.1, 0.1), width=0.5, closePath=True)
    elif kind == "square":
        page.draw_rect(pymupdf.Rect(x - 4, y - 4, x + 4, y + 4), color=None, fill=(0.1, 0.3, 0.8))
    else:  # composite: white disc, green ring, green dot, three paths
        page.draw_circle((x, y), 4.5, color=None, fill=(1, 1, 1))
        page.draw_circle((x, y), 4.5, color=(0.1, 0.55, 0.2), fill=None, width=1.2)
        page.draw_circle((x, y), 1.3, color=None, fill=(0.1, 0.55, 0.2))


def _symbol_kinds(style: str) -> tuple[str, str]:
    return ("triangle", "square") if style == "plain" else ("triangle", "ring")


def _clip_contents(doc: pymupdf.Document, page: pymupdf.Page) -> None:
    """Wrap what is drawn so far in the map frame's clip path, as GIS exports do."""
    x0, y0, x1, y1 = FRAME
    height = page.rect.height
    xrefs = page.get_contents()
    first, last = xrefs[0], xrefs[-1]
    clip = f"q {x0} {height - y1} {x1 - x0} {y1 - y0} re W n\n".encode()
    doc.update_stream(first, clip + doc.xref_stream(first))
    doc.update_stream(last, doc.xref_stream(last) + b"\nQ\n")


def _furniture(page: pymupdf.Page, style: str, metres_per_point: float) -> None:
    """Frame, title, legend with a copy of each symbol, scale bar, north arrow."""
    x0, y0, x1, y1 = FRAME
    page.draw_rect(pymupdf.Rect(x0, y0, x1, y1), color=(0, 0, 0), width=1.0)
    page.insert_text((x0, 40), "Plan de repérage — projets du conseil de quartier", fontsize=14,
                     fontname="hebo")
    lx = x1 + 25
    page.draw_rect(pymupdf.Rect(lx - 10, y0, PAGE[0] - 20, y0 + 120), color=(0, 0, 0), width=0.6)
    page.insert_text((lx, y0 + 20), "Légende", fontsize=11, fontname="hebo")
    first, second = _symbol_kinds(style)
    for i, (kind, text) in enumerate(((first, "Projet d'aménagement"), (second, "Banc public"))):
        _draw_symbol(page, kind, np.array([lx + 5, y0 + 45 + 25 * i]))
        page.insert_text((lx + 18, y0 + 48 + 25 * i), text, fontsize=9)
    bar = 100.0 / metres_per_point  # 100 m
    page.draw_line((lx, y1 - 30), (lx + bar, y1 - 30), color=(0, 0, 0), width=2)
    page.insert_text((lx, y1 - 15), "0", fontsize=8)
    page.insert_text((lx + bar - 20, y1 - 15), "100 m", fontsize=8)
    page.insert_text((lx, PAGE[1] - 12), "Réalisation : service urbanisme", fontsize=7)


def draw_plain_map(spec: MapSpec, target: Path) -> DrawnMap:
    """Draw the map of `spec` into `target`; return where every symbol was drawn from."""
    streets, to_metric = _streets(spec)
    cx, cy = to_metric.transform(*spec.centre)
    place = _Placement((cx, cy), spec)
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE[0], height=PAGE[1])
    frame = box(*FRAME)
    on_page = [(name, hw, LineString(place.to_page(np.array(g.coords)))) for name, hw, g in streets]
    on_page = [(n, hw, g) for n, hw, g in on_page if g.intersects(frame)]
    passes = ([((0.6, 0.6, 0.6), 0.0)] if spec.style == "plain"
              else [((0.2, 0.2, 0.2), 1.6), ((1, 1, 1), 0.0)])
    for colour, extra in passes:
        for _name, highway, geom in on_page:
            _draw_lines(page, geom.intersection(frame.buffer(20)), colour, _width(highway) + extra)
    named: dict[str, list[BaseGeometry]] = {}
    for name, _hw, geom in on_page:
        if name:
            named.setdefault(name, []).append(geom)
    drawn = DrawnMap(target, spec.crs, streets_drawn=len(on_page))
    _label_streets(page, named, spec, frame, drawn)
    inner = shapely.affinity.scale(frame, 0.8, 0.8)
    for i, at in enumerate(_symbol_positions(spec, inner)):
        # the first half and the touching and overlapping pairs: first kind; the rest: second
        kind = _symbol_kinds(spec.style)[int(spec.symbols // 2 <= i < spec.symbols)]
        _draw_symbol(page, kind, at)
        x, y = place.to_map(at)[0]
        drawn.symbols.setdefault(kind, []).append((float(x), float(y)))
    _clip_contents(doc, page)
    _furniture(page, spec.style, spec.metres_per_point)
    if spec.style == "casing":
        page.set_rotation(90)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc.save(target)
    return drawn


@dataclass(frozen=True)
class PlanSpec:
    """A council plan drawn from cadastre parcels: parcels, buildings, numbers, access symbols."""

    cadastre: Path
    centre: tuple[float, float]  # lon, lat
    metres_per_point: float
    rotation: float
    crs: str = "EPSG:2154"
    symbols: int = 3
    seed: int = 2
    outlined: bool = False  # the parcel network as one thin filled outline (Illustrator's way)


def _parcels(spec: PlanSpec, place: _Placement, frame: BaseGeometry) -> list[tuple[str, np.ndarray]]:
    import geopandas as gpd

    window = box(*place.to_map(np.array([[FRAME[0], FRAME[1]], [FRAME[2], FRAME[3]],
                                         [FRAME[0], FRAME[3]], [FRAME[2], FRAME[1]]])).min(axis=0),
                 *place.to_map(np.array([[FRAME[0], FRAME[1]], [FRAME[2], FRAME[3]],
                                         [FRAME[0], FRAME[3]], [FRAME[2], FRAME[1]]])).max(axis=0))
    layer = gpd.read_file(f"/vsigzip/{spec.cadastre}").to_crs(spec.crs)
    layer = layer[layer.intersects(window.buffer(50))]
    rings = []
    for pid, geom in zip(layer["id"], layer.geometry, strict=True):
        for part in shapely.get_parts(geom):
            ring = place.to_page(np.asarray(part.exterior.coords))
            if LineString(ring).intersects(frame):
                rings.append((str(pid), ring))
    return rings


def _draw_outlined(rings: list[np.ndarray], page: pymupdf.Page) -> None:
    """The 0.5 pt strokes of every ring converted to one filled outline with holes."""
    network = shapely.union_all([LineString(r).buffer(0.25, cap_style="flat") for r in rings])
    shape = page.new_shape()
    for polygon in shapely.get_parts(network):
        for ring in [polygon.exterior, *polygon.interiors]:
            shape.draw_polyline([tuple(c) for c in ring.coords])
    shape.finish(color=None, fill=(0.137, 0.122, 0.125), even_odd=True, closePath=True)
    shape.commit()


def draw_parcel_plan(spec: PlanSpec, target: Path) -> DrawnMap:
    """A plan like Bondy's council plans: parcel outlines (0.5 pt), a few buildings filled
    grey, house numbers, red access triangles, a legend and a frame; the page turned a quarter."""
    rng = random.Random(spec.seed)
    to_metric = Transformer.from_crs("EPSG:4326", spec.crs, always_xy=True)
    place = _Placement(to_metric.transform(*spec.centre), MapSpec(
        spec.cadastre, spec.centre, spec.metres_per_point, spec.rotation))
    frame = box(*FRAME)
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE[0], height=PAGE[1])
    rings = _parcels(spec, place, frame)
    for _pid, ring in rings:
        inner = shapely.Polygon(ring).buffer(-4.0)
        if inner.geom_type == "Polygon" and inner.area > 200 and rng.random() < 0.3:
            page.draw_polyline([tuple(c) for c in inner.exterior.coords], color=None,
                               fill=(0.886, 0.89, 0.894), closePath=True)
    if spec.outlined:
        _draw_outlined([ring for _pid, ring in rings], page)
    else:
        for _pid, ring in rings:
            page.draw_polyline([tuple(c) for c in ring], color=(0.137, 0.122, 0.125), width=0.5,
                               closePath=True)
    drawn = DrawnMap(target, spec.crs)
    inner_frame = shapely.affinity.scale(frame, 0.8, 0.8)
    for number, (_pid, ring) in enumerate(rings[: 40]):
        centre = shapely.Polygon(ring).representative_point()
        if inner_frame.contains(centre):
            page.insert_text((centre.x - 5, centre.y + 2), str(2 * number + 1), fontsize=6,
                             color=(0.23, 0.33, 0.64))
    x0, y0, x1, y1 = inner_frame.bounds
    for _ in range(spec.symbols):
        at = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        _draw_symbol(page, "triangle", at)
        x, y = place.to_map(at)[0]
        drawn.symbols.setdefault("triangle", []).append((float(x), float(y)))
    _clip_contents(doc, page)
    _furniture(page, "plain", spec.metres_per_point)
    page.set_rotation(90)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc.save(target)
    return drawn
