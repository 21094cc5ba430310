"""OSM data from local files: extracts read with pyosmium, Overpass answers from JSON or XML.

Both paths keep the objects that satisfy `osm.match` or carry the dataset's ref key, and end in
the same `OsmData` through `osm_data_from_overpass_json` (Overpass answers, recorded or live) or
the pyosmium reader. Several extracts can be read as one, with `.osc` diffs applied on top.
The area the data covers comes from the file (`<bounds>`, PBF header box) or from the profile.
"""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import osmium.filter
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.kernel.errors import InputNotFoundError, OsmDataError
from pipeline.kernel.osm import (
    TYPE_ORDER,
    OsmData,
    OsmElement,
    TagMatch,
    is_candidate,
    match_keys,
    referenced_objects,
)
from pipeline.opl import ambiguous, exact_objects, opl_writer, parse_tags, read_node_blocks
from pipeline.osm_context import objects_from_file
from pipeline.overpass_payload import check_payload
from pipeline.placement import footprint, uncovered_share
from pipeline.progress import progress

log = logging.getLogger(__name__)

Kinds = TagMatch | Sequence[TagMatch]  # what the readers keep (see osm_model.candidate_kinds)

# Keys whose closed ways are lines, not areas, unless tagged area=yes (OSM wiki: Key:area).
_LINEAR_KEYS = ("highway", "barrier", "railway", "waterway", "power", "route")


def read_osm_file(
    path: Path,
    match: Kinds,
    ref_key: str | None,
    bounds: Sequence[float] | None = None,
) -> OsmData:
    """Read an OSM extract or a recorded Overpass JSON answer into `OsmData`."""
    if not path.is_file():
        raise InputNotFoundError(f"OSM file {path}: no such file.")
    if is_overpass_answer(path):
        return _recorded_answer(read_answer_payload(path), match, ref_key, bounds,
                                f"Overpass answer {path.name}", {"file": str(path)})
    return _read_with_osmium(path, match, ref_key, bounds)


def read_answer_payload(path: Path) -> dict[str, Any]:
    """A recorded Overpass answer (JSON, or XML in the shape of its JSON twin), checked element
    by element; a runtime-error remark (a partial answer) is refused."""
    if _looks_like_json(path):
        payload = _load_json(path)
    else:
        payload = overpass_xml_to_json(_head(path, -1), f"OSM file {path}")
    _reject_remark(payload, path)
    return payload


def is_overpass_answer(path: Path) -> bool:
    """A recorded Overpass answer (JSON or XML), not an extract."""
    return _looks_like_json(path) or is_overpass_xml(path)


def _looks_like_json(path: Path) -> bool:
    return _head(path, 64).lstrip().startswith(b"{")


def _head(path: Path, size: int) -> bytes:
    """The first bytes of `path`, uncompressed for .gz and .bz2; a file that is not what its
    name says is an error naming it."""
    opener = gzip.open if path.suffix == ".gz" else bz2.open if path.suffix == ".bz2" else open
    try:
        with opener(path, "rb") as handle:
            return bytes(handle.read(size))
    except (OSError, EOFError, ValueError) as exc:  # BadGzipFile, bz2's "Invalid data stream"
        raise OsmDataError(f"OSM file {path}: cannot be read as a {path.suffix} file ({exc}); "
                           "expected .osm, .osm.gz, .osm.bz2, .osm.pbf or an Overpass answer."
                           ) from exc


def _load_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(_head(path, -1).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise OsmDataError(f"OSM file {path}: not valid JSON ({exc}); expected an Overpass "
                           "answer with 'elements'.") from exc
    return check_payload(payload, f"OSM file {path}")


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
    path: Path, match: Kinds, ref_key: str | None, bounds: Sequence[float] | None
) -> OsmData:
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
        header = reader.header()
        box = header.box()
        reader.close()
    except RuntimeError as exc:
        raise OsmDataError(f"OSM file {path}: not an OSM file pyosmium can read ({exc}); expected "
                           ".osm, .osm.gz, .osm.bz2, .osm.pbf or an Overpass JSON answer.") from exc
    declared = (shapely.box(box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon,
                            box.top_right.lat) if box.valid() else None)
    elements, tagged = _osmium_elements(path, match, ref_key)
    context = referenced_objects(elements, objects_from_file(path))
    coverage, origin = _union_coverage([path], [declared], bounds, tagged,
                                       _candidate_node_count(elements))
    meta = {"file": str(path), "generator": header.get("generator", "")}
    base = header.get("osmosis_replication_timestamp", "") or header.get("timestamp", "")
    if base:
        meta["osm_base"] = base
    return OsmData(tuple(sorted(elements, key=_order)), coverage, origin, meta, context)


