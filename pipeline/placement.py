"""Where the source lies, checked against where the OSM data is, before anything is proposed.

Published layers are often mislocated as a whole (latitude and longitude swapped, a wrong or
missing `.prj`) or in part (a point at 0,0, one address geocoded in another country). Three
checks, each with a plain message and the fix:

- **outliers**: features far from the rest of the layer are `skip` with their own reason (and so
  never widen an Overpass query);
- **placement**: the layer against a reference area (where a local extract's data lies, the
  profile's `osm.bounds`/`match.area`, or the source CRS's area of use): when the layer misses
  it but its swapped coordinates, or the same numbers read in another common CRS, fall inside,
  the run stops and says which fix to write in the profile;
- **precision**: coordinates rounded to a few metres or worse (4 decimals of a degree stack
  features on one spot) make the layer low precision.

`footprint` computes where OSM data really lies from node positions: cells of a grid that hold
data, gaps closed and holes filled, so an extract's uncovered corners are not taken as mapped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from pipeline.kernel.components import connected_components
from pipeline.kernel.errors import InputError

log = logging.getLogger(__name__)

EARTH_KM = 6371.0
OUTLIER_KM = 100.0  # a feature at least this far from the rest of the layer can be an outlier
OUTLIER_SPACINGS = 20  # … and at least this many times the layer's typical spacing
# CRSs a French (or European) layer may really be in when its declared one is wrong.
LIKELY_CRS = ("EPSG:4326", "EPSG:2154", *(f"EPSG:{n}" for n in range(3942, 3951)),
              "EPSG:27572", "EPSG:3857", "EPSG:32630", "EPSG:32631", "EPSG:32632")
# The grid on which OSM data is located: a 50th of the data's extent, between about 150 m and
# 1 km (degrees), so a town's map export and a region's extract are both told apart from
# their empty corners.
FOOTPRINT_CELLS_ACROSS = 50
FOOTPRINT_CELL = (0.0015, 0.01)
FOOTPRINT_GAP = 5  # cells: gaps narrower than this between mapped areas count as covered
LOW_PRECISION_M = 5.0  # coordinates rounded coarser than this are low precision


# --- outliers ------------------------------------------------------------------------------


def _sinusoidal_km(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points in kilometres on a sinusoidal projection: distances between neighbours right to a
    few per cent anywhere, far ones roughly (enough to tell 100 km from 4 000)."""
    return np.column_stack([np.radians(lon) * np.cos(np.radians(lat)) * EARTH_KM,
                            np.radians(lat) * EARTH_KM])


@dataclass(frozen=True)
class Outlier:
    index: int  # position in the points given
    km: float  # distance to the nearest feature of the bulk of the layer
    group: int  # features in its group (1: alone)


