"""osmChange (`changes.osc`) and JOSM XML (`changes.osm`) from the decision table.

libosmium's change writer files every object of version 1 under <create>, which would turn the
modify of an OSM object at version 1 into a create; so the XML is written here, deterministic and
escaped (the runner reads it back through pyosmium before it is accepted: `pipeline.readback`).
Every object is the kernel's `OsmElement` (new ones with negative ids and version 1).

The objects of one decision stay together in a `ChangeGroup` (a new area is its nodes, its ways
and maybe a relation), so chunks and MapRoulette tasks never separate a way from its nodes. A
group that modifies a way or relation also carries what it refers to, unmodified, as the OSM
data holds it (`OsmData.context`): JOSM files write it beside the change, so JOSM shows the way
or relation whole; osmChange never does (it holds changes only).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from xml.sax.saxutils import quoteattr

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.kernel import __version__
from pipeline.kernel.decisions import CREATE, MODIFY, Decision
from pipeline.kernel.errors import ExportError
from pipeline.kernel.osm import TYPE_ORDER as _ORDER
from pipeline.kernel.osm import Key, OsmElement, node, referenced_objects, refs_of
from pipeline.kernel.tag_rules import tag_problem, tags_problem

GENERATOR = f"sig2osm {__version__}"
MAX_WAY_NODES = 2000  # the OSM API refuses longer ways


@dataclass(frozen=True)
class ChangeGroup:
    """The objects written for one `create` or `modify` decision."""

    action: str  # create or modify
    source_id: str | None
    objects: tuple[OsmElement, ...]
    geometry: BaseGeometry  # EPSG:4326: the new geometry, or the OSM object's for a modify
    decision: Decision
    # What the modified objects refer to, unmodified, as OSM has it (a way's nodes, a
    # relation's member ways and their nodes): JOSM files carry it so the change shows whole.
    context: tuple[OsmElement, ...] = ()
    # Objects referred to that the OSM data does not hold (members outside an extract).
    absent: tuple[tuple[str, int], ...] = ()

    @property
    def main(self) -> OsmElement:
        """The object carrying the tags: the relation, else the first tagged way, else the node."""
        tagged = [o for o in self.objects if o.tags]
        return max(tagged or self.objects, key=lambda o: _ORDER[o.type])


@dataclass(frozen=True)
class ChangeSet:
    """New and modified objects grouped by decision; written nodes, ways, relations. Built
    once, then read by every writer and check: the list of all objects is sorted once."""

    groups: Sequence[ChangeGroup] = ()

    @property
    def creates(self) -> list[OsmElement]:
        objects = [o for g in self.groups if g.action == CREATE for o in g.objects]
        return sorted(objects, key=lambda o: (_ORDER[o.type], -o.id))

    @property
    def modifies(self) -> list[OsmElement]:
        objects = [o for g in self.groups if g.action == MODIFY for o in g.objects]
        return sorted(objects, key=lambda o: (_ORDER[o.type], o.id))

    @cached_property
    def objects(self) -> list[OsmElement]:
        return self.creates + self.modifies

    @cached_property
    def context(self) -> list[OsmElement]:
        """The unmodified objects the changes refer to, each once, none that is itself changed."""
        changed = {o.ident for o in self.objects}
        found = {o.ident: o for g in self.groups for o in g.context if o.ident not in changed}
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
                  records: Mapping[Key, OsmElement] | None = None) -> ChangeSet:
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


def _context(objects: Sequence[OsmElement], records: Mapping[Key, OsmElement]
             ) -> tuple[tuple[OsmElement, ...], tuple[Key, ...]]:
    """The objects `objects` refer to, directly or through others, as `records` hold them
    (unmodified), and the references `records` cannot resolve."""
    if not any(o.nodes or o.members for o in objects):
        return (), ()  # modified nodes: nothing to add (most imports)
    own = {o.ident for o in objects}
    found = referenced_objects(objects, lambda kind, ids: [
        records[(kind, i)] for i in ids if (kind, i) in records])
    refs = {ref for obj in objects for ref in refs_of(obj)}
    refs.update(ref for record in found.values() for ref in refs_of(record))
    absent = refs - own - set(found)
    keys = sorted(set(found) - own, key=lambda k: (_ORDER[k[0]], k[1]))
    return tuple(found[k] for k in keys), tuple(sorted(absent))


def _modified_all(decision: Decision) -> tuple[list[OsmElement], BaseGeometry]:
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


def _modified(source_id: str | None, element: OsmElement, tags: Mapping[str, str]) -> OsmElement:
    if element.version < 1:
        raise ExportError(f"source feature {source_id}: modify without the OSM object "
                          "and the version OSM had")
    if element.type == "node":
        return element._replace(tags=dict(tags))
    return OsmElement(element.type, element.id, element.version, dict(tags),
                      nodes=element.nodes, members=element.members)


def new_objects(geometry: BaseGeometry, tags: dict[str, str], ids: IdCounter) -> list[OsmElement]:
    """Nodes, ways and relation for a new feature: a point is a node, a line one or more ways,
    an area a closed way or a `type=multipolygon` relation with outer and inner members."""
    if isinstance(geometry, Point):
        return [node(ids.next(), 1, dict(tags), geometry.x, geometry.y)]
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
) -> tuple[list[OsmElement], list[OsmElement]]:
    """Nodes and way(s) for a coordinate list; a closed ring reuses its first node; ways longer
    than the API's 2 000 nodes are split into consecutive parts sharing their end nodes."""
    closed = len(coords) > 3 and coords[0] == coords[-1]
    unique = coords[:-1] if closed else coords
    nodes = [node(ids.next(), 1, {}, c[0], c[1]) for c in unique]
    refs = [n.id for n in nodes] + ([nodes[0].id] if closed else [])
    ways = []
    start = 0
    while start < len(refs) - 1:
        part = refs[start:start + MAX_WAY_NODES]
        ways.append(OsmElement("way", ids.next(), 1, dict(tags), nodes=tuple(part)))
        start += MAX_WAY_NODES - 1
    return nodes, ways