# An extract whose tagged nodes are nearly all candidates was filtered to them (osmium
# tags-filter): where its candidates lie says nothing of where OSM lacks them.
FILTERED_SHARE = 0.9
# A declared area whose share without data is below this is taken whole: slivers at its edges
# are the grid's, not missing data.
TRUSTED_UNCOVERED = 0.1


def _candidate_node_count(elements: Sequence[OsmElement]) -> int:
    return sum(1 for e in elements if e.type == "node")


def _where_data_lies(files: Sequence[Path], declared: Sequence[BaseGeometry | None],
                     tagged: np.ndarray, candidate_nodes: int) -> list[BaseGeometry | None]:
    """Each file's declared area reduced to where the data's tagged nodes (`tagged`, lon/lat
    rows) lie (for a file declaring none, where they lie), so a header box larger than the data
    is not taken as mapped. A filtered file keeps its declared area."""
    if len(tagged) and candidate_nodes >= FILTERED_SHARE * len(tagged):
        log.warning("OSM file %s holds little besides the candidates (filtered?): its declared "
                    "area is taken as covered; where it holds no candidate, sig2osm cannot tell "
                    "a missing object from unmapped land", ", ".join(f.name for f in files))
        return list(declared)
    reduced: list[BaseGeometry | None] = []
    for box in declared:  # each box on its own: a grid fitted to the data inside it
        inside = tagged if box is None else tagged[shapely.contains_xy(box, tagged[:, 0],
                                                                       tagged[:, 1])]
        data = footprint(inside[:, 0], inside[:, 1]) if len(inside) else None
        if data is None or box is None:
            reduced.append(data if box is None else box)
        else:
            trusted = uncovered_share(box, data) < TRUSTED_UNCOVERED
            reduced.append(box if trusted else box.intersection(data))
    return reduced


def _osmium_elements(path: Path, match: Kinds, ref_key: str | None
                     ) -> tuple[list[OsmElement], np.ndarray]:
    """The candidates of an OSM file, and where its tagged nodes lie (lon/lat rows: where the
    data is, see `_where_data_lies`), in one pass."""
    keys = sorted(set(match_keys(match)) | ({ref_key} if ref_key else set()))
    candidate_kinds = osmium.filter.KeyFilter(*keys)
    # Not areas: a relation's area lacks the relation's `type` (picked by its relation below).
    candidate_kinds.enable_for(osmium.osm.WAY | osmium.osm.RELATION)
    tagged_nodes = osmium.filter.EmptyTagFilter()
    tagged_nodes.enable_for(osmium.osm.NODE)
    with tempfile.TemporaryDirectory(prefix="sig2osm-read-") as tmp:
        nodes = Path(tmp) / "nodes.opl"
        writer = opl_writer(nodes)
        # Tagged nodes leave the C++ chain as OPL text (read below, much faster than pyosmium's
        # objects; the candidates among them are picked there); candidate ways, relations and
        # assembled areas reach Python.
        processor = (
            osmium.FileProcessor(str(path))
            .with_locations()
            .with_areas(osmium.filter.KeyFilter(*keys))
            .with_filter(candidate_kinds)
            .with_filter(tagged_nodes)
            .with_filter(writer)
            .with_filter(osmium.filter.EntityFilter(
                osmium.osm.WAY | osmium.osm.RELATION | osmium.osm.AREA))
        )
        try:
            try:
                elements = list(_ways_and_areas(processor, path, match, ref_key))
            finally:
                writer.close()
            candidates, tagged = _candidate_nodes(nodes, path, match, ref_key)
        except RuntimeError as exc:
            raise OsmDataError(f"OSM file {path}: cannot be read to the end ({exc}); the file "
                               "is damaged or not OSM data.") from exc
    return elements + candidates, tagged