def find_outliers(lon: np.ndarray, lat: np.ndarray) -> list[Outlier]:
    """Features in small groups far from the bulk of the layer.

    Features closer than a threshold (the larger of `OUTLIER_KM` and `OUTLIER_SPACINGS` times
    the median distance between neighbours) are linked; the largest linked group is the bulk.
    A group is an outlier when it holds fewer than max(2, min(50, 1 %)) of the features: two
    points at 0,0 among 850 are, a department overseas among 26 million addresses is not."""
    n = len(lon)
    if n < 3:
        return []
    points = shapely.points(_sinusoidal_km(lon, lat))
    _, nearest = shapely.STRtree(points).query_nearest(points, exclusive=True, all_matches=False,
                                                       return_distance=True)
    spacing = float(np.median(nearest)) if len(nearest) else 0.0
    threshold = max(OUTLIER_KM, OUTLIER_SPACINGS * spacing)
    labels = _groups(lon, lat, threshold)
    sizes = np.bincount(labels)
    bulk = int(np.argmax(sizes))
    small = max(2, min(50, n // 100))
    outlying = np.flatnonzero((sizes[labels] < small) & (labels != bulk))
    if not len(outlying):
        return []
    kept = np.flatnonzero(sizes[labels] >= small)
    pairs = shapely.STRtree(points[kept]).query_nearest(points[outlying], all_matches=False)
    near = kept[pairs[1][np.argsort(pairs[0])]]
    km = _haversine_km(lon[outlying], lat[outlying], lon[near], lat[near])
    return [Outlier(int(i), float(d), int(sizes[labels[i]]))
            for i, d in zip(outlying.tolist(), km.tolist(), strict=True)]


def _haversine_km(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray,
                  lat2: np.ndarray) -> np.ndarray:
    lo1, la1, lo2, la2 = (np.radians(v) for v in (lon1, lat1, lon2, lat2))
    h = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def _groups(lon: np.ndarray, lat: np.ndarray, km: float) -> np.ndarray:
    """A group label per point: points in touching grid cells of `km` size share a label."""
    size = km / 111.2
    cells = np.column_stack([np.floor(lat / size), np.floor(lon / size)]).astype(np.int64)
    unique, of_point = np.unique(cells, axis=0, return_inverse=True)
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(unique.tolist())}
    touching = [(i, j) for i, (a, b) in enumerate(unique.tolist())
                for j in (index.get((a + da, b + db)) for da in (-1, 0, 1) for db in (-1, 0, 1))
                if j is not None]
    _, labels = connected_components([i for i, _ in touching], [j for _, j in touching],
                                     len(unique))
    return np.asarray(labels)[np.ravel(of_point)]


# --- precision -----------------------------------------------------------------------------


def coordinate_quantum(xs: np.ndarray, ys: np.ndarray, geographic: bool) -> float | None:
    """The step every coordinate is a multiple of, in metres (None when finer than a
    millimetre, or no coordinate): 1e-4 degree is ~11 m, a projected layer rounded to the
    metre is 1 m."""
    values = np.concatenate([xs, ys])
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    for decimals in range(-3, 9):
        scaled = values * 10.0 ** decimals
        tolerance = np.maximum(1e-9, 1e-12 * np.abs(scaled))  # float error, not rounding
        if np.all(np.abs(scaled - np.round(scaled)) < tolerance):
            step = 10.0 ** -decimals
            metres = step * 111_320 if geographic else step
            return metres if metres >= 1e-3 else None
    return None


# --- the layer against a reference area ----------------------------------------------------


@dataclass(frozen=True)
class RawSample:
    """Some of the layer's points as read, before any reprojection (for a diagnosis)."""

    crs: str
    x: tuple[float, ...]
    y: tuple[float, ...]

    def to_lonlat(self, crs: str, swapped: bool = False) -> np.ndarray:
        xs, ys = np.array(self.x), np.array(self.y)
        if swapped:
            xs, ys = ys, xs
        try:
            transformer = Transformer.from_crs(CRS.from_user_input(crs), "EPSG:4326",
                                               always_xy=True)
            lon, lat = transformer.transform(xs, ys)
        except (CRSError, ValueError):
            return np.empty((0, 2))
        points = np.column_stack([lon, lat])
        return points[np.all(np.isfinite(points), axis=1)]


def _share_inside(points: np.ndarray, area: BaseGeometry) -> float:
    if not len(points):
        return 0.0
    return float(np.mean(shapely.contains_xy(area, points[:, 0], points[:, 1])))


def diagnose(sample: RawSample, area: BaseGeometry, share: float = 0.0) -> str | None:
    """The fix that puts a layer missing `area` (`share` of it inside) inside it, in words, or
    None. The area may cover only part of the layer (a town centre's extract): a fix counts when
    it brings at least 2 % of the layer in, five times what lies there now."""
    def better(points: np.ndarray) -> bool:
        inside = _share_inside(points, area)
        return inside >= 0.02 and inside >= 5 * share

    if better(sample.to_lonlat(sample.crs, swapped=True)):
        return ("its coordinates with x and y swapped fall inside it: the layer was published "
                "with latitude and longitude (or x and y) swapped; set source.swap_axes: true")
    for crs in LIKELY_CRS:
        if crs != sample.crs and better(sample.to_lonlat(crs)):
            return (f"read as {crs}, its coordinates fall inside it: the CRS {sample.crs} is "
                    f"wrong; set source.crs: {crs}")
    return None


def check_placement(points: np.ndarray, sample: RawSample, area: BaseGeometry,
                    area_label: str, layer_label: str) -> str | None:
    """Raise `InputError` when the layer (usable points, lon/lat) is not where `area` is;
    return a warning when part of it lies outside."""
    if not len(points):
        return None
    shapely.prepare(area)
    share = _share_inside(points, area)
    if share >= 0.5:
        return None if share == 1.0 else (
            f"{1 - share:.0%} of the usable features of {layer_label} lie outside "
            f"{area_label}: they will be skipped")
    fix = diagnose(sample, area, share) if share < 0.05 else None
    where = _box_text(points)
    there = _box_text(np.array(area.envelope.exterior.coords))
    if fix:
        raise InputError(f"Source {layer_label} lies at {where}, outside {area_label} ({there}); "
                         f"{fix}.")
    if share == 0:
        raise InputError(f"Source {layer_label} lies at {where}, and none of its features falls "
                         f"in {area_label} ({there}). Neither swapped axes nor another common CRS "
                         f"({', '.join(LIKELY_CRS)}) explains it: check source.crs, or give OSM "
                         "data of that place (osm.file, osm.bounds).")
    return (f"only {share:.0%} of the usable features of {layer_label} lie in {area_label} "
            f"({there}); the others ({where}) will be skipped")


def _box_text(points: np.ndarray) -> str:
    west, south = np.min(points, axis=0)
    east, north = np.max(points, axis=0)
    return f"[{west:.4f}, {south:.4f}, {east:.4f}, {north:.4f}]"


def crs_area_of_use(crs: str) -> tuple[BaseGeometry, str] | None:
    """Where a projected CRS is meant to be used (EPSG:2154: metropolitan France), if known."""
    try:
        parsed = CRS.from_user_input(crs)
    except CRSError:
        return None
    area = parsed.area_of_use
    if parsed.is_geographic or area is None or (area.east - area.west) >= 350:
        return None
    return shapely.box(area.west, area.south, area.east, area.north), (
        f"the area of use of {crs} ({area.name})")


# --- where OSM data lies -------------------------------------------------------------------


def footprint(lon: np.ndarray, lat: np.ndarray, cell: float | None = None,
              gap: int = FOOTPRINT_GAP) -> BaseGeometry | None:
    """The area where points lie: grid cells holding a point, gaps up to `gap` cells closed,
    holes filled. None without points."""
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return None
    if cell is None:
        extent = max(np.ptp(np.percentile(lon[ok], [2, 98])),
                     np.ptp(np.percentile(lat[ok], [2, 98])))
        cell = float(np.clip(extent / FOOTPRINT_CELLS_ACROSS, *FOOTPRINT_CELL))
    cells = np.unique(np.column_stack([np.floor(lat[ok] / cell), np.floor(lon[ok] / cell)])
                      .astype(np.int64), axis=0)
    occupied = _cells_to_polygon(cells, cell)
    width = gap * cell
    closed = occupied.buffer(width, join_style="mitre").buffer(-width, join_style="mitre")
    filled = shapely.union_all([shapely.Polygon(part.exterior)
                                for part in shapely.get_parts(shapely.union(closed, occupied))])
    return filled


def _cells_to_polygon(cells: np.ndarray, cell: float) -> BaseGeometry:
    """The union of grid cells (row, column), built from runs along each row: few boxes."""
    boxes = []
    for row in np.unique(cells[:, 0]).tolist():
        columns = cells[cells[:, 0] == row, 1]
        breaks = np.flatnonzero(np.diff(columns) > 1)
        starts = np.concatenate([[columns[0]], columns[breaks + 1]])
        stops = np.concatenate([columns[breaks], [columns[-1]]]) + 1
        boxes += [shapely.box(a * cell, row * cell, b * cell, (row + 1) * cell)
                  for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]
    return shapely.union_all(boxes)


def uncovered_share(declared: BaseGeometry, data: BaseGeometry | None) -> float:
    """The share of a declared area where no data lies."""
    if data is None or declared.area == 0:
        return 1.0
    return 1.0 - float(shapely.intersection(declared, data).area / declared.area)


def sample_points(xs: Sequence[float], ys: Sequence[float], limit: int = 500
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """At most `limit` points, evenly spread over the layer's order."""
    step = max(1, math.ceil(len(xs) / limit))
    return tuple(xs[::step]), tuple(ys[::step])
