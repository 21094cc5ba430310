"""The OSM element model: the one type every OSM input ends in (a local extract, an Overpass
answer, a diff, a change file read back) and every writer takes, and `OsmData`, the candidates
of a run with the area they cover and the objects they refer to.

Live Overpass answers and local files end in the same `OsmData`, so offline runs exercise the
production path. Geometries are in EPSG:4326 (lon, lat).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import shapely
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry

# What counts as "the same kind" (`osm.match`): a mapping of key -> "*" (any value), a value,
# or a list of values (any of them); or a list of such mappings ("A or B").
TagMatch = Mapping[str, str | Sequence[str]]  # as the profile's (kernel.settings) reads it


def match_alternatives(match: TagMatch | Sequence[TagMatch]) -> list[TagMatch]:
    """`osm.match` as a list of alternatives, each a mapping every key of which must hold."""
    if isinstance(match, Mapping):
        return [match]
    return list(match)


def _satisfies(tags: Mapping[str, str], wanted: TagMatch) -> bool:
    for key, expected in wanted.items():
        value = tags.get(key)
        if value is None:
            return False
        if expected == "*":
            continue
        if isinstance(expected, str):
            if value != expected:
                return False
        elif value not in expected:
            return False
    return True


def tags_match(tags: Mapping[str, str], match: TagMatch | Sequence[TagMatch]) -> bool:
    """Whether `tags` satisfy one alternative of `match` ("*" any value, a list any of its
    values)."""
    if isinstance(match, Mapping):
        return _satisfies(tags, match)
    return any(_satisfies(tags, alternative) for alternative in match)


def is_candidate(tags: Mapping[str, str], match: TagMatch | Sequence[TagMatch],
                 ref_key: str | None) -> bool:
    return tags_match(tags, match) or (ref_key is not None and ref_key in tags)


def candidate_kinds(match: TagMatch | Sequence[TagMatch],
                    related: Sequence[TagMatch] = ()) -> list[TagMatch]:
    """What the OSM readers keep: the kinds of `osm.match` and the related kinds."""
    return [*match_alternatives(match), *related]


def match_keys(match: TagMatch | Sequence[TagMatch]) -> list[str]:
    """Every key `match` names, sorted."""
    return sorted({key for alternative in match_alternatives(match) for key in alternative})


def describe_kinds(match: TagMatch | Sequence[TagMatch]) -> list[str]:
    """Each alternative of `match` in words: `amenity=vending_machine, vending=parking_tickets`."""
    return [", ".join(f"{k}={v if isinstance(v, str) else '|'.join(v)}" for k, v in alt.items())
            for alt in match_alternatives(match)]


def describe_match(match: TagMatch | Sequence[TagMatch]) -> str:
    """`amenity=bench` / `highway=bus_stop or amenity=shelter`, for messages."""
    return " or ".join(describe_kinds(match))


# Invariant 4: more usable source features than this and no OSM candidate at all is a failed or
# wrong fetch, never "nothing in OSM" (from Overpass or from a file alike).
TRIVIAL_LAYER = 10


def suspiciously_empty(candidates: int, usable: int, expect_empty: bool) -> bool:
    return candidates == 0 and not expect_empty and usable > TRIVIAL_LAYER


class _ElementFields(NamedTuple):
    type: str
    id: int
    version: int
    tags: Mapping[str, str]
    geometry: BaseGeometry | None  # EPSG:4326; a node's point; None where not built
    nodes: tuple[int, ...]  # way node ids, needed to write a modified way back
    members: tuple[tuple[str, int, str], ...]  # relation members (type, ref, role)
    key: str  # `node/123`, `way/4`, `relation/5`: the id form of review files and URLs


Key = tuple[str, int]  # ("way", 4)
TYPE_ORDER = {"node": 0, "way": 1, "relation": 2}  # the order of OSM files: nodes first


class OsmElement(_ElementFields):
    """One OSM object (immutable): a candidate with its geometry, an object it refers to, an
    object of a change file (new ones with negative ids) — every reader, the conflation and
    every writer use this one type.

    A named tuple rather than a dataclass: a run builds one per candidate, 100 000 and more,
    and a frozen dataclass takes three times longer to build. `key` is set once, as the
    conflation asks for it hundreds of thousands of times.
    """

    __slots__ = ()

    def __new__(cls, type: str, id: int, version: int, tags: Mapping[str, str],
                geometry: BaseGeometry | None = None, nodes: tuple[int, ...] = (),
                members: tuple[tuple[str, int, str], ...] = ()) -> OsmElement:
        return tuple.__new__(cls, (type, id, version, tags, geometry, nodes, members,
                                   f"{type}/{id}"))

    def __getnewargs__(self) -> tuple[Any, ...]:  # for pickle: the arguments of __new__
        return tuple(self)[:-1]

    @property
    def ident(self) -> Key:
        """("node", 123): how files and references name the object."""
        return self.type, self.id

    @property
    def lon(self) -> float | None:
        point = self.geometry
        return point.x if self.type == "node" and point is not None else None

    @property
    def lat(self) -> float | None:
        point = self.geometry
        return point.y if self.type == "node" and point is not None else None

    def to_json(self, geometry: dict[str, Any] | None = None) -> dict[str, Any]:
        """`geometry`: the geometry's GeoJSON, when already known."""
        if geometry is None and self.geometry is not None:
            geometry = mapping(self.geometry)
        data: dict[str, Any] = {"type": self.type, "id": self.id, "version": self.version,
                                "tags": dict(self.tags), "geometry": geometry}
        if self.nodes:
            data["nodes"] = list(self.nodes)
        if self.members:
            data["members"] = [list(m) for m in self.members]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OsmElement:
        return cls(data["type"], int(data["id"]), int(data["version"]), dict(data["tags"]),
                   shape(data["geometry"]) if data.get("geometry") else None,
                   tuple(data.get("nodes", ())),
                   tuple((m[0], int(m[1]), m[2]) for m in data.get("members", ())))