def _ways_and_areas(processor: Any, path: Path, match: Kinds, ref_key: str | None
                    ) -> Iterator[OsmElement]:
    wkb = osmium.geom.WKBFactory()
    relations: dict[int, _Relation] = {}
    obj: Any
    for obj in progress(processor, f"reading {path.name}", unit=" objects"):
        if obj.is_area() and not obj.from_way():
            # A relation's area is a candidate as its relation is (its tags lack `type`).
            if obj.orig_id() in relations:
                yield from filter(None, [_from_osmium(obj, {}, wkb, relations)])
            continue
        tags = {t.k: t.v for t in obj.tags}
        if not is_candidate(tags, match, ref_key):
            continue
        if obj.is_relation():
            # Relations come before their assembled areas; keep members for the writers, and
            # the tags: an area lacks the relation's `type`, which a modify must write back.
            relations[obj.id] = (tags, tuple((_TYPE_NAMES[m.type], m.ref, m.role)
                                             for m in obj.members))
            continue
        element = _from_osmium(obj, tags, wkb, relations)
        if element is not None:
            yield element


def _candidate_nodes(opl: Path, source: Path, match: Kinds, ref_key: str | None
                     ) -> tuple[list[OsmElement], np.ndarray]:
    """The nodes of an OPL file that are candidates and have a valid location (nodes whose
    tags OPL cannot render exactly are read again from `source`), and the location of every
    node of the file with a valid one."""
    elements: list[OsmElement] = []
    unsure: list[tuple[int, int, float, float]] = []
    located: list[np.ndarray] = []
    for block in read_node_blocks(opl):
        tags = {text: parse_tags(text) for text in set(block.tags)}
        unclear = {text for text in tags if ambiguous(text)}
        wanted = {text for text, parsed in tags.items()
                  if text in unclear or is_candidate(parsed, match, ref_key)}
        lon, lat = np.array(block.lons), np.array(block.lats)
        valid = (lon >= -180) & (lon <= 180) & (lat >= -90) & (lat <= 90)  # False for NaN
        located.append(np.column_stack([lon[valid], lat[valid]]))
        rows = [i for i in np.flatnonzero(valid).tolist() if block.tags[i] in wanted]
        points = shapely.points(lon[rows], lat[rows]).tolist()
        ids, versions, texts = block.ids, block.versions, block.tags
        for i, point in zip(rows, points, strict=True):
            text = texts[i]
            if text in unclear:
                unsure.append((ids[i], versions[i], block.lons[i], block.lats[i]))
            else:  # nodes with the same tags share one (read-only) tag mapping
                elements.append(OsmElement("node", ids[i], versions[i], tags[text], point))
    exact = exact_objects(source, [("node", n[0]) for n in unsure])
    for ident, version, x, y in unsure:
        node_tags = exact[("node", ident)][0]
        if is_candidate(node_tags, match, ref_key):
            elements.append(OsmElement("node", ident, version, node_tags, Point(x, y)))
    return elements, np.concatenate(located) if located else np.empty((0, 2))


_TYPE_NAMES = {"n": "node", "w": "way", "r": "relation"}
# A candidate relation's own tags (with `type`) and members (type, ref, role).
_Relation = tuple[dict[str, str], tuple[tuple[str, int, str], ...]]


def _from_osmium(
    obj: Any, tags: dict[str, str], wkb: Any, relations: Mapping[int, _Relation]
) -> OsmElement | None:
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
        relation_tags, members = relations.get(rel_id, (tags, ()))
        return OsmElement("relation", rel_id, obj.version, relation_tags, _simplest(geometry),
                          members=members)
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
    return TYPE_ORDER[element.type], element.id


def osm_data_from_overpass_json(
    payload: Mapping[str, Any],
    match: Kinds,
    ref_key: str | None,
    coverage: BaseGeometry | None,
    coverage_origin: str,
    meta: Mapping[str, Any] | None = None,
) -> OsmData:
    """`OsmData` from an Overpass answer (`out meta` with recursion), through the one reader of
    OSM files: the answer's elements are written as an OSM file that libosmium reads as it
    reads an extract, so geometries (ways, multipolygons) are built by one builder."""
    with tempfile.TemporaryDirectory(prefix="sig2osm-answer-") as tmp:
        path = overpass_to_osm_file(payload, Path(tmp) / "answer.osm.pbf")
        elements, _ = _osmium_elements(path, match, ref_key)
        context = referenced_objects(elements, objects_from_file(path))
    osm3s = payload.get("osm3s", {})
    details: dict[str, Any] = dict(meta or {})
    details["generator"] = payload.get("generator", "")
    if osm3s.get("timestamp_osm_base"):
        details["osm_base"] = osm3s["timestamp_osm_base"]
    return OsmData(tuple(sorted(elements, key=_order)), coverage, coverage_origin, details,
                   context)


