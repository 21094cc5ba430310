"""Change files read back before they are accepted: each file the export builds is read again
through pyosmium (libosmium's parser, as JOSM's and the API's stand-in) and must hold exactly the
objects written — same tags, nodes, members, versions and coordinates to 1e-7 degree.

A writer cannot check its own text by re-running its own logic; this reads what was written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from pipeline.kernel.errors import ExportError
from pipeline.kernel.osm import Key, OsmElement
from pipeline.opl import read_objects


def read_change_file(path: Path) -> dict[Key, OsmElement]:
    """Every node, way and relation of an OSM or osmChange file, read through pyosmium."""
    try:
        return read_objects(path)
    except RuntimeError as exc:
        raise ExportError(f"{path.name} does not read back through pyosmium: {exc}") from exc


def same_object(read: OsmElement, written: OsmElement) -> bool:
    """Whether an object read back equals what was written (coordinates to 1e-7 degree; new
    objects of a JOSM file carry no version)."""
    if (dict(read.tags), read.nodes, read.members) != (dict(written.tags), written.nodes,
                                                       written.members):
        return False
    if written.type == "node":
        if read.lon is None or read.lat is None or written.lon is None or written.lat is None:
            return False  # read back without a location
        if abs(read.lon - written.lon) > 6e-8 or abs(read.lat - written.lat) > 6e-8:
            return False
    return written.id < 0 or read.version == written.version


def validate_file(content: str, suffix: str, objects: Sequence[OsmElement]) -> None:
    """Read a written file back and check it holds exactly `objects`."""
    with tempfile.TemporaryDirectory(prefix="sig2osm-check-") as tmp:
        path = Path(tmp) / f"check{suffix}"
        path.write_text(content, encoding="utf-8")
        seen = read_change_file(path)
    expected = {o.ident: o for o in objects}
    missing = sorted(set(expected) - set(seen))[:5]
    extra = sorted(set(seen) - set(expected))[:5]
    changed = sorted(k for k in set(seen) & set(expected)
                     if not same_object(seen[k], expected[k]))[:5]
    if missing or extra or changed:
        raise ExportError(f"{suffix} file read back differs: missing {missing}, extra {extra}, "
                          f"different {changed}")
