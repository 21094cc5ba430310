"""OSM data from local files: extracts read with pyosmium, Overpass answers from JSON.

Both paths keep the objects that satisfy `osm.match` or carry the dataset's ref key, and end in
the same `OsmData` through `osm_data_from_elements` (Overpass answers) or the pyosmium reader.
The area the data covers comes from the file (`<bounds>`, PBF header box) or from the profile.
"""

from __future__ import annotations

import bz2
import gzip
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import osmium
import osmium.filter
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.errors import InputNotFoundError, OsmDataError
from pipeline.osm_model import OsmData, OsmElement
from pipeline.progress import progress

log = logging.getLogger(__name__)

OSM_SUFFIXES = (".osm", ".osm.gz", ".osm.bz2", ".osm.pbf", ".pbf", ".osc", ".osc.gz", ".json",
                ".xml", ".overpass.json")

# Keys whose closed ways are lines, not areas, unless tagged area=yes (OSM wiki: Key:area).
_LINEAR_KEYS = ("highway", "barrier", "railway", "waterway", "power", "route")


def tags_match(tags: Mapping[str, str], match: Mapping[str, str | Sequence[str]]) -> bool:
    """Whether `tags` satisfy every key of `match` ("*" any value, a list any of its values)."""
    for key, wanted in match.items():
        value = tags.get(key)
        if value is None:
            return False
        if wanted == "*":
            continue
        if isinstance(wanted, str):
            if value != wanted:
                return False
        elif value not in wanted:
            return False
    return True


def is_candidate(tags: Mapping[str, str], match: Mapping[str, Any], ref_key: str | None) -> bool:
    return tags_match(tags, match) or (ref_key is not None and ref_key in tags)


def read_osm_file(
    path: Path,
    match: Mapping[str, Any],
    ref_key: str | None,
    bounds: Sequence[float] | None = None,
) -> OsmData:
    """Read an OSM extract or a recorded Overpass JSON answer into `OsmData`."""
    if not path.is_file():
        raise InputNotFoundError(f"OSM file {path}: no such file.")
    if _looks_like_json(path):
        payload = _load_json(path)
        coverage, origin = _coverage_from_profile(bounds, f"Overpass answer {path.name}")
        return osm_data_from_overpass_json(payload, match, ref_key, coverage, origin,
                                           {"file": str(path)})
    return _read_with_osmium(path, match, ref_key, bounds)


def _looks_like_json(path: Path) -> bool:
    opener = gzip.open if path.suffix == ".gz" else bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rb") as handle:
        head = handle.read(64).lstrip()
    return head.startswith(b"{")


def _load_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OsmDataError(f"OSM file {path}: not valid JSON ({exc}); expected an Overpass "
                           "answer with 'elements'.") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("elements"), list):
        raise OsmDataError(f"OSM file {path}: JSON without an 'elements' list; expected an "
                           "Overpass API answer ([out:json]).")
    return payload


def _coverage_from_profile(
    bounds: Sequence[float] | None, what: str
) -> tuple[BaseGeometry | None, str]:
    if bounds is None:
        return None, f"none: {what} declares no area and the profile gives no osm.bounds"
    west, south, east, north = bounds
    return shapely.box(west, south, east, north), (
        f"osm.bounds of the profile [{west}, {south}, {east}, {north}] (assumed: {what} declares "
        "no area)")


