"""Apply osmChange files to an OSM input the way the OSM API would, to check change files.

The input is read through pyosmium (any OSM file) or from a recorded Overpass JSON answer; each
.osc is read through pyosmium. As on the API, a modify must carry the version the object has
(else it is a conflict) and bumps it; a create must use a new negative id; every way node and
relation member of a changed object must exist afterwards. Nothing here writes files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import osmium

from exports.osmchange import OsmObject, read_objects, snapshot
from pipeline.kernel.errors import ExportError

State = dict[tuple[str, int], OsmObject]


def read_state(path: Path) -> State:
    """Every node, way and relation of an OSM file or of an Overpass JSON answer."""
    with path.open("rb") as handle:
        is_json = handle.read(64).lstrip().startswith(b"{")
    if is_json:
        return _from_overpass_json(json.loads(path.read_text(encoding="utf-8")))
    return read_objects(path)


def _from_overpass_json(payload: Mapping[str, Any]) -> State:
    state: State = {}
    for e in payload.get("elements", []):
        tags = dict(e.get("tags", {}))
        kind, version = e["type"], int(e.get("version", 0)) or None
        if kind == "node":
            obj = OsmObject("node", e["id"], version, tags, e["lon"], e["lat"])
        elif kind == "way":
            obj = OsmObject("way", e["id"], version, tags, nodes=tuple(e.get("nodes", ())))
        elif kind == "relation":
            obj = OsmObject("relation", e["id"], version, tags, members=tuple(
                (m["type"], m["ref"], m.get("role", "")) for m in e.get("members", ())))
        else:
            continue
        state[obj.key] = obj
    return state


def apply_change(state: State, osc: Path) -> State:
    """The state after uploading `osc`; raises ExportError where the API would refuse it."""
    result = dict(state)
    changed: list[OsmObject] = []
    for obj in _read_change(osc):
        if obj.id < 0:
            if obj.key in result:
                raise ExportError(f"{osc.name}: {obj.type}/{obj.id} is created twice")
            result[obj.key] = obj
        else:
            current = result.get(obj.key)
            if current is None:
                raise ExportError(f"{osc.name}: {obj.type}/{obj.id} is modified but does not exist")
            if current.version != obj.version:
                raise ExportError(f"{osc.name}: {obj.type}/{obj.id} version {obj.version} "
                                  f"conflicts with the current version {current.version}")
            result[obj.key] = replace(obj, version=(obj.version or 0) + 1)
        changed.append(obj)
    for obj in changed:
        refs = [("node", r) for r in obj.nodes] + [(t, r) for t, r, _ in obj.members]
        for ref in refs:
            if ref not in result:
                raise ExportError(f"{osc.name}: {obj.type}/{obj.id} refers to missing "
                                  f"{ref[0]}/{ref[1]}")
    return result


def _read_change(osc: Path) -> list[OsmObject]:
    objects = []
    for obj in osmium.FileProcessor(str(osc), osmium.osm.NODE | osmium.osm.WAY
                                    | osmium.osm.RELATION):
        if not isinstance(obj, (osmium.osm.Node, osmium.osm.Way, osmium.osm.Relation)):
            continue
        if not obj.visible:
            raise ExportError(f"{osc.name}: {obj.type_str()}/{obj.id} is deleted; sig2osm "
                              "change files never delete")
        objects.append(snapshot(obj))
    return objects


def apply_changes(state: State, files: Iterable[Path]) -> State:
    """The state after uploading each file in turn."""
    for path in files:
        state = apply_change(state, path)
    return state


def difference(before: State, after: State) -> tuple[State, State]:
    """(created, modified) objects of `after` relative to `before`; raises if anything vanished."""
    gone = sorted(set(before) - set(after))
    if gone:
        raise ExportError(f"objects disappeared: {gone[:5]}")
    created = {k: o for k, o in after.items() if k not in before}
    modified = {k: o for k, o in after.items() if k in before and o != before[k]}
    return created, modified