def node(ident: int, version: int, tags: Mapping[str, str], lon: float, lat: float
         ) -> OsmElement:
    return OsmElement("node", ident, version, tags, Point(lon, lat))


# Objects of one type found among the given ids (ids that are not found are left out).
Fetch = Callable[[str, set[int]], Iterable[OsmElement]]


def refs_of(obj: OsmElement) -> list[Key]:
    return [("node", n) for n in obj.nodes] + [(t, r) for t, r, _ in obj.members]


def referenced_objects(objects: Iterable[OsmElement], fetch: Fetch) -> dict[Key, OsmElement]:
    """Every object `objects` refer to, directly or through others, as far as `fetch` finds it
    (an extract's edge cuts relations: their outside members are simply not there).

    Relations are looked up first (a member may be a relation), then ways, then nodes: each
    type adds only work for the types after it, so `fetch` (a pass over a file, for a local
    extract) is called for each type a few times at most."""
    found: dict[Key, OsmElement] = {}
    asked: set[Key] = set()
    pending: dict[str, set[int]] = {"node": set(), "way": set(), "relation": set()}

    def want(refs: Iterable[Key]) -> None:
        for kind, ident in refs:
            if (kind, ident) not in asked:
                pending[kind].add(ident)

    for obj in objects:
        if obj.nodes or obj.members:  # most candidates are nodes: nothing to look up
            want(refs_of(obj))
    for kind in ("relation", "way", "node"):
        while pending[kind]:
            batch, pending[kind] = pending[kind], set()
            asked.update((kind, i) for i in batch)
            for element in fetch(kind, batch):
                found[element.ident] = element
                want(refs_of(element))
    return found


# Bumped when `OsmData.to_json` changes what it holds: a fetch stage cached in an earlier form
# is read again, never loaded by a second reader.
OSM_DATA_FORMAT = 3


@dataclass(frozen=True)
class OsmData:
    """OSM candidates plus the area the data is known to cover.

    `coverage` is None only when nobody could say which area the data covers; ingest then treats
    every source feature as outside it (skip), because absence of an object proves nothing there.
    """

    elements: tuple[OsmElement, ...]
    coverage: BaseGeometry | None
    coverage_origin: str  # where the coverage comes from, said in the report
    meta: Mapping[str, Any] = field(default_factory=dict)  # osm_base, generator, query, server…
    # Every object the candidates refer to, as far as the data holds it: the nodes of candidate
    # ways, the members of candidate relations, their nodes and members in turn (by type, id).
    context: Mapping[Key, OsmElement] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON form for the stage cache: one column per field and the geometries as WKB
        (exact, and written and read with one vectorised call instead of one per element)."""
        return {
            "format": OSM_DATA_FORMAT,
            "coverage": mapping(self.coverage) if self.coverage is not None else None,
            "coverage_origin": self.coverage_origin,
            "meta": dict(self.meta),
            "columns": _to_columns(self.elements),
            "context": _to_columns(list(self.context.values())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OsmData:
        coverage = data.get("coverage")
        context = _from_columns(data["context"])
        return cls(elements=_from_columns(data["columns"]),
                   coverage=shape(coverage) if coverage else None,
                   coverage_origin=data.get("coverage_origin", ""),
                   meta=dict(data.get("meta", {})),
                   context={e.ident: e for e in context})


def _to_columns(elements: Sequence[OsmElement]) -> dict[str, Any]:
    return {
        "type": [e.type for e in elements],
        "id": [e.id for e in elements],
        "version": [e.version for e in elements],
        "tags": [dict(e.tags) for e in elements],
        "wkb": shapely.to_wkb([e.geometry for e in elements], hex=True).tolist(),
        "nodes": {str(i): list(e.nodes) for i, e in enumerate(elements) if e.nodes},
        "members": {str(i): [list(m) for m in e.members]
                    for i, e in enumerate(elements) if e.members},
    }


def _from_columns(columns: Mapping[str, Any]) -> tuple[OsmElement, ...]:
    geometries = shapely.from_wkb(columns["wkb"]).tolist() if columns["wkb"] else []
    nodes, members = columns.get("nodes", {}), columns.get("members", {})
    return tuple(
        OsmElement(kind, int(ident), int(version), dict(tags), geometry,
                   tuple(nodes.get(str(i), ())),
                   tuple((m[0], int(m[1]), m[2]) for m in members.get(str(i), ())))
        for i, (kind, ident, version, tags, geometry) in enumerate(zip(
            columns["type"], columns["id"], columns["version"], columns["tags"], geometries,
            strict=True)))