def overpass_to_osm_file(payload: Mapping[str, Any], path: Path) -> Path:
    """The nodes, ways and relations of an Overpass answer as an OSM file (type, then id order,
    as libosmium expects); elements without a version (no `out meta`) get version 0."""
    elements = sorted((e for e in payload.get("elements", [])
                       if e.get("type") in ("node", "way", "relation")),
                      key=lambda e: (TYPE_ORDER[e["type"]], int(e["id"])))
    mutable = osmium.osm.mutable
    with osmium.SimpleWriter(str(path)) as writer:
        for raw in elements:
            ident, version = int(raw["id"]), int(raw.get("version", 0))
            tags = dict(raw.get("tags", {}))
            if raw["type"] == "node":
                writer.add_node(mutable.Node(id=ident, version=version, tags=tags,
                                             location=(raw["lon"], raw["lat"])))
            elif raw["type"] == "way":
                writer.add_way(mutable.Way(id=ident, version=version, tags=tags,
                                           nodes=list(raw.get("nodes", ()))))
            else:
                writer.add_relation(mutable.Relation(id=ident, version=version, tags=tags, members=[
                    (m["type"][0], int(m["ref"]), m.get("role", ""))
                    for m in raw.get("members", ())]))
    return path


def require_versions(data: OsmData, what: str) -> None:
    """Candidates must carry the version OSM had (Overpass `out meta`): a modify needs it."""
    unversioned = next((e for e in data.elements if e.version < 1), None)
    if unversioned is not None:
        raise OsmDataError(f"{what}: {unversioned.key} has no version: the Overpass query must "
                           "use 'out meta' so modified objects carry the version they had.")


# --- Overpass XML ----------------------------------------------------------------------------


def is_overpass_xml(path: Path) -> bool:
    """An Overpass XML answer (it names its generator and carries `<meta osm_base>`)."""
    head = _head(path, 2048)
    return head.lstrip().startswith(b"<") and (b"Overpass API" in head or b"osm_base=" in head)


