"""Geometries in a metric CRS, vectorised: distances are only ever computed in metres."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry


@lru_cache(maxsize=16)
def _transformer(metric_crs: str) -> Transformer:
    crs = CRS.from_user_input(metric_crs)
    if crs.is_geographic:
        raise ValueError(f"distances need a projected CRS in metres, got geographic {metric_crs}")
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def to_metric(geometries: Sequence[BaseGeometry] | np.ndarray, metric_crs: str) -> np.ndarray:
    """Project EPSG:4326 geometries to `metric_crs`; a geographic target is an error."""
    transformer = _transformer(metric_crs)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    array = np.empty(len(geometries), dtype=object)
    array[:] = list(geometries)
    if len(array) == 0:
        return array
    return shapely.transform(array, project)
