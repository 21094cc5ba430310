"""Geometries in a metric CRS, vectorised: distances are only ever computed in metres."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry


def to_metric(geometries: Sequence[BaseGeometry], metric_crs: str) -> np.ndarray:
    """Project EPSG:4326 geometries to `metric_crs`; a geographic target is an error."""
    crs = CRS.from_user_input(metric_crs)
    if crs.is_geographic:
        raise ValueError(f"distances need a projected CRS in metres, got geographic {metric_crs}")
    transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geometries, dtype=object), project)
