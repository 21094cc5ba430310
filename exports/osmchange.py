"""osmChange (`changes.osc`) and JOSM XML (`changes.osm`) from the decision table.

libosmium's change writer files every object of version 1 under <create>, which would turn the
modify of an OSM object at version 1 into a create; so the XML is written here, deterministic and
escaped, and read back through pyosmium before it is accepted (see `validate_with_osmium`).

The objects of one decision stay together in a `ChangeGroup` (a new area is its nodes, its ways
and maybe a relation), so chunks and MapRoulette tasks never separate a way from its nodes. A
group that modifies a way or relation also carries what it refers to, unmodified, as the OSM
data holds it (`OsmData.context`): JOSM files write it beside the change, so JOSM shows the way
or relation whole; osmChange never does (it holds changes only).
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import osmium
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.kernel import __version__
from pipeline.kernel.decisions import CREATE, MODIFY, Decision
from pipeline.kernel.errors import ExportError
from pipeline.kernel.osm import OsmElement, OsmRecord, referenced_records, refs_of
from pipeline.kernel.tag_rules import tag_problem, tags_problem
from pipeline.opl import exact_objects, opl_writer, read_opl, read_opl_nodes

GENERATOR = f"sig2osm {__version__}"
MAX_WAY_NODES = 2000  # the OSM API refuses longer ways
_ORDER = {"node": 0, "way": 1, "relation": 2}
_MEMBER_TYPES = {"n": "node", "w": "way", "r": "relation"}


@dataclass(frozen=True)
class OsmObject:
    """An object as it goes into a change file."""

    type: str
    id: int
    version: int | None  # None for new objects in JOSM files; 1 is written in osmChange creates
    tags: dict[str, str] = field(default_factory=dict)
    lon: float | None = None
    lat: float | None = None
    nodes: tuple[int, ...] = ()
    members: tuple[tuple[str, int, str], ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return self.type, self.id


@dataclass(frozen=True)
class ChangeGroup:
    """The objects written for one `create` or `modify` decision."""

    action: str  # create or modify
    source_id: str | None
    objects: tuple[OsmObject, ...]
    geometry: BaseGeometry  # EPSG:4326: the new geometry, or the OSM object's for a modify
    decision: Decision
    # What the modified objects refer to, unmodified, as OSM has it (a way's nodes, a
    # relation's member ways and their nodes): JOSM files carry it so the change shows whole.
    context: tuple[OsmObject, ...] = ()
    # Objects referred to that the OSM data does not hold (members outside an extract).
    absent: tuple[tuple[str, int], ...] = ()

    @property
    def main(self) -> OsmObject:
        """The object carrying the tags: the relation, else the first tagged way, else the node."""
        tagged = [o for o in self.objects if o.tags]
        return max(tagged or self.objects, key=lambda o: _ORDER[o.type])


@dataclass(frozen=True)
class ChangeSet:
    """New and modified objects grouped by decision; written nodes, ways, relations. Built
    once, then read by every writer and check: the list of all objects is sorted once."""

    groups: Sequence[ChangeGroup] = ()

    @property
    def creates(self) -> list[OsmObject]:
        objects = [o for g in self.groups if g.action == CREATE for o in g.objects]
        return sorted(objects, key=lambda o: (_ORDER[o.type], -o.id))

    @property
    def modifies(self) -> list[OsmObject]:
        objects = [o for g in self.groups if g.action == MODIFY for o in g.objects]
        return sorted(objects, key=lambda o: (_ORDER[o.type], o.id))

    @cached_property
    def objects(self) -> list[OsmObject]:
        return self.creates + self.modifies

    @cached_property
    def context(self) -> list[OsmObject]:
        """The unmodified objects the changes refer to, each once, none that is itself changed."""
        changed = {o.key for o in self.objects}
        found = {o.key: o for g in self.groups for o in g.context if o.key not in changed}
        return [found[k] for k in sorted(found, key=lambda k: (_ORDER[k[0]], k[1]))]

    def absent(self) -> list[tuple[str, int]]:
        """Objects the changes refer to that neither the file nor the OSM data holds: JOSM
        shows the ways and relations that refer to them incomplete."""
        return sorted({key for g in self.groups for key in g.absent})

    def subset(self, groups: Iterable[ChangeGroup]) -> ChangeSet:
        return ChangeSet(tuple(groups))

    def bbox(self) -> tuple[float, float, float, float] | None:
        """[west, south, east, north] of every group's geometry."""
        geometries = np.empty(len(self.groups), dtype=object)
        geometries[:] = [g.geometry for g in self.groups]
        boxes = shapely.bounds(geometries[~shapely.is_empty(geometries)])  # one call, not one each
        if not len(boxes):
            return None
        return (float(boxes[:, 0].min()), float(boxes[:, 1].min()),
                float(boxes[:, 2].max()), float(boxes[:, 3].max()))

    def counts(self) -> dict[str, dict[str, int]]:
        """Objects per action and type, e.g. {"create": {"node": 3, "way": 0, …}, …}."""
        result = {}
        for action, objects in ((CREATE, self.creates), (MODIFY, self.modifies)):
            result[action] = {t: sum(1 for o in objects if o.type == t) for t in _ORDER}
        return result


