"""OSM objects read through OPL text: libosmium writes it in C++, Python only splits lines.

pyosmium hands every tag to Python as an object of its own (about 10 µs a tag), which made
reading 100 000 candidate nodes or reading back a change file the slowest step of a run.
libosmium's OPL writer (https://osmcode.org/opl-file-format/) turns the same objects into one
line each with every special character escaped as `%<hex>%`, so a line splits on spaces and
commas without ambiguity; parsing it is several times faster than walking pyosmium's objects.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import osmium
import osmium.filter
from shapely.geometry import Point

from pipeline.kernel.osm import Key, OsmElement

# Version and visibility only: the other metadata (changeset, user, time) is not used.
OPL_FORMAT = "opl,add_metadata=version"

_ESCAPED = re.compile("%([0-9a-fA-F]+)%")
_KINDS = {"n": "node", "w": "way", "r": "relation"}


# libosmium writes U+100000–U+10FFFF with one hex digit too few, as it writes U+10000–U+1FFFF
# (emoji among them): text with such an escape is read again through pyosmium's objects.
_AMBIGUOUS = re.compile("%1[0-9a-f]{4}%")


def ambiguous(text: str) -> bool:
    """Whether OPL text holds an escape that may stand for two different characters."""
    return "%1" in text and _AMBIGUOUS.search(text) is not None


def opl_writer(path: Path) -> Any:
    """A pyosmium handler that writes every node, way and relation it sees to `path` as OPL."""
    return osmium.SimpleWriter(osmium.io.File(str(path), OPL_FORMAT))


def read_opl(path: Path, kinds: str = "nwr") -> Iterator[tuple[OsmElement, bool]]:
    """The objects of an OPL file written by `opl_writer`, in file order, each with whether its
    text was exact (see `ambiguous`); `kinds` is a subset of "nwr" (node, way, relation)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line[0] in kinds:
                yield parse_line(line), not ambiguous(line)


class NodeBlock(NamedTuple):
    """Nodes of a stretch of an OPL file, as columns; `tags` holds each node's OPL tag text
    (decode it with `parse_tags`: many nodes share one), coordinates are NaN when invalid."""

    ids: list[int]
    versions: list[int]
    tags: list[str]
    lons: list[float]
    lats: list[float]


_NODE_LINE = re.compile(r"^n(-?\d+) v(\d+) d[VD] T(\S*) x(\S*) y(\S*)$", re.MULTILINE)


def read_node_blocks(path: Path, block_bytes: int = 1 << 22) -> Iterator[NodeBlock]:
    """The nodes of an OPL file written by `opl_writer`, a few megabytes at a time, parsed by
    one regular expression per block rather than by Python code per node."""
    with open(path, encoding="utf-8") as handle:
        while lines := handle.readlines(block_bytes):
            nodes = [line for line in lines if line[0] == "n"]
            found = _NODE_LINE.findall("".join(nodes))
            if len(found) != len(nodes):  # a layout the expression does not know
                found = [_node_fields(line) for line in nodes]
            if found:
                ids, versions, tags, lons, lats = zip(*found, strict=True)
                yield NodeBlock(list(map(int, ids)), list(map(int, versions)), list(tags),
                                [float(x) if x else math.nan for x in lons],
                                [float(y) if y else math.nan for y in lats])


def read_opl_nodes(path: Path) -> Iterator[tuple[OsmElement, bool]]:
    """The nodes of an OPL file written by `opl_writer`, as `read_opl` gives them, parsed a
    block at a time (`read_node_blocks`)."""
    for block in read_node_blocks(path):
        tags = {text: parse_tags(text) for text in set(block.tags)}
        for ident, version, text, lon, lat in zip(block.ids, block.versions, block.tags,
                                                  block.lons, block.lats, strict=True):
            where = None if math.isnan(lon) or math.isnan(lat) else Point(lon, lat)
            yield OsmElement("node", ident, version, dict(tags[text]), where), not ambiguous(text)


def _node_fields(line: str) -> tuple[str, str, str, str, str]:
    head, *fields = line.rstrip("\n").split(" ")
    values = {f[0]: f[1:] for f in fields if f}
    return (head[1:], values.get("v", "0"), values.get("T", ""), values.get("x", ""),
            values.get("y", ""))


