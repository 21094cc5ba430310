"""`review.geojson`: one Feature per source feature and per `missing` OSM object, with diffs.

The file holds one feature per line (as GDAL writes GeoJSON): a changed decision is a one-line
diff, `grep` finds a source id, and the standard library's C encoder writes it (indented JSON
goes through its pure-Python encoder, several times slower on a large run).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from shapely.geometry import mapping

from pipeline.kernel.decisions import Decision, geometries_json

OSM_BROWSE = "https://www.openstreetmap.org/"


def tag_diffs(decision: Decision) -> dict[str, Any]:
    """What the proposal does to the OSM object's tags, readable at a glance: keys added,
    values changed (old → new), and values where OSM's was kept over the source's."""
    merge = decision.merge
    if merge is None:
        return {"tags_new": {} if decision.osm else dict(decision.tags),
                "tags_changed": {}, "tags_kept": {}, "tags_removed": {}}
    return {
        "tags_new": dict(merge.new),
        "tags_changed": {k: {"old": o, "new": n} for k, (o, n) in merge.changed.items()},
        "tags_kept": {k: {"osm": o, "source": s} for k, (o, s) in merge.kept.items()},
        "tags_removed": dict(merge.removed),
    }


def review_feature(decision: Decision, geometry: dict[str, Any] | None = None) -> dict[str, Any]:
    """`geometry`: the decision's geometry as GeoJSON, when already known."""
    properties: dict[str, Any] = {
        "source_id": decision.source_id,
        "decision": decision.decision,
        "osm_id": decision.osm_key,
        "distance_m": None if decision.distance_m is None else round(decision.distance_m, 2),
        "reason": decision.reason,
        "why": [r.to_json() for r in decision.why],
        "tags": decision.tags,
        **tag_diffs(decision),
        "candidates": [{**c.to_json(), "osm_url": OSM_BROWSE + c.osm_key}
                       for c in decision.candidates],
        "osm_version": decision.osm.version if decision.osm else None,
        "osm_url": OSM_BROWSE + decision.osm_key if decision.osm_key else None,
    }
    if decision.proposed:
        properties["proposed"] = decision.proposed
    if decision.extra_osm:  # several OSM objects (the ways of a street): osm_id is the first
        properties["osm_ids"] = decision.osm_keys
    if geometry is None and decision.geometry is not None:
        geometry = mapping(decision.geometry)
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def review_features(decisions: Sequence[Decision]) -> list[dict[str, Any]]:
    geometries = geometries_json([d.geometry for d in decisions])
    return [review_feature(d, g) for d, g in zip(decisions, geometries, strict=True)]


def review_geojson(decisions: Sequence[Decision]) -> str:
    return review_lines(review_features(decisions))


def review_lines(features: Sequence[dict[str, Any]]) -> str:
    """The FeatureCollection, one feature per line."""
    lines = [finite_json(feature) for feature in features]
    return '{"type": "FeatureCollection", "features": [\n' + ",\n".join(lines) + "\n]}\n"


def finite_json(value: Any, **options: Any) -> str:
    """`json.dumps(value, ensure_ascii=False)` with NaN and infinities written as null: JSON
    has no such numbers, and browsers and GIS tools refuse a file holding them."""
    try:  # the common case, without copying the data: every number is finite
        return json.dumps(value, ensure_ascii=False, allow_nan=False, **options)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