class IdCounter:
    """One counter of negative ids per run: -1, -2, … in decision order."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last -= 1
        return self.last


def build_changes(decisions: Sequence[Decision],
                  records: Mapping[tuple[str, int], OsmRecord] | None = None) -> ChangeSet:
    """Turn `create` and `modify` decisions into OSM objects; nothing else is ever written.
    `records`: the objects OSM candidates refer to (`OsmData.context`), for each modify's
    context."""
    groups = []
    ids = IdCounter()
    for decision in decisions:
        if decision.decision not in (CREATE, MODIFY):
            continue
        problem = tags_problem(decision.tags)
        if problem:
            raise ExportError(f"source feature {decision.source_id}: {problem}; such a feature "
                              "must be skipped or reviewed before export (see refuse_unwritable)")
        if decision.decision == CREATE:
            if decision.geometry is None:
                raise ExportError(f"source feature {decision.source_id}: create without geometry")
            objects = new_objects(decision.geometry, decision.tags, ids)
            geometry = decision.geometry
            groups.append(ChangeGroup(CREATE, decision.source_id, tuple(objects), geometry,
                                      decision))
            continue
        objects, geometry = _modified_all(decision)
        context, absent = _context(objects, records or {})
        groups.append(ChangeGroup(MODIFY, decision.source_id, tuple(objects), geometry, decision,
                                  context, absent))
    return ChangeSet(tuple(groups))


def _context(objects: Sequence[OsmObject], records: Mapping[tuple[str, int], OsmRecord]
             ) -> tuple[tuple[OsmObject, ...], tuple[tuple[str, int], ...]]:
    """The objects `objects` refer to, directly or through others, as `records` hold them
    (unmodified), and the references `records` cannot resolve."""
    if not any(o.nodes or o.members for o in objects):
        return (), ()  # modified nodes: nothing to add (most imports)
    own = {o.key for o in objects}
    found = referenced_records(objects, lambda kind, ids: [
        records[(kind, i)] for i in ids if (kind, i) in records])
    refs = {ref for obj in objects for ref in refs_of(obj)}
    refs.update(ref for record in found.values() for ref in refs_of(record))
    absent = refs - own - set(found)
    keys = sorted(set(found) - own, key=lambda k: (_ORDER[k[0]], k[1]))
    context = tuple(OsmObject(r.type, r.id, r.version, dict(r.tags), r.lon, r.lat, r.nodes,
                              r.members) for r in (found[k] for k in keys))
    return context, tuple(sorted(absent))


def _modified_all(decision: Decision) -> tuple[list[OsmObject], BaseGeometry]:
    """The modified object, and the decision's further objects whose tags change (a street
    table row matches every way of the street), with their geometries' union."""
    if decision.osm is None:
        raise ExportError(f"source feature {decision.source_id}: modify without the OSM object "
                          "and the version OSM had")
    objects = [_modified(decision.source_id, decision.osm, decision.tags)]
    elements = [decision.osm]
    for element, tags in zip(decision.extra_osm, decision.extra_tags, strict=True):
        if dict(element.tags) != tags:
            objects.append(_modified(decision.source_id, element, tags))
            elements.append(element)
    if len(elements) == 1:
        return objects, elements[0].geometry
    return objects, shapely.union_all([e.geometry for e in elements])


