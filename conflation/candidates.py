"""Candidate search: source features ↔ OSM objects through a spatial index in a metric CRS.

Every geometry pairing gives a geometric closeness `geo` in [0, 1] next to the distance:

- point ↔ node, way or area: distance to the object (to the outline of an area, 0 inside);
  geo = 1 - distance / radius.
- polygon ↔ area: overlap, the larger of intersection over union and 0.85 × containment
  (a building drawn smaller or larger than its parcel); outlines that do not touch count a
  little within match.distance (a shifted building) and nothing beyond; polygon ↔ node or
  line: as for points.
- line ↔ way: the share of one line lying within a buffer of the other (OSM splits streets
  into many ways, so the better of both directions counts), or 1 - Hausdorff / radius.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

POINT, LINE, AREA = 0, 1, 2
KINDS = {POINT: "node", LINE: "line", AREA: "area"}

# (source positions, OSM positions) -> the radius of each pair, in metres.
RadiusFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Pairs:
    """Candidate pairs as parallel arrays (positions in the source and OSM arrays)."""

    source: np.ndarray  # int
    osm: np.ndarray  # int
    distance: np.ndarray  # metres
    geo: np.ndarray  # geometric closeness in [0, 1]
    areas: np.ndarray  # bool: an area of the source and an area of OSM

    def __len__(self) -> int:
        return len(self.source)

    def subset(self, keep: np.ndarray) -> Pairs:
        return Pairs(self.source[keep], self.osm[keep], self.distance[keep], self.geo[keep],
                     self.areas[keep])


def geometry_kinds(geometries: np.ndarray) -> np.ndarray:
    """POINT, LINE or AREA for each geometry (multi-geometries by their parts)."""
    type_ids = shapely.get_type_id(geometries)
    kinds = np.full(len(geometries), POINT)
    kinds[np.isin(type_ids, (1, 2, 5))] = LINE
    kinds[np.isin(type_ids, (3, 6))] = AREA
    return kinds


def find_candidates(
    source: np.ndarray, osm: np.ndarray, search: np.ndarray, radius_of: RadiusFn,
    tree: shapely.STRtree | None = None, near: float = math.inf,
) -> Pairs:
    """Pairs within each source's `search` distance, then within the pair's own radius.

    `source` and `osm` are metric geometries; `radius_of(source_pos, osm_pos)` gives the radius
    of each pair (per-type radii are data, see `conflation.scoring.radius_function`); `tree`: an
    STRtree over `osm`, when already built.
    """
    empty = Pairs(np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0),
                  np.zeros(0, bool))
    if len(source) == 0 or len(osm) == 0:
        return empty
    tree = tree if tree is not None else shapely.STRtree(osm)
    left, right = tree.query(source, predicate="dwithin", distance=search)
    if len(left) == 0:
        return empty
    # In the order of the positions, not of the tree's inner layout: the same pairs come in the
    # same order from an index over a part of the objects (a region) as over all of them.
    order = np.lexsort((right, left))
    left, right = left[order], right[order]
    distance = shapely.distance(source[left], osm[right])
    radius = radius_of(left, right)
    keep = distance <= radius
    left, right, distance, radius = left[keep], right[keep], distance[keep], radius[keep]
    src, dst = source[left], osm[right]
    areas = (geometry_kinds(src) == AREA) & (geometry_kinds(dst) == AREA)
    geo = _closeness(src, dst, distance, radius, areas, near)
    return Pairs(left, right, distance, geo, areas)


def _closeness(src: np.ndarray, osm: np.ndarray, distance: np.ndarray, radius: np.ndarray,
               areas: np.ndarray, near: float) -> np.ndarray:
    geo = np.clip(1.0 - distance / np.maximum(radius, 1e-9), 0.0, 1.0)
    if areas.any():
        close = np.where(distance[areas] <= near, geo[areas], 0.0)
        geo[areas] = _area_overlap(src[areas], osm[areas], close)
    lines = (geometry_kinds(src) == LINE) & (geometry_kinds(osm) == LINE)
    if lines.any():
        geo[lines] = _line_overlap(src[lines], osm[lines], radius[lines])
    return geo


def _area_overlap(src: np.ndarray, osm: np.ndarray, near: np.ndarray) -> np.ndarray:
    inter = shapely.area(shapely.intersection(src, osm))
    a, b = shapely.area(src), shapely.area(osm)
    union = np.maximum(a + b - inter, 1e-9)
    iou = inter / union
    containment = inter / np.maximum(np.minimum(a, b), 1e-9)
    overlap = np.maximum(iou, 0.85 * containment)
    # Disjoint outlines close to each other still count a little (a shifted building).
    return np.where(inter > 0, overlap, 0.5 * near)


def _line_overlap(src: np.ndarray, osm: np.ndarray, radius: np.ndarray) -> np.ndarray:
    width = np.maximum(radius / 3.0, 1.0)
    src_len = np.maximum(shapely.length(src), 1e-9)
    osm_len = np.maximum(shapely.length(osm), 1e-9)
    src_in = shapely.length(shapely.intersection(src, shapely.buffer(osm, width))) / src_len
    osm_in = shapely.length(shapely.intersection(osm, shapely.buffer(src, width))) / osm_len
    hausdorff = shapely.hausdorff_distance(src, osm)
    return np.clip(np.maximum(np.maximum(src_in, osm_in), 1.0 - hausdorff / radius), 0.0, 1.0)