def _read_with_osmium(
    path: Path, match: Mapping[str, Any], ref_key: str | None, bounds: Sequence[float] | None
) -> OsmData:
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
        header = reader.header()
        box = header.box()
        reader.close()
    except RuntimeError as exc:
        raise OsmDataError(f"OSM file {path}: not an OSM file pyosmium can read ({exc}); expected "
                           ".osm, .osm.gz, .osm.bz2, .osm.pbf or an Overpass JSON answer.") from exc
    coverage: BaseGeometry | None
    if box.valid():
        declared = shapely.box(box.bottom_left.lon, box.bottom_left.lat,
                               box.top_right.lon, box.top_right.lat)
        coverage = declared
        origin = f"bounds declared by {path.name}"
        if bounds is not None:
            coverage = declared.intersection(shapely.box(*bounds))
            origin += " intersected with the profile's osm.bounds"
    else:
        coverage, origin = _coverage_from_profile(bounds, path.name)
    elements = list(_osmium_elements(path, match, ref_key))
    meta = {"file": str(path), "generator": header.get("generator", "")}
    base = header.get("osmosis_replication_timestamp", "") or header.get("timestamp", "")
    if base:
        meta["osm_base"] = base
    return OsmData(tuple(sorted(elements, key=_order)), coverage, origin, meta)


def _osmium_elements(
    path: Path, match: Mapping[str, Any], ref_key: str | None
) -> Iterable[OsmElement]:
    keys = sorted(set(match) | ({ref_key} if ref_key else set()))
    wkb = osmium.geom.WKBFactory()
    members: dict[int, tuple[tuple[str, int, str], ...]] = {}
    processor = (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_areas(osmium.filter.KeyFilter(*keys))
        .with_filter(osmium.filter.KeyFilter(*keys))
    )
    try:
        obj: Any
        for obj in progress(processor, f"reading {path.name}", unit=" objects"):
            tags = {t.k: t.v for t in obj.tags}
            if not is_candidate(tags, match, ref_key):
                continue
            if obj.is_relation():
                # Relations come before their assembled areas; keep members for the writers.
                members[obj.id] = tuple((_TYPE_NAMES[m.type], m.ref, m.role) for m in obj.members)
                continue
            element = _from_osmium(obj, tags, wkb, members)
            if element is not None:
                yield element
    except RuntimeError as exc:
        raise OsmDataError(f"OSM file {path}: cannot be read to the end ({exc}); the file is "
                           "damaged or not OSM data.") from exc


_TYPE_NAMES = {"n": "node", "w": "way", "r": "relation"}


def _from_osmium(
    obj: Any, tags: dict[str, str], wkb: Any, members: Mapping[int, tuple[tuple[str, int, str], ...]]
) -> OsmElement | None:
    if obj.is_node():
        if not obj.location.valid():
            return None
        return OsmElement("node", obj.id, obj.version, tags, Point(obj.location.lon, obj.location.lat))
    if obj.is_way():
        refs = tuple(n.ref for n in obj.nodes)
        try:
            line = shapely.from_wkb(wkb.create_linestring(obj, osmium.geom.ALL))
        except (RuntimeError, osmium.InvalidLocationError):
            log.warning("way/%s skipped: some of its nodes have no location in the file", obj.id)
            return None
        geometry: BaseGeometry = line
        if refs[0] == refs[-1] and len(refs) >= 4 and _closed_way_is_area(tags):
            geometry = Polygon(line.coords)
        return OsmElement("way", obj.id, obj.version, tags, geometry, nodes=refs)
    if obj.is_area():
        if obj.from_way():
            return None  # the way itself was yielded above
        try:
            geometry = shapely.from_wkb(wkb.create_multipolygon(obj))
        except RuntimeError:
            return None
        rel_id = obj.orig_id()
        return OsmElement("relation", rel_id, obj.version, tags, _simplest(geometry),
                          members=members.get(rel_id, ()))
    return None


def _closed_way_is_area(tags: Mapping[str, str]) -> bool:
    if tags.get("area") == "no":
        return False
    if tags.get("area") == "yes":
        return True
    return not any(k in tags for k in _LINEAR_KEYS)


def _simplest(geometry: BaseGeometry) -> BaseGeometry:
    parts = getattr(geometry, "geoms", None)
    if parts is not None and len(parts) == 1:
        return parts[0]
    return geometry


def _order(element: OsmElement) -> tuple[int, int]:
    return ("node", "way", "relation").index(element.type), element.id


