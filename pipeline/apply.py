"""Apply osmChange files to an OSM input the way the OSM API would, to check change files.

The input is read through pyosmium (any OSM file, or a recorded Overpass answer written as one,
as every OSM input is); each .osc is read through pyosmium. As on the API, a modify must carry
the version the object has (else it is a conflict) and bumps it; a create must use a new
negative id; every way node and relation member of a changed object must exist afterwards.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import osmium

from pipeline.kernel.errors import ExportError
from pipeline.kernel.osm import Key, OsmElement
from pipeline.opl import read_objects
from pipeline.osm_files import is_overpass_answer, overpass_to_osm_file, read_answer_payload

State = dict[Key, OsmElement]


def read_state(path: Path) -> State:
    """Every node, way and relation of an OSM file or of a recorded Overpass answer."""
    if not is_overpass_answer(path):
        return read_objects(path)
    with tempfile.TemporaryDirectory(prefix="sig2osm-apply-") as tmp:
        return read_objects(overpass_to_osm_file(read_answer_payload(path),
                                                 Path(tmp) / "answer.osm.pbf"))


def apply_change(state: State, osc: Path) -> State:
    """The state after uploading `osc`; raises ExportError where the API would refuse it."""
    result = dict(state)
    changed: list[OsmElement] = []
    for obj in _read_change(osc):
        if obj.id < 0:
            if obj.ident in result:
                raise ExportError(f"{osc.name}: {obj.key} is created twice")
            result[obj.ident] = obj
        else:
            current = result.get(obj.ident)
            if current is None:
                raise ExportError(f"{osc.name}: {obj.key} is modified but does not exist")
            if current.version != obj.version:
                raise ExportError(f"{osc.name}: {obj.key} version {obj.version} "
                                  f"conflicts with the current version {current.version}")
            result[obj.ident] = obj._replace(version=obj.version + 1)
        changed.append(obj)
    for obj in changed:
        refs = [("node", r) for r in obj.nodes] + [(t, r) for t, r, _ in obj.members]
        for ref in refs:
            if ref not in result:
                raise ExportError(f"{osc.name}: {obj.key} refers to missing "
                                  f"{ref[0]}/{ref[1]}")
    return result


def _read_change(osc: Path) -> list[OsmElement]:
    """The objects of an osmChange file in file order; a delete is refused."""
    obj: Any
    for obj in osmium.FileProcessor(str(osc), osmium.osm.NODE | osmium.osm.WAY
                                    | osmium.osm.RELATION):
        if not obj.visible:
            raise ExportError(f"{osc.name}: {obj.type_str()}/{obj.id} is deleted; sig2osm "
                              "change files never delete")
    objects = read_objects(osc)
    return [objects[k] for k in objects]


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
