"""osmChange (`changes.osc`) and JOSM XML (`changes.osm`) from the decision table.

libosmium's change writer files every object of version 1 under <create>, which would turn the
modify of an OSM object at version 1 into a create; so the XML is written here, deterministic and
escaped, and read back through pyosmium before it is accepted (see `validate_with_osmium`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import osmium
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from conflation.decisions import CREATE, MODIFY, Decision
from pipeline import __version__
from pipeline.errors import ExportError

GENERATOR = f"sig2osm {__version__}"
MAX_WAY_NODES = 2000  # the OSM API refuses longer ways


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


@dataclass
class ChangeSet:
    """New and modified objects, ordered as they are written (nodes, ways, relations)."""

    creates: list[OsmObject] = field(default_factory=list)
    modifies: list[OsmObject] = field(default_factory=list)

    @property
    def objects(self) -> list[OsmObject]:
        return self.creates + self.modifies

    def bbox(self) -> tuple[float, float, float, float] | None:
        lons = [o.lon for o in self.objects if o.lon is not None]
        lats = [o.lat for o in self.objects if o.lat is not None]
        if not lons:
            return None
        return min(lons), min(lats), max(lons), max(lats)  # type: ignore[type-var]


class _IdCounter:
    """One counter of negative ids per run: -1, -2, … in decision order."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last -= 1
        return self.last


def build_changes(decisions: Sequence[Decision]) -> ChangeSet:
    """Turn `create` and `modify` decisions into OSM objects; nothing else is ever written."""
    changes = ChangeSet()
    ids = _IdCounter()
    for decision in decisions:
        if decision.decision == CREATE:
            assert decision.geometry is not None
            changes.creates.extend(_new_objects(decision.geometry, decision.tags, ids))
        elif decision.decision == MODIFY:
            assert decision.osm is not None
            changes.modifies.append(_modified(decision))
    order = {"node": 0, "way": 1, "relation": 2}
    changes.creates.sort(key=lambda o: (order[o.type], -o.id))
    changes.modifies.sort(key=lambda o: (order[o.type], o.id))
    return changes


def _modified(decision: Decision) -> OsmObject:
    element = decision.osm
    assert element is not None
    if element.type == "node":
        point = element.geometry
        assert isinstance(point, Point)
        return OsmObject("node", element.id, element.version, dict(decision.tags), point.x, point.y)
    if element.type == "way":
        return OsmObject("way", element.id, element.version, dict(decision.tags),
                         nodes=element.nodes)
    return OsmObject("relation", element.id, element.version, dict(decision.tags),
                     members=element.members)


def _new_objects(geometry: BaseGeometry, tags: dict[str, str], ids: _IdCounter) -> list[OsmObject]:
    if isinstance(geometry, Point):
        return [OsmObject("node", ids.next(), 1, dict(tags), geometry.x, geometry.y)]
    if isinstance(geometry, LineString):
        nodes, ways = _way_chain(list(geometry.coords), {}, ids, dict(tags))
        return nodes + ways
    if isinstance(geometry, Polygon) and not geometry.interiors:
        nodes, ways = _way_chain(list(geometry.exterior.coords), {}, ids, dict(tags))
        if len(ways) == 1:
            return nodes + ways
    polygons = [geometry] if isinstance(geometry, Polygon) else list(getattr(geometry, "geoms", []))
    if not all(isinstance(p, Polygon) for p in polygons) or not isinstance(
            geometry, (Polygon, MultiPolygon)):
        raise ExportError(f"cannot write a {geometry.geom_type} as OSM objects")
    return _multipolygon(polygons, tags, ids)


