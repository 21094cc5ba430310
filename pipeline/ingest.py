"""Ingest: a source layer becomes features in EPSG:4326 with the OSM tags they propose.

Checks the layer's contract at the boundary (file, CRS, id field, unique ids, template fields) and
reports every problem at once. Features that cannot be used (empty or broken geometry, empty
template fields) are kept with a `skip` reason so every source feature is accounted for.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import MultiPoint, Point, shape
from shapely.geometry.base import BaseGeometry

from conflation.decisions import geometries_json
from exports.tag_rules import tag_problem, tags_problem
from pipeline.errors import InputError
from pipeline.profile import Profile
from pipeline.progress import progress

if TYPE_CHECKING:  # geopandas is imported where layers are read: a run reads them on the side
    import geopandas as gpd

    from pipeline.sources import LayerInfo

log = logging.getLogger(__name__)

TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")
WGS84 = "EPSG:4326"


@dataclass(frozen=True)
class SourceFeature:
    source_id: str
    geometry: BaseGeometry | None  # EPSG:4326; None when the feature has no usable geometry
    tags: dict[str, str]
    attributes: dict[str, Any]
    skip_reason: str | None = None


@dataclass(frozen=True)
class SourceLayer:
    """The ingested layer: every feature, usable or not, and where it came from."""

    features: tuple[SourceFeature, ...]
    metric_crs: str  # a projected CRS in metres around the layer, for distances
    info: dict[str, Any] = field(default_factory=dict)  # file, layer, sha256, CRS, encoding…

    @property
    def usable(self) -> list[SourceFeature]:
        return [f for f in self.features if f.skip_reason is None]

    def to_json(self) -> dict[str, Any]:
        geometries = geometries_json([f.geometry for f in self.features])
        return {
            "type": "FeatureCollection",
            "metric_crs": self.metric_crs,
            "info": self.info,
            "features": [
                {
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {
                        "source_id": f.source_id,
                        "tags": f.tags,
                        "skip_reason": f.skip_reason,
                        "attributes": f.attributes,
                    },
                }
                for f, geometry in zip(self.features, geometries, strict=True)
            ],
        }

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (to come back from the process that ingests, see `pipeline.stages`) with
        every geometry in one WKB array: shapely pickles geometries one by one, ten times
        slower."""
        geometries = np.empty(len(self.features), dtype=object)
        geometries[:] = [f.geometry for f in self.features]
        rows = [(f.source_id, f.tags, f.attributes, f.skip_reason) for f in self.features]
        return _unpickle_layer, (shapely.to_wkb(geometries), rows, self.metric_crs, self.info)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceLayer:
        features = tuple(
            SourceFeature(
                source_id=f["properties"]["source_id"],
                geometry=shape(f["geometry"]) if f["geometry"] else None,
                tags=dict(f["properties"]["tags"]),
                attributes=dict(f["properties"]["attributes"]),
                skip_reason=f["properties"]["skip_reason"],
            )
            for f in data["features"]
        )
        return cls(features, data["metric_crs"], dict(data.get("info", {})))


def _unpickle_layer(wkb: np.ndarray, rows: list[tuple[str, dict[str, str], dict[str, Any], str | None]],
                    metric_crs: str, info: dict[str, Any]) -> SourceLayer:
    geometries = shapely.from_wkb(wkb).tolist()
    features = tuple(SourceFeature(source_id, geometry, tags, attributes, skip_reason)
                     for geometry, (source_id, tags, attributes, skip_reason)
                     in zip(geometries, rows, strict=True))
    return SourceLayer(features, metric_crs, info)


