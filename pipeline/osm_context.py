"""Looking up the objects OSM candidates refer to (`pipeline.kernel.osm.referenced_objects`):
the nodes of a way, the members of a relation, the nodes and members of those in turn.

A modified building way is written to a JOSM file with its nodes, a modified multipolygon with
its member ways and their nodes, all unmodified and at the version OSM has, so JOSM draws them
whole and its validator checks them. They are also what the export's reference check knows to
exist. Every OSM input ends here: a local extract is read again for just these ids, an Overpass
answer through the OSM file it is written as (`pipeline.osm_files.overpass_to_osm_file`).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.kernel.osm import Fetch, OsmElement
from pipeline.opl import read_objects


def objects_from_file(path: Path) -> Fetch:
    """Look objects up in an OSM file, one pass over the file per call; objects without a
    version (an answer without `out meta`) cannot be written beside a change: left out."""

    def fetch(kind: str, ids: set[int]) -> list[OsmElement]:
        found = read_objects(path, [kind], ids)
        return [o for o in found.values() if o.version > 0]

    return fetch
