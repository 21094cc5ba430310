"""Looking up the objects OSM candidates refer to (`pipeline.kernel.osm.referenced_records`):
the nodes of a way, the members of a relation, the nodes and members of those in turn.

A modified building way is written to a JOSM file with its nodes, a modified multipolygon with
its member ways and their nodes, all unmodified and at the version OSM has, so JOSM draws them
whole and its validator checks them. They are also what the export's reference check knows to
exist. Both OSM inputs end here: a local extract is read again for just these ids (through
libosmium's OPL writer, see `pipeline.opl`), an Overpass answer (`(._;>;)` recursion) already
holds them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import osmium
import osmium.filter

from pipeline.kernel.osm import Fetch, Key, OsmRecord
from pipeline.opl import OplObject, exact_objects, opl_writer, read_opl, read_opl_nodes

# --- from a local extract --------------------------------------------------------------------

_ENTITIES = {"node": osmium.osm.NODE, "way": osmium.osm.WAY, "relation": osmium.osm.RELATION}


def records_from_file(path: Path) -> Fetch:
    """Look objects up in an OSM file, one pass over the file per call."""

    def fetch(kind: str, ids: set[int]) -> list[OsmRecord]:
        with tempfile.TemporaryDirectory(prefix="sig2osm-refs-") as tmp:
            opl = Path(tmp) / "refs.opl"
            writer = opl_writer(opl)
            # pyosmium's id filter takes no negative id (a file with an osm.diff applied holds
            # created objects): those are then picked out here.
            handlers: list[Any] = ([osmium.filter.IdFilter(ids)] if min(ids) > 0 else []) + [writer]
            try:
                with osmium.io.Reader(str(path), _ENTITIES[kind]) as reader:
                    osmium.apply(reader, *handlers)
            finally:
                writer.close()
            read = read_opl_nodes(opl) if kind == "node" else read_opl(opl, kinds=kind[0])
            objects = [o for o in read if o.id in ids]
        exact = exact_objects(path, [(o.type, o.id) for o in objects if not o.exact])
        return [_record(o, exact) for o in objects if o.version > 0]

    return fetch


def _record(obj: OplObject, exact: Mapping[Key, tuple[dict[str, str], Any]]) -> OsmRecord:
    tags, members = exact.get((obj.type, obj.id), (obj.tags, obj.members))
    return OsmRecord(obj.type, obj.id, obj.version, tags, obj.lon, obj.lat, obj.nodes, members)


# --- from an Overpass answer -----------------------------------------------------------------


def records_from_payload(elements: Iterable[Mapping[str, Any]]) -> Fetch:
    """Look objects up among the elements of an Overpass JSON answer (or its XML twin); an
    element without a version (an answer without `out meta`) cannot be written, so it is left
    out."""
    by_key = {(e.get("type"), e.get("id")): e for e in elements if "version" in e}

    def fetch(kind: str, ids: set[int]) -> list[OsmRecord]:
        raws = (by_key.get((kind, i)) for i in sorted(ids))
        return [_record_from_raw(raw) for raw in raws if raw is not None]

    return fetch


def _record_from_raw(raw: Mapping[str, Any]) -> OsmRecord:
    members = tuple((m["type"], int(m["ref"]), m.get("role", "")) for m in raw.get("members", ()))
    return OsmRecord(raw["type"], int(raw["id"]), int(raw["version"]), dict(raw.get("tags", {})),
                     raw.get("lon"), raw.get("lat"), tuple(raw.get("nodes", ())), members)