def overpass_xml_to_json(data: bytes, what: str) -> dict[str, Any]:
    """An Overpass XML answer in the shape of its JSON twin, for `osm_data_from_overpass_json`."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OsmDataError(f"{what}: not well-formed XML ({exc}); the answer may be truncated."
                           ) from exc
    if root.tag != "osm":
        raise OsmDataError(f"{what}: XML root <{root.tag}>, expected <osm> (an Overpass answer).")
    payload: dict[str, Any] = {"version": root.get("version"),
                               "generator": root.get("generator", ""), "elements": []}
    meta = root.find("meta")
    if meta is not None and meta.get("osm_base"):
        payload["osm3s"] = {"timestamp_osm_base": meta.get("osm_base")}
    remarks = [r.text or "" for r in root.iter("remark")]
    if remarks:
        payload["remark"] = " ".join(r.strip() for r in remarks)
    for child in root:
        if child.tag in ("node", "way", "relation"):
            try:
                payload["elements"].append(_xml_element(child))
            except (TypeError, ValueError) as exc:  # a missing or non-numeric attribute
                raise OsmDataError(f"{what}: <{child.tag} id={child.get('id')!r}> has an "
                                   f"attribute that is not a number ({exc}).") from exc
    return check_payload(payload, what)


def _xml_element(node: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"type": node.tag, "id": int(node.get("id"))}
    if node.get("version") is not None:
        raw["version"] = int(node.get("version"))
    if node.tag == "node" and node.get("lat") is not None:
        raw["lat"], raw["lon"] = float(node.get("lat")), float(node.get("lon"))
    tags = {t.get("k"): t.get("v") for t in node.findall("tag")}
    if tags:
        raw["tags"] = tags
    if node.tag == "way":
        nds = node.findall("nd")
        raw["nodes"] = [int(n.get("ref")) for n in nds]
        if nds and all(n.get("lat") is not None for n in nds):  # out geom
            raw["geometry"] = [{"lat": float(n.get("lat")), "lon": float(n.get("lon"))}
                               for n in nds]
    if node.tag == "relation":
        members = []
        for m in node.findall("member"):
            member: dict[str, Any] = {"type": m.get("type"), "ref": int(m.get("ref")),
                                      "role": m.get("role", "")}
            points = m.findall("nd")
            if points:
                member["geometry"] = [{"lat": float(p.get("lat")), "lon": float(p.get("lon"))}
                                      for p in points]
            members.append(member)
        raw["members"] = members
    return raw


# A recorded answer's candidates lying in less than this share of osm.bounds (each grown by
# CORE_MARGIN degrees, about a kilometre) make a warning: was the answer asked for less?
CORE_SHARE = 0.25
CORE_MARGIN = 0.01


def _recorded_answer(payload: Mapping[str, Any], match: Kinds, ref_key: str | None,
                     bounds: Sequence[float] | None, what: str, meta: Mapping[str, Any]
                     ) -> OsmData:
    """A recorded answer holds candidates only: its area is the profile's `osm.bounds`, which
    nothing in the file can confirm; a box much larger than where the candidates lie is said."""
    coverage, origin = _coverage_from_profile(bounds, what)
    data = osm_data_from_overpass_json(payload, match, ref_key, coverage, origin, meta)
    require_versions(data, what)
    if coverage is not None and data.elements:
        core = shapely.union_all([e.geometry.buffer(CORE_MARGIN) for e in data.elements
                                  if e.geometry is not None])
        share = 1.0 - uncovered_share(coverage, core)
        if share < CORE_SHARE:
            log.warning("%s: its %d candidates lie in %.1f %% of osm.bounds; if the answer was "
                        "asked for a smaller area, features elsewhere in osm.bounds will be "
                        "created as if OSM lacked them: give the query's own bbox", what,
                        len(data.elements), 100 * share)
    return data


def _reject_remark(payload: Mapping[str, Any], path: Path) -> None:
    remark = str(payload.get("remark", ""))
    if "error" in remark.lower():
        raise OsmDataError(f"OSM file {path}: the recorded Overpass answer ends with "
                           f"'{remark.strip()}': it is partial and cannot be used.")


def merge_overpass_payloads(payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One answer from several: each element once (its newest version), osm_base the oldest."""
    if len(payloads) == 1:
        return dict(payloads[0])
    best: dict[tuple[str, int], Mapping[str, Any]] = {}
    for payload in payloads:
        for element in payload.get("elements", []):
            key = (str(element.get("type", "")), int(element.get("id", 0)))
            if key not in best or element.get("version", 0) > best[key].get("version", 0):
                best[key] = element
    bases = sorted(str(p.get("osm3s", {}).get("timestamp_osm_base", "")) for p in payloads)
    merged = dict(payloads[0])
    merged["elements"] = list(best.values())
    merged["osm3s"] = {**payloads[0].get("osm3s", {}), "timestamp_osm_base": bases[0]}
    return merged


# --- several files, and diffs on top ---------------------------------------------------------


def read_osm_files_with_diffs(
    files: Sequence[Path],
    diffs: Sequence[Path],
    match: Kinds,
    ref_key: str | None,
    bounds: Sequence[float] | None,
) -> OsmData:
    """Several extracts (or recorded answers) read as one, with `.osc` diffs applied in order."""
    for path in [*files, *diffs]:
        if not path.is_file():
            raise InputNotFoundError(f"OSM file {path}: no such file.")
    answers = [f for f in files if _looks_like_json(f) or is_overpass_xml(f)]
    if answers and len(answers) != len(files):
        raise OsmDataError(f"osm.file mixes recorded Overpass answers ({answers[0].name}) and "
                           "OSM extracts; give one kind.")
    if answers:
        if diffs:
            raise OsmDataError(f"osm.diff: {diffs[0]}: diffs apply to OSM extracts, not to "
                               "recorded Overpass answers.")
        return _merged_answers(files, match, ref_key, bounds)
    return _merged_extracts(files, diffs, match, ref_key, bounds)


def _merged_answers(files: Sequence[Path], match: Kinds, ref_key: str | None,
                    bounds: Sequence[float] | None) -> OsmData:
    payloads = [read_answer_payload(path) for path in files]
    meta = {"file": str(files[0]), "files": [str(f) for f in files]}
    return _recorded_answer(merge_overpass_payloads(payloads), match, ref_key, bounds,
                            f"{len(files)} Overpass answers", meta)


