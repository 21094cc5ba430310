"""Ingest: a source layer becomes features in EPSG:4326 with the OSM tags they propose.

Checks the layer's contract at the boundary (file, CRS, id field, unique ids, template fields) and
reports every problem at once. Features that cannot be used (empty or broken geometry, empty
template fields) are kept with a `skip` reason so every source feature is accounted for.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPoint, Point, shape
from shapely.geometry.base import BaseGeometry

from maps.legend import missing_fields
from pipeline.cleaning import TextRepairs, plain
from pipeline.intact_text import altered_values
from pipeline.kernel.decisions import geometries_json
from pipeline.kernel.errors import InputError, ProfileError
from pipeline.kernel.osm import match_alternatives, tags_match
from pipeline.kernel.reasons import Reason, as_reason, reason
from pipeline.kernel.settings import Profile
from pipeline.kernel.tag_rules import tag_reason, tags_problem
from pipeline.kernel.templates import TagTemplates, field_text, template_fields
from pipeline.placement import (
    RawSample,
    check_placement,
    coordinate_quantum,
    crs_area_of_use,
    diagnose,
    find_outliers,
    sample_points,
)
from pipeline.progress import progress

if TYPE_CHECKING:  # geopandas is imported where layers are read: a run reads them on the side
    import geopandas as gpd

    from pipeline.sources import LayerInfo

log = logging.getLogger(__name__)

WGS84 = "EPSG:4326"


@dataclass(frozen=True)
class SourceFeature:
    source_id: str
    geometry: BaseGeometry | None  # EPSG:4326; None when the feature has no usable geometry
    tags: dict[str, str]
    attributes: dict[str, Any]
    skip_reason: Reason | str | None = None  # text: from a hand-made layer


@dataclass(frozen=True)
class SourceLayer:
    """The ingested layer: every feature, usable or not, and where it came from."""

    features: tuple[SourceFeature, ...]
    metric_crs: str  # a projected CRS in metres around the layer, for distances
    info: dict[str, Any] = field(default_factory=dict)  # file, layer, sha256, CRS, encoding…
    sample: RawSample | None = None  # some points as read, for a diagnosis of where it lies
    gdal: str = ""  # the GDAL version that read it (for the report)

    @property
    def usable(self) -> list[SourceFeature]:
        return [f for f in self.features if f.skip_reason is None]

    def to_json(self) -> dict[str, Any]:
        geometries = geometries_json([f.geometry for f in self.features])
        return {
            "type": "FeatureCollection",
            "metric_crs": self.metric_crs,
            "info": self.info,
            "sample": None if self.sample is None else asdict(self.sample),
            "gdal": self.gdal,
            "features": [
                {
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {
                        "source_id": f.source_id,
                        "tags": f.tags,
                        "skip_reason": None if f.skip_reason is None else str(f.skip_reason),
                        "why": None if f.skip_reason is None else as_reason(
                            f.skip_reason).to_json(),
                        "attributes": f.attributes,
                    },
                }
                for f, geometry in zip(self.features, geometries, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceLayer:
        features = tuple(
            SourceFeature(
                source_id=f["properties"]["source_id"],
                geometry=shape(f["geometry"]) if f["geometry"] else None,
                tags=dict(f["properties"]["tags"]),
                attributes=dict(f["properties"]["attributes"]),
                skip_reason=_skip_reason(f["properties"]),
            )
            for f in data["features"]
        )
        sample = data.get("sample")
        return cls(features, data["metric_crs"], dict(data.get("info", {})),
                   RawSample(sample["crs"], tuple(sample["x"]), tuple(sample["y"]))
                   if sample else None, data.get("gdal", ""))


def _skip_reason(properties: Mapping[str, Any]) -> Reason | None:
    why = properties.get("why")
    if why is not None:
        return Reason.from_json(why)
    text = properties.get("skip_reason")
    return None if text is None else as_reason(text)


def file_digest(path: Path) -> dict[str, Any]:
    """Path, size and sha256 of an input file, for the report and the stages' cache keys."""
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size,
            "sha256": _sha256(str(path), stat.st_size, stat.st_mtime_ns)}


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Read once a run however many keys and reports ask (a country's extract is gigabytes);
    a file written again has another size or time, so another entry."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ingest(profile: Profile, source_path: Path) -> SourceLayer:
    """Read the profile's source layer and build one `SourceFeature` per row."""
    src = profile.source
    frame, info = _read(profile, source_path)
    _check_contract(frame, info, profile)
    pdf_derived = "pdf_file" in frame.columns  # written by `sig2osm pdf extract`: low precision
    if src.swap_axes:
        frame = frame.set_geometry(shapely.transform(frame.geometry.values, lambda c: c[:, ::-1]))
    sample, step = _as_read(frame, info)
    frame = frame.to_crs(WGS84)
    _check_lonlat_range(frame, info, sample)
    repairs = TextRepairs()
    rows = _rows(frame, src.id, repairs if src.repair_text else None)
    valid = shapely.is_valid(frame.geometry.values).tolist()  # at once, not per feature
    build = FeatureBuilder(profile)
    features = [build(row, ok)
                for row, ok in progress(zip(rows, valid, strict=True), "ingest", len(rows),
                                        " features")]
    if info.driver == "GeoJSON" and info.member is None:
        features = _refuse_altered_text(features, source_path, profile)
    features, outliers = _outliers(features, src.outliers == "skip")
    usable = [f.geometry for f in features if f.skip_reason is None and f.geometry is not None]
    area = profile.match.area or profile.osm.bounds
    if not usable and area:
        usable = [shapely.box(*area)]  # a table without geometry: the area its names lie in
    details = {**file_digest(source_path), "member": info.member, "layer": info.layer,
               "driver": info.driver, "encoding": info.encoding, "crs": info.crs,
               "crs_origin": info.crs_origin, "features": len(features),
               "pdf_derived": pdf_derived,
               "pdf_counts": pdf_counts(source_path, info.layer) if pdf_derived else None,
               "tags_left_out": build.templates.summary(),
               "text_repaired": repairs.summary(), "outliers": outliers,
               "coordinate_step_m": step, "swap_axes": src.swap_axes, **info.notes}
    _log_data_notes(details)
    _check_crs_area(usable, sample, info)
    return SourceLayer(tuple(features), metric_crs_around(usable), details, sample,
                       gdal_version())


def gdal_version() -> str:
    import pyogrio  # read where GeoPandas is: in the process that reads the layer

    return str(pyogrio.__gdal_version_string__)


def _read(profile: Profile, source_path: Path) -> tuple[gpd.GeoDataFrame, LayerInfo]:
    from pipeline.sources import read_layer, read_table

    src = profile.source
    if src.geometry == "none":  # a table of names: rows are matched by name, not by place
        return read_table(source_path, layer=src.layer, encoding=src.encoding,
                          delimiter=src.delimiter, columns=src.columns)
    return read_layer(source_path, layer=src.layer, crs=src.crs, encoding=src.encoding,
                      x=src.x, y=src.y, delimiter=src.delimiter, columns=src.columns)


def _as_read(frame: gpd.GeoDataFrame, info: LayerInfo) -> tuple[RawSample | None, float | None]:
    """Some points as read (in the layer's own CRS, for a diagnosis of where it lies) and the
    step its point coordinates are rounded to, in metres."""
    geometries = frame.geometry.values
    present = geometries[~(shapely.is_missing(geometries) | shapely.is_empty(geometries))]
    if not len(present) or info.crs == "none":
        return None, None
    points = shapely.point_on_surface(present)
    xs, ys = shapely.get_x(points), shapely.get_y(points)
    plain = shapely.get_type_id(present) == 0
    geographic = _is_geographic(info.crs)
    step = coordinate_quantum(xs[plain], ys[plain], geographic) if plain.any() else None
    x, y = sample_points(xs.tolist(), ys.tolist())
    return RawSample(info.crs, x, y), step


def _refuse_altered_text(features: list[SourceFeature], path: Path,
                         profile: Profile) -> list[SourceFeature]:
    """Features whose id or tag fields GDAL read altered (a NUL cut the value, a lone
    surrogate became U+FFFD) are `skip`, naming the field; in other fields, a warning."""
    altered = altered_values(path)
    if not altered or len(altered) > len(features) or max(altered) >= len(features):
        return features
    used = {profile.source.id, *profile.values,
            *(n for t in profile.tags.values() for n in template_fields(t))}
    result, elsewhere = list(features), []
    for index, (name, problem) in sorted(altered.items()):
        if name not in used:
            elsewhere.append(f"{features[index].source_id} ({name})")
        elif features[index].skip_reason is None:
            result[index] = replace(features[index], skip_reason=reason(
                "altered_text", field=name, problem=problem))
    if elsewhere:
        log.warning("ingest: %d feature(s) hold values that GDAL does not read intact in fields "
                    "no tag uses: %s; those fields are shown as read", len(elsewhere),
                    ", ".join(elsewhere[:10]))
    return result


def _is_geographic(crs: str) -> bool:
    try:
        return bool(CRS.from_user_input(crs).is_geographic)
    except CRSError:
        return False


def _outliers(features: list[SourceFeature], skip: bool
              ) -> tuple[list[SourceFeature], list[dict[str, Any]]]:
    """Usable features far from the rest of the layer: `skip` (with `skip`), listed."""
    usable = [i for i, f in enumerate(features) if f.skip_reason is None and f.geometry is not None]
    if len(usable) < 3:
        return features, []
    points = shapely.point_on_surface(np.array([features[i].geometry for i in usable]))
    found = find_outliers(shapely.get_x(points), shapely.get_y(points))
    listed = []
    for outlier in found:
        i = usable[outlier.index]
        listed.append({"source_id": features[i].source_id, "km": round(outlier.km, 1)})
        if skip:
            group = (reason("alone") if outlier.group == 1 else
                     reason("with_others", n=outlier.group - 1))
            features[i] = replace(features[i], skip_reason=reason(
                "outlier", km=float(outlier.km), group=group))
    return features, listed


def _check_crs_area(usable: list[BaseGeometry], sample: RawSample | None,
                    info: LayerInfo) -> None:
    """A projected layer must lie in its CRS's area of use (Lambert-93 in France)."""
    area = crs_area_of_use(info.crs) if sample is not None else None
    if area is None or not usable or sample is None:
        return
    points = shapely.point_on_surface(np.array(usable))
    warning = check_placement(np.column_stack([shapely.get_x(points), shapely.get_y(points)]),
                              sample, area[0], area[1], info.label)
    if warning:
        log.warning("ingest: %s", warning)


def _rows(frame: gpd.GeoDataFrame, id_field: str,
          repairs: TextRepairs | None) -> list[tuple[str, BaseGeometry | None, dict]]:
    columns = [c for c in frame.columns if c != frame.geometry.name]
    rows = []
    for geom, record in zip(frame.geometry, frame[columns].to_dict("records"), strict=True):
        attributes = {k: plain(v) for k, v in record.items()}
        if repairs is not None:
            attributes = repairs.clean(attributes)
        rows.append((field_text(attributes[id_field]), geom, attributes))
    return rows


# The count check `sig2osm pdf extract` writes beside the layers (pipeline/pdf/writer.py), and
# what it counts for each drawing style.
PDF_COUNTS_LAYER = "pdf_counts"
_PDF_COUNTS = ("drawn", "features", "parts", "outside", "dropped")


def pdf_counts(path: Path, layer: str | None) -> dict[str, Any] | None:
    """The count check of a PDF-derived layer, summed over the drawing styles that went into
    it: what was drawn against the features written (and where the others went), so the
    report says whether every symbol of the map reached the layer. None when the file carries
    no count table (an older extraction, a layer copied to another format)."""
    import pyogrio  # in the process that reads the layer, with GeoPandas

    if (layer is None or path.suffix.lower() != ".gpkg"
            or PDF_COUNTS_LAYER not in {name for name, _ in pyogrio.list_layers(path)}):
        return None
    table = pyogrio.read_dataframe(path, layer=PDF_COUNTS_LAYER, read_geometry=False)
    mine = table[table["layer"] == layer]
    counts: dict[str, Any] = {key: int(mine[key].sum()) for key in _PDF_COUNTS}
    counts["lost"] = counts["drawn"] - sum(counts[k] for k in _PDF_COUNTS[1:])
    counts["styles"] = len(mine)
    return counts


def _log_data_notes(details: Mapping[str, Any]) -> None:
    """What ingest changed or left out, said once per layer (also in report.json)."""
    counts = details.get("pdf_counts")
    if counts:
        log.log(logging.WARNING if counts["lost"] else logging.INFO,
                "ingest: PDF count check of layer %s: %d drawn in %d style(s) → %d features, "
                "%d parts of composite symbols, %d outside the map frame, %d dropped by the "
                "legend, %d lost", details["layer"], counts["drawn"], counts["styles"],
                counts["features"], counts["parts"], counts["outside"], counts["dropped"],
                counts["lost"])
    for key, entry in details["tags_left_out"].items():
        log.warning("ingest: tag %s left out of %d feature(s): field %s empty", key,
                    entry["features"], ", ".join(entry["fields"]))
    for name, entry in details["text_repaired"].items():
        before, after = entry["example"]
        log.warning("ingest: field %s: %d value(s) repaired from double-encoded UTF-8 (e.g. "
                    "%r -> %r)", name, entry["values"], before, after)


def _check_contract(frame: gpd.GeoDataFrame, info: LayerInfo, profile: Profile) -> None:
    problems: list[str] = []
    columns = [c for c in frame.columns if c != frame.geometry.name]
    id_field = profile.source.id
    if len(frame) == 0:
        raise InputError(f"Source {info.label} is empty: no feature to import.")
    if id_field not in columns:
        problems.append(f"id field '{id_field}' (source.id) not found; fields: {', '.join(columns)}")
    else:
        ids = [field_text(plain(v)) for v in frame[id_field]]
        empty = sum(1 for i in ids if not i)
        if empty:
            problems.append(f"{empty} feature(s) have an empty id in field '{id_field}'")
        dupes = sorted(k for k, n in Counter(i for i in ids if i).items() if n > 1)
        if dupes:
            shown = ", ".join(dupes[:20]) + (f" … ({len(dupes)} in all)" if len(dupes) > 20 else "")
            problems.append(f"duplicate ids in field '{id_field}': {shown}")
    for key, template in profile.tags.items():
        for name in template_fields(template):
            if name not in columns:
                problems.append(f"tag '{key}' uses field '{name}', which the layer lacks; "
                                f"fields: {', '.join(columns)}")
    for name in profile.values:
        if name not in columns:
            problems.append(f"values.{name}: the layer has no field '{name}'")
    if problems:
        raise InputError(f"Source {info.label}: " + "; ".join(problems) + ".")
    _check_map_fields(columns, info, profile)


def _check_map_fields(columns: list[str], info: LayerInfo, profile: Profile) -> None:
    """The council map's fields must be the layer's: a profile error, found before any work."""
    if profile.map is None:
        return
    missing = missing_fields(profile.map, columns)
    if missing:
        raise ProfileError(f"Profile {profile.path}: {', '.join(missing)} not found in source "
                           f"{info.label}; its fields are: {', '.join(columns)}.")


def _check_lonlat_range(frame: gpd.GeoDataFrame, info: LayerInfo,
                        sample: RawSample | None) -> None:
    """A wrong CRS (Lambert-93 metres declared as degrees) gives coordinates off the globe."""
    valid = frame.geometry[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if valid.empty:
        return
    west, south, east, north = valid.total_bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        world = shapely.box(-180, -90, 180, 90)
        fix = diagnose(sample, world) if sample is not None else None
        advice = (f"{fix}." if fix else "The CRS is probably wrong: set source.crs (e.g. "
                  "EPSG:2154 for Lambert-93, EPSG:3942–3950 for the CC zones).")
        raise InputError(
            f"Source {info.label}: coordinates fall outside longitude/latitude range after "
            f"reading them as {info.crs} ({info.crs_origin}); bounds {west:.1f}, {south:.1f}, "
            f"{east:.1f}, {north:.1f}. {advice[0].upper()}{advice[1:]}")


class FeatureBuilder:
    """One `SourceFeature` per row: geometry repaired, tags filled from the templates."""

    def __init__(self, profile: Profile) -> None:
        self.templates = TagTemplates.from_profile(profile.tags, profile.values)
        self.by_name = profile.source.geometry == "none"  # matched by name, not by place
        self.match = match_alternatives(profile.osm.match)
        self.match_keys = {k for alternative in self.match for k in alternative}

    def __call__(self, row: tuple[str, BaseGeometry | None, dict],
                 valid: bool | None = None) -> SourceFeature:
        source_id, geom, attributes = row
        geometry, geometry_problem = _repair(geom, valid)
        if self.by_name:
            geometry, geometry_problem = None, None  # matched by name (conflation.attributes)
        tags, problem = self.tags(attributes)
        return SourceFeature(source_id, geometry, tags, attributes, geometry_problem or problem)

    def tags(self, attributes: Mapping[str, Any]) -> tuple[dict[str, str], Reason | None]:
        """The proposed tags, and why they make the feature unusable (None when they don't)."""
        rendered = self.templates.render(attributes)
        tags = rendered.tags
        if rendered.missing_required:
            key, name = rendered.missing_required[0]
            return tags, reason("required_field_empty", field=name, key=key)
        lost = [(key, fields) for key, fields in rendered.left_out if key in self.match_keys]
        if lost and not self.by_name and not tags_match(tags, self.match):
            key, fields = lost[0]
            return tags, reason("match_tag_left_out", key=key, fields=list(fields))
        return tags, _unwritable(tags)


def _unwritable(tags: dict[str, str]) -> Reason | None:
    if tags_problem(tags) is None:  # the usual case, checked at once
        return None
    for key, value in tags.items():  # over 255 characters, or not XML: refused, not cut
        problem = tag_reason(key, value)
        if problem:
            return reason("tag_unwritable", key=key, problem=problem)
    return None


def _repair(geom: BaseGeometry | None,
            valid: bool | None = None) -> tuple[BaseGeometry | None, Reason | None]:
    if geom is None or geom.is_empty:
        return None, reason("empty_geometry")
    if not (shapely.is_valid(geom) if valid is None else valid):
        fixed = shapely.make_valid(geom)
        polygonal = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type.endswith("Polygon")]
        if geom.geom_type.endswith("Polygon") and polygonal:
            fixed = shapely.union_all(polygonal)
        if fixed.is_empty or (fixed.geom_type != geom.geom_type and "Polygon" not in fixed.geom_type):
            return None, reason("invalid_geometry", type=geom.geom_type)
        geom = fixed
    if isinstance(geom, MultiPoint):
        # A point stored as a multi-point (often the same location twice) is one location.
        distinct = {(p.x, p.y) for p in geom.geoms}
        if len(distinct) == 1:
            return Point(next(iter(distinct))), None
        return None, reason("multipoint", n=len(distinct))
    if geom.has_z:
        geom = shapely.force_2d(geom)
    return geom, None


def metric_crs_around(geometries: list[BaseGeometry]) -> str:
    """The UTM zone around the layer's centre: distances in metres with negligible distortion."""
    if not geometries:
        return "EPSG:3857"
    centre = shapely.union_all([g.centroid for g in geometries[:5000]]).centroid
    zone = int((centre.x + 180) // 6) + 1
    epsg = (32600 if centre.y >= 0 else 32700) + zone
    return CRS.from_epsg(epsg).to_string()