def parse_line(line: str) -> OsmElement:
    """One OPL line as an element (a node without a valid location has no geometry)."""
    head, *fields = line.rstrip("\n").split(" ")
    values = {f[0]: f[1:] for f in fields if f}
    x, y = values.get("x", ""), values.get("y", "")
    return OsmElement(
        _KINDS[head[0]],
        int(head[1:]),
        int(values.get("v", "0")),
        parse_tags(values.get("T", "")),
        Point(float(x), float(y)) if x and y else None,
        tuple(int(n[1:]) for n in values["N"].split(",")) if values.get("N") else (),
        _members(values.get("M", "")),
    )


_ENTITIES = {"node": osmium.osm.NODE, "way": osmium.osm.WAY, "relation": osmium.osm.RELATION}


def read_objects(path: Path, kinds: Collection[str] = ("node", "way", "relation"),
                 ids: Collection[int] | None = None) -> dict[Key, OsmElement]:
    """Objects of an OSM file (of `kinds`, and with `ids` when given), read through OPL; the
    few whose OPL text is ambiguous are read again through pyosmium's objects. Nodes have
    their point as geometry, ways and relations none."""
    wanted = set(ids) if ids is not None else None
    with tempfile.TemporaryDirectory(prefix="sig2osm-read-") as tmp:
        opl = Path(tmp) / "objects.opl"
        writer = opl_writer(opl)
        # pyosmium's id filter takes no negative id (a file with a diff applied holds created
        # objects): those are then picked out below.
        handlers: list[Any] = ([osmium.filter.IdFilter(wanted)]
                               if wanted and min(wanted) > 0 else []) + [writer]
        entities = osmium.osm.osm_entity_bits.NOTHING
        for kind in kinds:
            entities |= _ENTITIES[kind]
        try:
            with osmium.io.Reader(str(path), entities) as reader:
                osmium.apply(reader, *handlers)
        finally:
            writer.close()
        lines = [*read_opl_nodes(opl), *read_opl(opl, kinds="wr")]
    found = [(obj, exact) for obj, exact in lines if wanted is None or obj.id in wanted]
    redo = exact_objects(path, [obj.ident for obj, exact in found if not exact])
    objects = {}
    for obj, _ in found:
        if obj.ident in redo:
            tags, members = redo[obj.ident]
            obj = obj._replace(tags=tags, members=members)
        objects[obj.ident] = obj
    return objects


def exact_objects(path: Path, keys: Collection[tuple[str, int]]
                  ) -> dict[tuple[str, int], tuple[dict[str, str], tuple[tuple[str, int, str], ...]]]:
    """Tags and relation members of the objects `keys` (type, id), read from `path` through
    pyosmium's objects: slow, for the few objects whose OPL text is ambiguous."""
    wanted = set(keys)
    found: dict[tuple[str, int], tuple[dict[str, str], tuple[tuple[str, int, str], ...]]] = {}
    if not wanted:
        return found
    processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY
                                     | osmium.osm.RELATION)
    if all(ident >= 0 for _, ident in wanted):  # pyosmium's id filter takes no negative id
        processor = processor.with_filter(osmium.filter.IdFilter({i for _, i in wanted}))
    obj: Any
    for obj in processor:
        key = (_KINDS[obj.type_str()], obj.id)
        if key in wanted:
            members = tuple((_KINDS[m.type], m.ref, m.role) for m in obj.members) \
                if obj.is_relation() else ()
            found[key] = ({t.k: t.v for t in obj.tags}, members)
    return found


def parse_tags(text: str) -> dict[str, str]:
    """`k=v,k2=v2` with OPL escapes; `=` and `,` inside keys and values are always escaped."""
    if not text:
        return {}
    if "%" in text:
        return {unescape(k): unescape(v) for k, v in (p.split("=", 1) for p in text.split(","))}
    return dict(pair.split("=", 1) for pair in text.split(","))


def unescape(text: str) -> str:
    if "%" not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


def _members(text: str) -> tuple[tuple[str, int, str], ...]:
    if not text:
        return ()
    members = []
    for member in text.split(","):
        ref, role = member.split("@", 1)
        members.append((_KINDS[ref[0]], int(ref[1:]), unescape(role)))
    return tuple(members)
