"""The element model that every OSM input ends in (local extract or Overpass).

Live Overpass answers and local files are turned into the same `OsmData`, so offline runs exercise
the production path. Geometries are in EPSG:4326 (lon, lat).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

# What counts as "the same kind" (`osm.match`): a mapping of key -> "*" (any value), a value,
# or a list of values (any of them); or a list of such mappings ("A or B").
TagMatch = Mapping[str, str | Sequence[str]]


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
    geometry: BaseGeometry
    nodes: tuple[int, ...]  # way node ids, needed to write a modified way back
    members: tuple[tuple[str, int, str], ...]  # relation members (type, ref, role)
    key: str  # `node/123`, `way/4`, `relation/5`: the id form of review files and URLs


class OsmElement(_ElementFields):
    """One OSM object as the conflation sees it (immutable).

    A named tuple rather than a dataclass: a run builds one per candidate, 100 000 and more,
    and a frozen dataclass takes three times longer to build. `key` is set once, as the
    conflation asks for it hundreds of thousands of times.
    """

    __slots__ = ()

    def __new__(cls, type: str, id: int, version: int, tags: Mapping[str, str],
                geometry: BaseGeometry, nodes: tuple[int, ...] = (),
                members: tuple[tuple[str, int, str], ...] = ()) -> OsmElement:
        return tuple.__new__(cls, (type, id, version, tags, geometry, nodes, members,
                                   f"{type}/{id}"))

    def __getnewargs__(self) -> tuple[Any, ...]:  # for pickle: the arguments of __new__
        return tuple(self)[:-1]

    def to_json(self, geometry: dict[str, Any] | None = None) -> dict[str, Any]:
        """`geometry`: the geometry's GeoJSON, when already known."""
        data: dict[str, Any] = {
            "type": self.type,
            "id": self.id,
            "version": self.version,
            "tags": dict(self.tags),
            "geometry": mapping(self.geometry) if geometry is None else geometry,
        }
        if self.nodes:
            data["nodes"] = list(self.nodes)
        if self.members:
            data["members"] = [list(m) for m in self.members]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OsmElement:
        return cls(
            type=data["type"],
            id=int(data["id"]),
            version=int(data["version"]),
            tags=dict(data["tags"]),
            geometry=shape(data["geometry"]),
            nodes=tuple(data.get("nodes", ())),
            members=tuple((m[0], int(m[1]), m[2]) for m in data.get("members", ())),
        )


class OsmRecord(NamedTuple):
    """An OSM object as the data holds it, without geometry: what a writer needs to put it,
    unmodified, beside a modified way or relation (its nodes, its members and their nodes), so
    an editor shows that way or relation whole."""

    type: str
    id: int
    version: int
    tags: Mapping[str, str]
    lon: float | None = None  # nodes only
    lat: float | None = None
    nodes: tuple[int, ...] = ()  # ways
    members: tuple[tuple[str, int, str], ...] = ()  # relations



Key = tuple[str, int]  # ("way", 4)
# Records of one type found among the given ids (ids that are not found are left out).
Fetch = Callable[[str, set[int]], Iterable[OsmRecord]]


class Referring(Protocol):
    """An object that refers to others: an element, a record, an object of a change file."""

    @property
    def nodes(self) -> tuple[int, ...]: ...

    @property
    def members(self) -> tuple[tuple[str, int, str], ...]: ...


def refs_of(obj: Referring) -> list[Key]:
    return [("node", n) for n in obj.nodes] + [(t, r) for t, r, _ in obj.members]


def referenced_records(objects: Iterable[Referring], fetch: Fetch) -> dict[Key, OsmRecord]:
    """Every object `objects` refer to, directly or through others, as far as `fetch` finds it
    (an extract's edge cuts relations: their outside members are simply not there).

    Relations are looked up first (a member may be a relation), then ways, then nodes: each
    type adds only work for the types after it, so `fetch` (a pass over a file, for a local
    extract) is called for each type a few times at most."""
    found: dict[Key, OsmRecord] = {}
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
            for record in fetch(kind, batch):
                found[(kind, record.id)] = record
                want(refs_of(record))
    return found


# Bumped when `OsmData.to_json` changes what it holds, so a fetch stage cached by an earlier
# form is read again rather than loaded without what is new (the context objects).
OSM_DATA_FORMAT = 2


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
    context: Mapping[tuple[str, int], OsmRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON form for the stage cache: one column per field and the geometries as WKB
        (exact, and written and read with one vectorised call instead of one per element)."""
        elements = self.elements
        return {
            "coverage": mapping(self.coverage) if self.coverage is not None else None,
            "coverage_origin": self.coverage_origin,
            "meta": dict(self.meta),
            "columns": {
                "type": [e.type for e in elements],
                "id": [e.id for e in elements],
                "version": [e.version for e in elements],
                "tags": [dict(e.tags) for e in elements],
                "wkb": shapely.to_wkb([e.geometry for e in elements], hex=True).tolist(),
                "nodes": {str(i): list(e.nodes) for i, e in enumerate(elements) if e.nodes},
                "members": {str(i): [list(m) for m in e.members]
                            for i, e in enumerate(elements) if e.members},
            },
            "context": _records_to_columns(list(self.context.values())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OsmData:
        """Reads `to_json`, and the earlier form with one GeoJSON object per element."""
        coverage = data.get("coverage")
        columns = data.get("columns")
        elements = (_elements_from_columns(columns) if columns is not None
                    else tuple(OsmElement.from_json(e) for e in data["elements"]))
        return cls(
            elements=elements,
            coverage=shape(coverage) if coverage else None,
            coverage_origin=data.get("coverage_origin", ""),
            meta=dict(data.get("meta", {})),
            context={(r.type, r.id): r for r in _records_from_columns(data.get("context"))},
        )


def _elements_from_columns(columns: Mapping[str, Any]) -> tuple[OsmElement, ...]:
    geometries = shapely.from_wkb(columns["wkb"]).tolist() if columns["wkb"] else []
    nodes, members = columns.get("nodes", {}), columns.get("members", {})
    return tuple(
        OsmElement(kind, int(ident), int(version), dict(tags), geometry,
                   tuple(nodes.get(str(i), ())),
                   tuple((m[0], int(m[1]), m[2]) for m in members.get(str(i), ())))
        for i, (kind, ident, version, tags, geometry) in enumerate(zip(
            columns["type"], columns["id"], columns["version"], columns["tags"], geometries,
            strict=True)))


def _records_to_columns(records: list[OsmRecord]) -> dict[str, Any]:
    return {
        "type": [r.type for r in records],
        "id": [r.id for r in records],
        "version": [r.version for r in records],
        "tags": [dict(r.tags) for r in records],
        "lon": [r.lon for r in records],
        "lat": [r.lat for r in records],
        "nodes": {str(i): list(r.nodes) for i, r in enumerate(records) if r.nodes},
        "members": {str(i): [list(m) for m in r.members] for i, r in enumerate(records)
                    if r.members},
    }


def _records_from_columns(columns: Mapping[str, Any] | None) -> list[OsmRecord]:
    if not columns:
        return []
    nodes, members = columns["nodes"], columns["members"]
    return [
        OsmRecord(kind, int(ident), int(version), dict(tags), lon, lat,
                  tuple(nodes.get(str(i), ())),
                  tuple((m[0], int(m[1]), m[2]) for m in members.get(str(i), ())))
        for i, (kind, ident, version, tags, lon, lat) in enumerate(zip(
            columns["type"], columns["id"], columns["version"], columns["tags"], columns["lon"],
            columns["lat"], strict=True))]