def _modified(source_id: str | None, element: OsmElement, tags: Mapping[str, str]) -> OsmObject:
    if element.version < 1:
        raise ExportError(f"source feature {source_id}: modify without the OSM object "
                          "and the version OSM had")
    if element.type == "node":
        point = element.geometry
        assert isinstance(point, Point)
        return OsmObject("node", element.id, element.version, dict(tags), point.x, point.y)
    if element.type == "way":
        return OsmObject("way", element.id, element.version, dict(tags), nodes=element.nodes)
    return OsmObject("relation", element.id, element.version, dict(tags),
                     members=element.members)


def new_objects(geometry: BaseGeometry, tags: dict[str, str], ids: IdCounter) -> list[OsmObject]:
    """Nodes, ways and relation for a new feature: a point is a node, a line one or more ways,
    an area a closed way or a `type=multipolygon` relation with outer and inner members."""
    if isinstance(geometry, Point):
        return [OsmObject("node", ids.next(), 1, dict(tags), geometry.x, geometry.y)]
    if isinstance(geometry, LineString):
        nodes, ways = _way_chain(list(geometry.coords), ids, dict(tags))
        return nodes + ways
    small_ring = isinstance(geometry, Polygon) and len(geometry.exterior.coords) <= MAX_WAY_NODES
    if small_ring and not geometry.interiors:
        nodes, ways = _way_chain(list(geometry.exterior.coords), ids, dict(tags))
        return nodes + ways
    if isinstance(geometry, (Polygon, MultiPolygon)):
        polygons = [geometry] if isinstance(geometry, Polygon) else list(geometry.geoms)
        return _multipolygon(polygons, tags, ids)
    raise ExportError(f"cannot write a {geometry.geom_type} as OSM objects")


def _way_chain(
    coords: list[tuple[float, ...]], ids: IdCounter, tags: dict[str, str],
) -> tuple[list[OsmObject], list[OsmObject]]:
    """Nodes and way(s) for a coordinate list; a closed ring reuses its first node; ways longer
    than the API's 2 000 nodes are split into consecutive parts sharing their end nodes."""
    closed = len(coords) > 3 and coords[0] == coords[-1]
    unique = coords[:-1] if closed else coords
    nodes = [OsmObject("node", ids.next(), 1, {}, c[0], c[1]) for c in unique]
    refs = [n.id for n in nodes] + ([nodes[0].id] if closed else [])
    ways = []
    start = 0
    while start < len(refs) - 1:
        part = refs[start:start + MAX_WAY_NODES]
        ways.append(OsmObject("way", ids.next(), 1, dict(tags), nodes=tuple(part)))
        start += MAX_WAY_NODES - 1
    return nodes, ways


def _multipolygon(polygons: list[Polygon], tags: dict[str, str], ids: IdCounter) -> list[OsmObject]:
    objects: list[OsmObject] = []
    members: list[tuple[str, int, str]] = []
    for polygon in polygons:
        for ring, role in [(polygon.exterior, "outer")] + [(r, "inner") for r in polygon.interiors]:
            nodes, ways = _way_chain(list(ring.coords), ids, {})
            objects.extend(nodes + ways)
            members.extend(("way", w.id, role) for w in ways)
    relation_tags = {**tags, "type": "multipolygon"}
    objects.append(OsmObject("relation", ids.next(), 1, relation_tags, members=tuple(members)))
    return objects


