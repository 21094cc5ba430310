"""Drawn parcel outlines matched to cadastre parcels by shape and neighbourhood, not position:
the clues and hypotheses of a placement by parcels (see `consensus`).

Every closed outline of the map frame that the frame does not cut is described by measures a
change of scale and rotation leaves alone: compactness (4πA/P²), elongation and fill of its
smallest enclosing rectangle. Pairs of neighbours (each outline with its nearest few) add how
their areas compare, how far apart they are for their size and where one lies from the other's
long axis. The same is computed for the cadastre; a drawn pair and a cadastre pair that look
alike propose the similarity taking one onto the other (from the two centroids), and the
proposals vote (`consensus.place`). The outlines of a style that is not the parcels' (buildings,
the project area) find no consistent proposal; each polygon style with enough outlines is tried
and the one placing the most parcels wins.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS
from scipy.spatial import cKDTree
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from pipeline.kernel.errors import PdfError
from pipeline.pdf.consensus import Clue, Hypotheses, Target, similarities
from pipeline.pdf.shapes import Shape
from pipeline.pdf.transforms import Array

log = logging.getLogger(__name__)

_NEIGHBOURS = 6  # each outline is paired with its nearest few
_MIN_OUTLINES = 6  # a polygon style with fewer outlines is not a parcel layer
_SHAPE_TOLERANCE = np.array([0.06, 0.12, 0.08])  # compactness, elongation, rectangle fill
_PAIR_MATCHES = 12  # cadastre pairs proposed for each drawn pair
_SAMPLE_STEP = 3.0  # page points between samples of a drawn outline


@dataclass(frozen=True)
class Outlines:
    """Polygons with their shape measures (page or metric coordinates)."""

    names: list[str]
    polygons: np.ndarray  # object array of Polygon
    centroids: Array  # (n, 2)
    areas: Array  # (n,)
    measures: Array  # (n, 3): compactness, elongation, rectangle fill
    axes: Array  # (n,): direction of the long side of the enclosing rectangle, radians mod π

    def __len__(self) -> int:
        return len(self.names)


def outlines(names: list[str], polygons: list[BaseGeometry]) -> Outlines:
    geoms = np.array(polygons, dtype=object)
    areas = shapely.area(geoms)
    perimeters = shapely.length(shapely.boundary(geoms))
    rects = shapely.oriented_envelope(geoms)
    corners = np.array([np.asarray(r.exterior.coords)[:3] if r.geom_type == "Polygon"
                        else np.zeros((3, 2)) for r in rects])
    sides = np.stack([corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 1]], axis=1)
    lengths = np.hypot(sides[..., 0], sides[..., 1])
    longer = np.argmax(lengths, axis=1)
    long_side = sides[np.arange(len(sides)), longer]
    elongation = lengths.min(axis=1) / np.maximum(lengths.max(axis=1), 1e-9)
    fill = areas / np.maximum(shapely.area(rects), 1e-9)
    measures = np.column_stack([4 * np.pi * areas / np.maximum(perimeters ** 2, 1e-9),
                                elongation, fill])
    return Outlines(names, geoms, shapely.get_coordinates(shapely.centroid(geoms)), areas,
                    measures, np.mod(np.arctan2(long_side[:, 1], long_side[:, 0]), np.pi))


def _pairs(found: Outlines) -> tuple[Array, Array]:
    """Index pairs (each outline with its nearest neighbours) and their descriptors."""
    k = min(_NEIGHBOURS + 1, len(found))
    _, near = cKDTree(found.centroids).query(found.centroids, k=k)
    first = np.repeat(np.arange(len(found)), k - 1)
    second = near[:, 1:].reshape(-1)
    vector = found.centroids[second] - found.centroids[first]
    size = np.sqrt(found.areas[first])
    bearing = np.mod(np.arctan2(vector[:, 1], vector[:, 0]) - found.axes[first], np.pi)
    # the long axis of a near-square outline says little: its bearing counts less
    axis_weight = np.clip((1.0 - found.measures[first, 1]) / 0.3, 0.0, 1.0) / 0.35
    descriptors = np.column_stack([
        np.log(found.areas[second] / np.maximum(found.areas[first], 1e-9)) / 0.15,
        np.hypot(vector[:, 0], vector[:, 1]) / np.maximum(size, 1e-9) / 0.12,
        axis_weight * np.cos(2 * bearing),
        axis_weight * np.sin(2 * bearing),
        found.measures[first] / _SHAPE_TOLERANCE,
        found.measures[second] / _SHAPE_TOLERANCE,
    ])
    return np.column_stack([first, second]), descriptors


def drawn_outlines(shapes: list[tuple[Shape, BaseGeometry]], frame: BaseGeometry | None
                   ) -> dict[str, Outlines]:
    """Whole closed outlines inside the frame, per polygon style (the frame cuts none)."""
    edge = frame.boundary.buffer(1.0) if frame is not None else None
    limit = 0.25 * frame.area if frame is not None else np.inf
    by_style: dict[str, tuple[list[str], list[BaseGeometry]]] = defaultdict(lambda: ([], []))
    for shape, geom in shapes:
        if shape.kind != "polygon":
            continue
        for part in shapely.get_parts(geom):
            if part.area < 4.0 or part.area > limit or (edge is not None and edge.intersects(part)):
                continue
            names, polys = by_style[shape.style.label]
            names.append(f"outline {shape.seqno}" + (f"-{shape.part}" if shape.part else ""))
            polys.append(part)
    return {style: outlines(names, polys) for style, (names, polys) in by_style.items()
            if len(names) >= _MIN_OUTLINES}


def read_parcels(path: Path, bbox: tuple[float, float, float, float] | None,
                 wanted_crs: str | None) -> tuple[Outlines, CRS]:
    """Cadastre parcels (any layer GDAL reads; `.gz` through /vsigzip/), those meeting `bbox`
    (degrees) when given, in `wanted_crs` or else the UTM zone of where they lie."""
    import geopandas as gpd

    from pipeline.pdf.osm_streets import metric_crs

    source = f"/vsigzip/{path}" if path.suffix == ".gz" else str(path)
    if not path.is_file():
        raise PdfError(f"Parcels file {path}: no such file.")
    window = gpd.GeoSeries([box(*bbox)], crs="EPSG:4326") if bbox else None
    try:
        layer = gpd.read_file(source, bbox=window)  # the window in the file's own CRS
    except Exception as exc:  # pyogrio raises its own errors for unreadable files
        raise PdfError(f"Parcels file {path}: not a readable vector layer ({exc}).") from exc
    if layer.crs is None:
        raise PdfError(f"Parcels file {path}: no coordinate system; expected one (the Etalab "
                       "cadastre is EPSG:4326).")
    layer = layer[layer.geometry.notna() & layer.geometry.geom_type.isin(
        ["Polygon", "MultiPolygon"])]
    if len(layer) < _MIN_OUTLINES:
        raise PdfError(f"Parcels file {path}: {len(layer)} parcels in the search area; "
                       "expected the cadastre around the map (check --near/--bbox).")
    crs = metric_crs(tuple(layer.to_crs("EPSG:4326").total_bounds), wanted_crs)
    layer = layer.to_crs(crs)
    polygons = [max(shapely.get_parts(g), key=lambda p: p.area) for g in layer.geometry]
    ids = layer["id"].astype(str).tolist() if "id" in layer.columns else [
        str(i) for i in layer.index]
    log.info("parcels: %d cadastre parcels from %s", len(polygons), path.name)
    return outlines(ids, polygons), crs


def parcel_clues(drawn: Outlines, cadastre: Outlines) -> tuple[list[Clue], list[Target]]:
    """One clue per drawn outline, its targets the cadastre parcels of a similar shape."""
    targets = [Target(f"parcel {name}", name, shapely.points(c), poly.exterior)
               for name, c, poly in zip(cadastre.names, cadastre.centroids, cadastre.polygons,
                                        strict=True)]
    tree = cKDTree(cadastre.measures / _SHAPE_TOLERANCE)
    near = tree.query_ball_point(drawn.measures / _SHAPE_TOLERANCE, r=1.5)
    clues = []
    for i, candidates in enumerate(near):
        ring = drawn.polygons[i].exterior
        stations = np.arange(0.0, ring.length, _SAMPLE_STEP)
        samples = shapely.get_coordinates(shapely.line_interpolate_point(ring, stations))
        clues.append(Clue(drawn.names[i], drawn.centroids[i], samples,
                          tuple(sorted(int(c) for c in candidates))))
    return clues, targets


def parcel_hypotheses(drawn: Outlines, cadastre: Outlines) -> Hypotheses:
    """Similarities from drawn neighbour pairs onto cadastre pairs that look alike."""
    page_pairs, page_desc = _pairs(drawn)
    map_pairs, map_desc = _pairs(cadastre)
    k = min(_PAIR_MATCHES, len(map_desc))
    distance, index = cKDTree(map_desc).query(page_desc, k=k)
    found = []
    for row, (a, b) in enumerate(page_pairs):
        near = np.atleast_1d(index[row])[np.atleast_1d(distance[row]) <= 3.0]
        found.append((similarities(drawn.centroids[a], drawn.centroids[b],
                                   cadastre.centroids[map_pairs[near, 0]],
                                   cadastre.centroids[map_pairs[near, 1]]), row))
    hypotheses = Hypotheses.stack(found)
    log.debug("parcels: %d drawn pairs, %d cadastre pairs, %d hypotheses", len(page_pairs),
              len(map_pairs), len(hypotheses))
    return hypotheses


def area_box(cadastre: Outlines) -> BaseGeometry:
    return box(*shapely.total_bounds(cadastre.polygons))