def osm_data_from_overpass_json(
    payload: Mapping[str, Any],
    match: Mapping[str, Any],
    ref_key: str | None,
    coverage: BaseGeometry | None,
    coverage_origin: str,
    meta: Mapping[str, Any] | None = None,
) -> OsmData:
    """Build `OsmData` from an Overpass JSON answer (`out meta` with recursion or `out geom`)."""
    elements = payload.get("elements", [])
    nodes = {e["id"]: e for e in elements if e.get("type") == "node"}
    ways = {e["id"]: e for e in elements if e.get("type") == "way"}
    kept: list[OsmElement] = []
    for raw in elements:
        kind = raw.get("type")
        if kind not in ("node", "way", "relation"):
            continue  # Overpass "area" and "count" pseudo-elements
        tags = raw.get("tags", {})
        if not is_candidate(tags, match, ref_key):
            continue
        element = _from_overpass(raw, tags, nodes, ways)
        if element is not None:
            kept.append(element)
    osm3s = payload.get("osm3s", {})
    details: dict[str, Any] = dict(meta or {})
    details["generator"] = payload.get("generator", "")
    if osm3s.get("timestamp_osm_base"):
        details["osm_base"] = osm3s["timestamp_osm_base"]
    return OsmData(tuple(sorted(kept, key=_order)), coverage, coverage_origin, details)


def _version(raw: Mapping[str, Any]) -> int:
    if "version" not in raw:
        raise OsmDataError(f"{raw['type']}/{raw['id']} has no version: the Overpass query must use "
                           "'out meta' so modified objects carry the version they had.")
    return int(raw["version"])


def _way_coords(raw: Mapping[str, Any], nodes: Mapping[int, Any]) -> list[tuple[float, float]] | None:
    if "geometry" in raw:  # out geom
        return [(p["lon"], p["lat"]) for p in raw["geometry"]]
    coords = []
    for ref in raw.get("nodes", []):
        node = nodes.get(ref)
        if node is None or "lon" not in node:
            return None
        coords.append((node["lon"], node["lat"]))
    return coords


def _from_overpass(
    raw: Mapping[str, Any], tags: dict[str, str], nodes: Mapping[int, Any], ways: Mapping[int, Any]
) -> OsmElement | None:
    kind = raw["type"]
    if kind == "node":
        return OsmElement("node", raw["id"], _version(raw), tags, Point(raw["lon"], raw["lat"]))
    if kind == "way":
        coords = _way_coords(raw, nodes)
        if not coords or len(coords) < 2:
            log.warning("way/%s skipped: the answer lacks its node coordinates", raw["id"])
            return None
        refs = tuple(raw.get("nodes", ()))
        closed = coords[0] == coords[-1] and len(coords) >= 4
        geometry: BaseGeometry = (Polygon(coords) if closed and _closed_way_is_area(tags)
                                  else LineString(coords))
        return OsmElement("way", raw["id"], _version(raw), tags, geometry, nodes=refs)
    members = tuple((m["type"], int(m["ref"]), m.get("role", "")) for m in raw.get("members", []))
    if tags.get("type") not in ("multipolygon", "boundary"):
        return None
    lines = []
    for m in raw.get("members", []):
        if m["type"] != "way":
            continue
        coords = ([(p["lon"], p["lat"]) for p in m["geometry"]] if "geometry" in m
                  else _way_coords(ways.get(m["ref"], {}), nodes))
        if coords and len(coords) >= 2:
            lines.append(LineString(coords))
    polygons = list(shapely.get_parts(shapely.polygonize(lines))) if lines else []
    if not polygons:
        log.warning("relation/%s skipped: its outline cannot be assembled", raw["id"])
        return None
    # Polygonize returns inner rings as polygons of their own: the symmetric difference
    # of all faces rebuilds outers with their holes.
    area = polygons[0]
    for polygon in polygons[1:]:
        area = area.symmetric_difference(polygon)
    return OsmElement("relation", raw["id"], _version(raw), tags, _simplest(area), members=members)