def _multipolygon(polygons: list[Polygon], tags: dict[str, str], ids: IdCounter) -> list[OsmElement]:
    objects: list[OsmElement] = []
    members: list[tuple[str, int, str]] = []
    for polygon in polygons:
        for ring, role in [(polygon.exterior, "outer")] + [(r, "inner") for r in polygon.interiors]:
            nodes, ways = _way_chain(list(ring.coords), ids, {})
            objects.extend(nodes + ways)
            members.extend(("way", w.id, role) for w in ways)
    relation_tags = {**tags, "type": "multipolygon"}
    objects.append(OsmElement("relation", ids.next(), 1, relation_tags, members=tuple(members)))
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


def _object_xml(obj: OsmElement, indent: str, extra: Sequence[tuple[str, object]] = (),
                versioned: bool = True) -> list[str]:
    tags = [_tag(k, v) for k, v in sorted(obj.tags.items())]
    problem = next((p for p, _ in tags if p), None)  # the first in key order
    if problem:  # the last guard: nothing unwritable reaches a file
        raise ExportError(f"{obj.type}/{obj.id}: {problem}")
    head = f'{indent}<{obj.type} id="{obj.id}"'
    more = _attrs(extra)
    if more:
        head += " " + more
    if versioned:
        head += f' version="{obj.version}"'
    lon, lat = obj.lon, obj.lat
    if lat is not None and lon is not None:
        head += f' lat="{lat:.7f}" lon="{lon:.7f}"'
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
        self._osc: dict[Key, str] = {}
        self._josm: dict[Key, str] = {}
        self._unmodified: dict[Key, str] = {}

    def osc(self, obj: OsmElement) -> str:
        text = self._osc.get(obj.ident)
        if text is None:
            text = self._osc[obj.ident] = "\n".join(_object_xml(obj, "    "))
        return text

    def josm(self, obj: OsmElement) -> str:
        """New objects without version (JOSM gives them one), touched ones action="modify"."""
        text = self._josm.get(obj.ident)
        if text is None:
            lines = _object_xml(obj, "  ", [("action", "modify")], versioned=obj.id > 0)
            text = self._josm[obj.ident] = "\n".join(lines)
        return text

    def unmodified(self, obj: OsmElement) -> str:
        """An object as OSM has it, in a JOSM file: no action, its version."""
        text = self._unmodified.get(obj.ident)
        if text is None:
            text = self._unmodified[obj.ident] = "\n".join(_object_xml(obj, "  "))
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


# --- checks --------------------------------------------------------------------------------


def check_references(changes: ChangeSet, known: Collection[Key] | None = None) -> None:
    """Every way node and relation member is defined in the file or is an OSM object of the
    input (`known`; when None, any positive id is taken as existing); every modify carries the
    version OSM had."""
    defined = {o.ident for o in changes.objects} | {o.ident for o in changes.context}
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
        elements = {e.ident: e for e in (decision.osm, *decision.extra_osm) if e}
        for obj in group.objects:
            element = elements.get(obj.ident)
            if element is None or obj.version != element.version or obj.version < 1:
                raise ExportError(f"{obj.type}/{obj.id} (source feature {group.source_id}) is "
                                  "modified without the version the OSM data had")
            if known is not None and obj.ident not in known:
                raise ExportError(f"{obj.type}/{obj.id} is modified but is not in the OSM data")


__all__ = ["ChangeGroup", "ChangeSet", "XmlFragments", "build_changes", "check_references",
           "josm_xml", "osmchange_xml"]