# --- XML -------------------------------------------------------------------------------------


def _attrs(pairs: Iterable[tuple[str, object]]) -> str:
    return " ".join(f"{k}={_quoted(str(v))}" for k, v in pairs if v is not None)


# The same keys and values recur on thousands of objects: escape and check each pair once.
@lru_cache(maxsize=1 << 16)
def _quoted(text: str) -> str:
    return quoteattr(text)


@lru_cache(maxsize=1 << 16)
def _tag(key: str, value: str) -> tuple[str | None, str]:
    """Why the tag cannot be written (None when it can), and its element without indent."""
    return tag_problem(key, value), f"<tag k={quoteattr(key)} v={quoteattr(value)}/>"


def _tag_lines(tags: Mapping[str, str], indent: str) -> list[str]:
    return [indent + _tag(k, v)[1] for k, v in sorted(tags.items())]


def _object_xml(obj: OsmObject, indent: str, extra: Sequence[tuple[str, object]] = ()) -> list[str]:
    tags = [_tag(k, v) for k, v in sorted(obj.tags.items())]
    problem = next((p for p, _ in tags if p), None)  # the first in key order
    if problem:  # the last guard: nothing unwritable reaches a file
        raise ExportError(f"{obj.type}/{obj.id}: {problem}")
    head = f'{indent}<{obj.type} id="{obj.id}"'
    more = _attrs(extra)
    if more:
        head += " " + more
    if obj.version is not None:
        head += f' version="{obj.version}"'
    if obj.type == "node":
        if obj.lat is not None:
            head += f' lat="{obj.lat:.7f}"'
        if obj.lon is not None:
            head += f' lon="{obj.lon:.7f}"'
    inner = indent + "  "
    children = [f'{inner}<nd ref="{ref}"/>' for ref in obj.nodes]
    children += [f"{inner}<member {_attrs([('type', t), ('ref', r), ('role', role)])}/>"
                 for t, r, role in obj.members]
    children += [inner + line for _, line in tags]
    if not children:
        return [head + "/>"]
    return [head + ">", *children, f"{indent}</{obj.type}>"]


class XmlFragments:
    """Each object's XML, written once per run and shared by the change file, the JOSM file,
    their chunks and the MapRoulette tasks: the files are slices of the same validated text."""

    def __init__(self) -> None:
        self._osc: dict[tuple[str, int], str] = {}
        self._josm: dict[tuple[str, int], str] = {}
        self._unmodified: dict[tuple[str, int], str] = {}

    def osc(self, obj: OsmObject) -> str:
        text = self._osc.get(obj.key)
        if text is None:
            text = self._osc[obj.key] = "\n".join(_object_xml(obj, "    "))
        return text

    def josm(self, obj: OsmObject) -> str:
        """New objects without version (JOSM gives them one), touched ones action="modify"."""
        text = self._josm.get(obj.key)
        if text is None:
            version = None if obj.id < 0 else obj.version
            new = OsmObject(obj.type, obj.id, version, obj.tags, obj.lon, obj.lat, obj.nodes,
                            obj.members)
            text = self._josm[obj.key] = "\n".join(_object_xml(new, "  ", [("action", "modify")]))
        return text

    def unmodified(self, obj: OsmObject) -> str:
        """An object as OSM has it, in a JOSM file: no action, its version."""
        text = self._unmodified.get(obj.key)
        if text is None:
            text = self._unmodified[obj.key] = "\n".join(_object_xml(obj, "  "))
        return text


_OSMCHANGE_START = f"<osmChange version=\"0.6\" generator={quoteattr(GENERATOR)}>"