def _way_chain(
    coords: list[tuple[float, ...]], tags: dict[str, str], ids: _IdCounter,
    way_tags: dict[str, str] | None = None,
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
        ways.append(OsmObject("way", ids.next(), 1, dict(way_tags or tags), nodes=tuple(part)))
        start += MAX_WAY_NODES - 1
    return nodes, ways


def _multipolygon(polygons: list[Polygon], tags: dict[str, str], ids: _IdCounter) -> list[OsmObject]:
    objects: list[OsmObject] = []
    members: list[tuple[str, int, str]] = []
    for polygon in polygons:
        for ring, role in [(polygon.exterior, "outer")] + [(r, "inner") for r in polygon.interiors]:
            nodes, ways = _way_chain(list(ring.coords), {}, ids)
            objects.extend(nodes + ways)
            members.extend(("way", w.id, role) for w in ways)
    relation_tags = {"type": "multipolygon", **tags}
    objects.append(OsmObject("relation", ids.next(), 1, relation_tags, members=tuple(members)))
    return objects


# --- XML -------------------------------------------------------------------------------------


def _attrs(pairs: Iterable[tuple[str, object]]) -> str:
    return " ".join(f"{k}={quoteattr(str(v))}" for k, v in pairs if v is not None)


def _coord(value: float | None) -> str | None:
    return None if value is None else f"{value:.7f}"


def _object_xml(obj: OsmObject, indent: str, extra: Sequence[tuple[str, object]] = ()) -> list[str]:
    base: list[tuple[str, object]] = [("id", obj.id), *extra]
    if obj.version is not None:
        base.append(("version", obj.version))
    if obj.type == "node":
        base += [("lat", _coord(obj.lat)), ("lon", _coord(obj.lon))]
    children = [f'{indent}  <nd ref="{ref}"/>' for ref in obj.nodes]
    children += [f"{indent}  <member {_attrs([('type', t), ('ref', r), ('role', role)])}/>"
                 for t, r, role in obj.members]
    children += [f"{indent}  <tag {_attrs([('k', k), ('v', v)])}/>" for k, v in sorted(obj.tags.items())]
    head = f"{indent}<{obj.type} {_attrs(base)}"
    if not children:
        return [head + "/>"]
    return [head + ">", *children, f"{indent}</{obj.type}>"]


def osmchange_xml(changes: ChangeSet) -> str:
    """osmChange 0.6: creates with negative ids and version 1, modifies with the OSM version."""
    lines = ["<?xml version='1.0' encoding='UTF-8'?>",
             f"<osmChange version=\"0.6\" generator={quoteattr(GENERATOR)}>"]
    for section, objects in (("create", changes.creates), ("modify", changes.modifies)):
        if not objects:
            continue
        lines.append(f"  <{section}>")
        for obj in objects:
            lines += _object_xml(obj, "    ")
        lines.append(f"  </{section}>")
    lines.append("</osmChange>")
    return "\n".join(lines) + "\n"


def josm_xml(changes: ChangeSet) -> str:
    """JOSM XML: upload="false" so it is never sent as is; action="modify" on touched objects."""
    lines = ["<?xml version='1.0' encoding='UTF-8'?>",
             f"<osm version=\"0.6\" generator={quoteattr(GENERATOR)} upload=\"false\">"]
    box = changes.bbox()
    if box is not None:
        west, south, east, north = box
        lines.append(f'  <bounds minlat="{south:.7f}" minlon="{west:.7f}" maxlat="{north:.7f}" '
                     f'maxlon="{east:.7f}"/>')
    order = {"node": 0, "way": 1, "relation": 2}
    objects = sorted(changes.objects, key=lambda o: (order[o.type], o.id < 0, abs(o.id)))
    for obj in objects:
        if obj.id < 0:
            new = OsmObject(obj.type, obj.id, None, obj.tags, obj.lon, obj.lat, obj.nodes,
                            obj.members)
            lines += _object_xml(new, "  ", [("action", "modify")])
        else:
            lines += _object_xml(obj, "  ", [("action", "modify")])
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


def validate_with_osmium(content: str, suffix: str, changes: ChangeSet) -> None:
    """Read a written file back through pyosmium and check it holds exactly `changes`."""
    with tempfile.TemporaryDirectory(prefix="sig2osm-check-") as tmp:
        path = Path(tmp) / f"check{suffix}"
        path.write_text(content, encoding="utf-8")
        seen: dict[tuple[str, int], dict[str, str]] = {}
        try:
            for obj in osmium.FileProcessor(str(path)):
                kind = {"n": "node", "w": "way", "r": "relation"}[obj.type_str()]
                seen[(kind, obj.id)] = {t.k: t.v for t in obj.tags}
        except RuntimeError as exc:
            raise ExportError(f"{suffix} file does not read back through pyosmium: {exc}") from exc
    expected = {(o.type, o.id): o.tags for o in changes.objects}
    if seen != expected:
        missing = sorted(set(expected) - set(seen))[:5]
        extra = sorted(set(seen) - set(expected))[:5]
        changed = sorted(k for k in set(seen) & set(expected) if seen[k] != expected[k])[:5]
        raise ExportError(f"{suffix} file read back differs: missing {missing}, extra {extra}, "
                          f"different tags {changed}")


def check_references(changes: ChangeSet) -> None:
    """Every way node and relation member is defined in the file or is an existing OSM object."""
    defined = {(o.type, o.id) for o in changes.objects}
    for obj in changes.objects:
        refs = [("node", r) for r in obj.nodes] + [(t, r) for t, r, _ in obj.members]
        for ref in refs:
            if ref[1] < 0 and ref not in defined:
                raise ExportError(f"{obj.type}/{obj.id} refers to {ref[0]}/{ref[1]}, which is "
                                  "neither in the file nor in OSM")
    for obj in changes.modifies:
        if obj.version is None or obj.version < 1:
            raise ExportError(f"{obj.type}/{obj.id} is modified without the version OSM had")


__all__ = ["CREATE", "MODIFY", "ChangeSet", "OsmObject", "build_changes", "josm_xml",
           "osmchange_xml"]