def file_digest(path: Path) -> dict[str, Any]:
    """Path, size and sha256 of an input file, for the report."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "size": path.stat().st_size, "sha256": digest.hexdigest()}


def ingest(profile: Profile, source_path: Path) -> SourceLayer:
    """Read the profile's source layer and build one `SourceFeature` per row."""
    from pipeline.sources import read_layer, read_table

    src = profile.source
    if src.geometry == "none":  # a table of names: rows are matched by name, not by place
        frame, info = read_table(source_path, layer=src.layer, encoding=src.encoding,
                                 delimiter=src.delimiter, columns=src.columns)
    else:
        frame, info = read_layer(source_path, layer=src.layer, crs=src.crs, encoding=src.encoding,
                                 x=src.x, y=src.y, delimiter=src.delimiter, columns=src.columns)
    _check_contract(frame, info, profile)
    pdf_derived = "pdf_file" in frame.columns  # written by `sig2osm pdf extract`: low precision
    frame = frame.to_crs(WGS84)
    _check_lonlat_range(frame, info)
    rows = _rows(frame, src.id)
    valid = shapely.is_valid(frame.geometry.values).tolist()  # at once, not per feature
    features = [_feature(row, profile, ok)
                for row, ok in progress(zip(rows, valid, strict=True), "ingest", len(rows),
                                        " features")]
    if info.driver == "GeoJSON" and info.member is None:
        features = _refuse_altered_text(features, source_path, profile)
    usable = [f.geometry for f in features if f.geometry is not None]
    area = profile.match.area or profile.osm.bounds
    if not usable and area:
        usable = [shapely.box(*area)]  # a table without geometry: the area its names lie in
    metric = metric_crs_around(usable)
    details = {**file_digest(source_path), "member": info.member, "layer": info.layer,
               "driver": info.driver, "encoding": info.encoding, "crs": info.crs,
               "crs_origin": info.crs_origin, "features": len(features),
               "pdf_derived": pdf_derived}
    return SourceLayer(tuple(features), metric, details)


def _refuse_altered_text(features: list[SourceFeature], path: Path,
                         profile: Profile) -> list[SourceFeature]:
    """Features whose id or tag fields GDAL read altered (a NUL cut the value, a lone
    surrogate became U+FFFD) are `skip`, naming the field; in other fields, a warning."""
    from pipeline.intact_text import altered_values

    altered = altered_values(path)
    if not altered or len(altered) > len(features) or max(altered) >= len(features):
        return features
    used = {profile.source.id, *profile.values,
            *(n for t in profile.tags.values() for n in TEMPLATE_FIELD.findall(t))}
    result, elsewhere = list(features), []
    for index, (name, problem) in sorted(altered.items()):
        if name not in used:
            elsewhere.append(f"{features[index].source_id} ({name})")
        elif features[index].skip_reason is None:
            result[index] = replace(features[index], skip_reason=f"field {name} {problem}; "
                                    "fix the value in the source (it is never cut or changed)")
    if elsewhere:
        log.warning("ingest: %d feature(s) hold values that GDAL does not read intact in fields "
                    "no tag uses: %s; those fields are shown as read", len(elsewhere),
                    ", ".join(elsewhere[:10]))
    return result


def _rows(frame: gpd.GeoDataFrame, id_field: str) -> list[tuple[str, BaseGeometry | None, dict]]:
    columns = [c for c in frame.columns if c != frame.geometry.name]
    rows = []
    for geom, record in zip(frame.geometry, frame[columns].to_dict("records"), strict=True):
        attributes = {k: _plain(v) for k, v in record.items()}
        rows.append((_text(attributes[id_field]), geom, attributes))
    return rows


def _check_contract(frame: gpd.GeoDataFrame, info: LayerInfo, profile: Profile) -> None:
    problems: list[str] = []
    columns = [c for c in frame.columns if c != frame.geometry.name]
    id_field = profile.source.id
    if len(frame) == 0:
        raise InputError(f"Source {info.label} is empty: no feature to import.")
    if id_field not in columns:
        problems.append(f"id field '{id_field}' (source.id) not found; fields: {', '.join(columns)}")
    else:
        ids = [_text(_plain(v)) for v in frame[id_field]]
        empty = sum(1 for i in ids if not i)
        if empty:
            problems.append(f"{empty} feature(s) have an empty id in field '{id_field}'")
        dupes = sorted(k for k, n in Counter(i for i in ids if i).items() if n > 1)
        if dupes:
            shown = ", ".join(dupes[:20]) + (f" … ({len(dupes)} in all)" if len(dupes) > 20 else "")
            problems.append(f"duplicate ids in field '{id_field}': {shown}")
    for key, template in profile.tags.items():
        for name in TEMPLATE_FIELD.findall(template):
            if name not in columns:
                problems.append(f"tag '{key}' uses field '{name}', which the layer lacks; "
                                f"fields: {', '.join(columns)}")
    for name in profile.values:
        if name not in columns:
            problems.append(f"values.{name}: the layer has no field '{name}'")
    if problems:
        raise InputError(f"Source {info.label}: " + "; ".join(problems) + ".")