def osmchange_xml(changes: ChangeSet, fragments: XmlFragments | None = None) -> str:
    """osmChange 0.6: creates with negative ids and version 1, modifies with the OSM version.

    Nodes come first, then ways, then relations, each type's creates before its modifies
    (several `<create>` and `<modify>` blocks): the order of libosmium's sorted files, which
    osmium's tools (`check-refs`, `apply-changes`) need, and the order the API applies."""
    fragments = fragments or XmlFragments()
    blocks: list[tuple[str, list[str]]] = []
    sections = (("create", changes.creates), ("modify", changes.modifies))
    for kind in _ORDER:
        for section, objects in sections:
            chosen = [fragments.osc(o) for o in objects if o.type == kind]
            if chosen and blocks and blocks[-1][0] == section:
                blocks[-1][1].extend(chosen)  # e.g. new ways and relations: one <create>
            elif chosen:
                blocks.append((section, chosen))
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", _OSMCHANGE_START]
    for section, chosen in blocks:
        lines += [f"  <{section}>", *chosen, f"  </{section}>"]
    lines.append("</osmChange>")
    return "\n".join(lines) + "\n"


def josm_xml(changes: ChangeSet, changeset_tags: Mapping[str, str] | None = None,
             fragments: XmlFragments | None = None) -> str:
    """JOSM XML: upload="false" so it is never sent as is; action="modify" on touched objects;
    the unmodified objects they refer to (`ChangeSet.context`), so JOSM draws and validates a
    modified way or relation whole; a <changeset> without id whose tags JOSM offers in its
    upload dialog; <bounds>."""
    fragments = fragments or XmlFragments()
    lines = ["<?xml version='1.0' encoding='UTF-8'?>",
             f"<osm version=\"0.6\" generator={quoteattr(GENERATOR)} upload=\"false\">"]
    if changeset_tags:
        lines += ["  <changeset>", *_tag_lines(changeset_tags, "    "), "  </changeset>"]
    box = changes.bbox()
    if box is not None:
        west, south, east, north = box
        lines.append(f'  <bounds minlat="{south:.7f}" minlon="{west:.7f}" maxlat="{north:.7f}" '
                     f'maxlon="{east:.7f}" origin={quoteattr(GENERATOR)}/>')
    changed = [(o, fragments.josm) for o in changes.objects]
    unchanged = [(o, fragments.unmodified) for o in changes.context]
    # libosmium's order (new objects, by absolute id, before existing ones), which osmium's
    # `check-refs` needs; JOSM reads any order.
    ordered = sorted(changed + unchanged,
                     key=lambda pair: (_ORDER[pair[0].type], pair[0].id > 0, abs(pair[0].id)))
    lines += [write(obj) for obj, write in ordered]
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


# --- validation ------------------------------------------------------------------------------


def read_objects(path: Path) -> dict[tuple[str, int], OsmObject]:
    """Every node, way and relation of an OSM or osmChange file, read through pyosmium (its
    objects reach Python as OPL text, see `pipeline.opl`: much faster than one by one)."""
    seen: dict[tuple[str, int], OsmObject] = {}
    with tempfile.TemporaryDirectory(prefix="sig2osm-read-") as tmp:
        opl = Path(tmp) / "objects.opl"
        writer = opl_writer(opl)
        try:
            with osmium.io.Reader(str(path), osmium.osm.NODE | osmium.osm.WAY
                                  | osmium.osm.RELATION) as reader:
                osmium.apply(reader, writer)
        except RuntimeError as exc:
            raise ExportError(f"{path.name} does not read back through pyosmium: {exc}") from exc
        finally:
            writer.close()
        objects = [*read_opl_nodes(opl), *read_opl(opl, kinds="wr")]
    exact = exact_objects(path, [(o.type, o.id) for o in objects if not o.exact])
    for obj in objects:
        tags, members = exact.get((obj.type, obj.id), (obj.tags, obj.members))
        seen[(obj.type, obj.id)] = OsmObject(obj.type, obj.id, obj.version or None, tags,
                                             obj.lon, obj.lat, obj.nodes, members)
    return seen