def _merged_extracts(files: Sequence[Path], diffs: Sequence[Path], match: Kinds,
                     ref_key: str | None, bounds: Sequence[float] | None) -> OsmData:

    covers = [_read_header_box(f) for f in files]
    with tempfile.TemporaryDirectory(prefix="sig2osm-merge-") as tmp:
        base = files[0] if len(files) == 1 else _merge_bases(files, Path(tmp) / "base.osm.pbf")
        merged = Path(tmp) / "merged.osm.pbf"
        reader_diffs = osmium.MergeInputReader()
        for diff in diffs:
            reader_diffs.add_file(str(diff))
        try:
            reader = osmium.io.Reader(str(base))
            writer = osmium.io.Writer(str(merged))
            reader_diffs.apply_to_reader(reader, writer)
            writer.close()
            reader.close()
        except RuntimeError as exc:
            names = ", ".join(str(d) for d in diffs)
            raise OsmDataError(f"OSM files {files[0]} + diffs {names}: cannot be merged ({exc})."
                               ) from exc
        elements, tagged = _osmium_elements(merged, match, ref_key)
        context = referenced_objects(elements, objects_from_file(merged))
    coverage, origin = _union_coverage(files, covers, bounds, tagged,
                                       _candidate_node_count(elements))
    meta: dict[str, Any] = {"file": str(files[0]), "files": [str(f) for f in files],
                            "diffs": [str(d) for d in diffs]}
    base_time = _diff_state_time(diffs)
    if base_time:
        meta["osm_base"] = base_time
    return OsmData(tuple(sorted(elements, key=_order)), coverage, origin, meta, context)


def _read_header_box(path: Path) -> BaseGeometry | None:
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
        box = reader.header().box()
        reader.close()
    except RuntimeError as exc:
        raise OsmDataError(f"OSM file {path}: not an OSM file pyosmium can read ({exc}).") from exc
    if not box.valid():
        return None
    return shapely.box(box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon,
                       box.top_right.lat)


def _union_coverage(files: Sequence[Path], declared: Sequence[BaseGeometry | None],
                    bounds: Sequence[float] | None, tagged: np.ndarray, candidate_nodes: int
                    ) -> tuple[BaseGeometry | None, str]:
    """The area the files cover, and where that statement comes from (for the report)."""
    names = ", ".join(f.name for f in files)
    reduced = _where_data_lies(files, declared, tagged, candidate_nodes)
    if any(c is None for c in reduced):
        missing = next(f for f, c in zip(files, reduced, strict=True) if c is None)
        return _coverage_from_profile(bounds, missing.name)
    coverage = shapely.union_all([c for c in reduced if c is not None])
    if all(d is None for d in declared):
        origin = f"where the data of {names} lies (no area declared)"
    else:
        whole = shapely.union_all([d if d is not None else c for d, c in zip(declared, reduced,
                                                                             strict=True)])
        uncovered = uncovered_share(whole, coverage)
        origin = f"bounds declared by {names}"
        if uncovered >= TRUSTED_UNCOVERED:
            origin += f", reduced to where the data lies ({uncovered:.0%} of them holds none)"
            log.warning("OSM file %s: %.0f %% of the declared area holds no OSM data; features "
                        "there are skipped, not created", names, 100 * uncovered)
    if bounds is not None:
        coverage = coverage.intersection(shapely.box(*bounds))
        origin += " intersected with the profile's osm.bounds"
    return coverage, origin


class _CopyHandler(osmium.SimpleHandler):
    """Writes the newest visible version of every object (several bases, overlapping)."""

    def __init__(self, writer: Any) -> None:
        super().__init__()
        self.writer = writer

    def node(self, n: Any) -> None:
        if n.visible:
            self.writer.add_node(n)

    def way(self, w: Any) -> None:
        if w.visible:
            self.writer.add_way(w)

    def relation(self, r: Any) -> None:
        if r.visible:
            self.writer.add_relation(r)


def _merge_bases(files: Sequence[Path], target: Path) -> Path:
    merger = osmium.MergeInputReader()
    for path in files:
        merger.add_file(str(path))
    writer = osmium.SimpleWriter(str(target))
    try:
        merger.apply(_CopyHandler(writer), simplify=True)
    finally:
        writer.close()
    return target


def _diff_state_time(diffs: Sequence[Path]) -> str | None:
    """The replication timestamp of the last diff, from its `<name>.state.txt` if present."""
    if not diffs:
        return None
    last = diffs[-1]
    stem = last.name.split(".osc")[0]
    state = last.with_name(f"{stem}.state.txt")
    if not state.is_file():
        return None
    for line in state.read_text(encoding="utf-8").splitlines():
        if line.startswith("timestamp="):
            return line.split("=", 1)[1].replace("\\:", ":").strip()
    return None