def _check_lonlat_range(frame: gpd.GeoDataFrame, info: LayerInfo) -> None:
    """A wrong CRS (Lambert-93 metres declared as degrees) gives coordinates off the globe."""
    valid = frame.geometry[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if valid.empty:
        return
    west, south, east, north = valid.total_bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InputError(
            f"Source {info.label}: coordinates fall outside longitude/latitude range after "
            f"reading them as {info.crs} ({info.crs_origin}); bounds {west:.1f}, {south:.1f}, "
            f"{east:.1f}, {north:.1f}. The CRS is probably wrong: set source.crs (e.g. EPSG:2154 "
            "for Lambert-93, EPSG:3942–3950 for the CC zones).")


def _feature(row: tuple[str, BaseGeometry | None, dict], profile: Profile,
             valid: bool | None = None) -> SourceFeature:
    source_id, geom, attributes = row
    geometry, geometry_problem = _repair(geom, valid)
    if profile.source.geometry == "none":
        geometry, geometry_problem = None, None  # matched by name (conflation.attributes)
    tags, tag_problem = render_tags(profile.tags, profile.values, attributes)
    reason = geometry_problem or tag_problem
    return SourceFeature(source_id, geometry, tags, attributes, reason)


def _repair(geom: BaseGeometry | None,
            valid: bool | None = None) -> tuple[BaseGeometry | None, str | None]:
    if geom is None or geom.is_empty:
        return None, "empty geometry"
    if not (shapely.is_valid(geom) if valid is None else valid):
        fixed = shapely.make_valid(geom)
        polygonal = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type.endswith("Polygon")]
        if geom.geom_type.endswith("Polygon") and polygonal:
            fixed = shapely.union_all(polygonal)
        if fixed.is_empty or (fixed.geom_type != geom.geom_type and "Polygon" not in fixed.geom_type):
            return None, f"invalid {geom.geom_type} geometry beyond repair"
        geom = fixed
    if isinstance(geom, MultiPoint):
        # A point stored as a multi-point (often the same location twice) is one location.
        distinct = {(p.x, p.y) for p in geom.geoms}
        if len(distinct) == 1:
            return Point(next(iter(distinct))), None
        return None, f"multi-point with {len(distinct)} distinct locations; expected one point"
    if geom.has_z:
        geom = shapely.force_2d(geom)
    return geom, None


def render_tags(
    templates: Mapping[str, str],
    value_maps: Mapping[str, Mapping[str, str]],
    attributes: Mapping[str, Any],
) -> tuple[dict[str, str], str | None]:
    """Fill `{FIELD}` templates; a template whose field is empty makes the feature unusable."""
    tags: dict[str, str] = {}
    for key, template in templates.items():
        if "{" not in template:  # a constant (amenity=bench): nothing to fill
            tags[key] = template.strip()
            continue
        empty: list[str] = []

        def fill(match: re.Match[str], empty: list[str] = empty) -> str:
            name = match.group(1)
            value = _text(attributes.get(name))
            mapped = value_maps.get(name, {}).get(value, value)
            if not mapped:
                empty.append(name)
            return mapped

        value = TEMPLATE_FIELD.sub(fill, template).strip()
        if empty:
            return tags, f"field {', '.join(empty)} is empty (needed by tag {key})"
        if not value:
            return tags, f"tag {key} has an empty value"
        tags[key] = value
    if tags_problem(tags) is None:  # the usual case, checked at once
        return tags, None
    for key, value in tags.items():  # over 255 characters, or not XML: refused, not cut
        problem = tag_problem(key, value)
        if problem:
            return {k: v for k, v in tags.items() if k != key}, f"tag {key}: {problem}"
    return tags, None


def metric_crs_around(geometries: list[BaseGeometry]) -> str:
    """The UTM zone around the layer's centre: distances in metres with negligible distortion."""
    if not geometries:
        return "EPSG:3857"
    centre = shapely.union_all([g.centroid for g in geometries[:5000]]).centroid
    zone = int((centre.x + 180) // 6) + 1
    epsg = (32600 if centre.y >= 0 else 32700) + zone
    return CRS.from_epsg(epsg).to_string()


def _plain(value: Any) -> Any:
    """Attribute values as JSON-friendly Python values (no NaN, no numpy or pandas types)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    """A field value as tag text: 574.0 is "574", None is ""."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()