OsmiumObject = osmium.osm.Node | osmium.osm.Way | osmium.osm.Relation


def snapshot(obj: OsmiumObject) -> OsmObject:
    """A pyosmium object as an `OsmObject` (pyosmium's objects do not outlive the reader)."""
    tags = {t.k: t.v for t in obj.tags}
    version = obj.version or None
    if isinstance(obj, osmium.osm.Node):
        loc = obj.location
        return OsmObject("node", obj.id, version, tags, loc.lon, loc.lat)
    if isinstance(obj, osmium.osm.Way):
        return OsmObject("way", obj.id, version, tags, nodes=tuple(n.ref for n in obj.nodes))
    members = tuple((_MEMBER_TYPES[m.type], m.ref, m.role) for m in obj.members)
    return OsmObject("relation", obj.id, version, tags, members=members)


def same_object(read: OsmObject, written: OsmObject) -> bool:
    """Whether an object read back equals what was written (coordinates to 1e-7 degree)."""
    if (read.tags, read.nodes, read.members) != (written.tags, written.nodes, written.members):
        return False
    if written.type == "node":
        if read.lon is None or read.lat is None:
            return False  # read back without a location
        assert written.lon is not None and written.lat is not None
        if abs(read.lon - written.lon) > 6e-8 or abs(read.lat - written.lat) > 6e-8:
            return False
    return written.version is None or written.id < 0 or read.version == written.version


def validate_with_osmium(content: str, suffix: str, objects: Sequence[OsmObject]) -> None:
    """Read a written file back through pyosmium and check it holds exactly `objects`."""
    with tempfile.TemporaryDirectory(prefix="sig2osm-check-") as tmp:
        path = Path(tmp) / f"check{suffix}"
        path.write_text(content, encoding="utf-8")
        seen = read_objects(path)
    expected = {o.key: o for o in objects}
    missing = sorted(set(expected) - set(seen))[:5]
    extra = sorted(set(seen) - set(expected))[:5]
    changed = sorted(k for k in set(seen) & set(expected)
                     if not same_object(seen[k], expected[k]))[:5]
    if missing or extra or changed:
        raise ExportError(f"{suffix} file read back differs: missing {missing}, extra {extra}, "
                          f"different {changed}")


def check_references(changes: ChangeSet, known: Collection[tuple[str, int]] | None = None) -> None:
    """Every way node and relation member is defined in the file or is an OSM object of the
    input (`known`; when None, any positive id is taken as existing); every modify carries the
    version OSM had."""
    defined = {o.key for o in changes.objects} | {o.key for o in changes.context}
    for obj in changes.objects:
        refs = [("node", r) for r in obj.nodes] + [(t, r) for t, r, _ in obj.members]
        for ref in refs:
            exists = ref[1] > 0 if known is None else ref in known
            if ref not in defined and not exists:
                raise ExportError(f"{obj.type}/{obj.id} refers to {ref[0]}/{ref[1]}, which is "
                                  "neither in the file nor in the OSM data")
    for group in changes.groups:
        if group.action != MODIFY:
            continue
        decision = group.decision
        elements = {(e.type, e.id): e for e in (decision.osm, *decision.extra_osm) if e}
        for obj in group.objects:
            element = elements.get(obj.key)
            if element is None or obj.version != element.version or obj.version < 1:
                raise ExportError(f"{obj.type}/{obj.id} (source feature {group.source_id}) is "
                                  "modified without the version the OSM data had")
            if known is not None and obj.key not in known:
                raise ExportError(f"{obj.type}/{obj.id} is modified but is not in the OSM data")


__all__ = ["ChangeGroup", "ChangeSet", "OsmObject", "XmlFragments", "build_changes",
           "check_references", "josm_xml", "osmchange_xml", "read_objects",
           "validate_with_osmium"]
