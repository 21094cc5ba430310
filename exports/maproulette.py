"""`maproulette.geojsonl`: a MapRoulette cooperative challenge, one task per create or modify.

The file is MapRoulette's line-by-line GeoJSON: each line starts with the RFC 7464 record
separator (0x1E) and holds one task as a FeatureCollection. A `cooperativeWork` object
(meta version 2, type 2 = change file) carries the task's own osmChange, base64-encoded, which
MapRoulette loads into the mapper's editor (the format `mr cooperative change` writes). Task
properties are flat, text or numbers, as MapRoulette's task view shows only those: the tag diff
is one `tag:<key>` property per key ("old → new", see `flat_tags`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

from shapely.geometry import mapping

from exports.osmchange import ChangeGroup, ChangeSet, XmlFragments, osmchange_xml
from exports.review import OSM_BROWSE
from pipeline.kernel.decisions import CREATE, Decision, geometries_json
from pipeline.kernel.settings import Profile

RECORD_SEPARATOR = "\x1e"
COOPERATIVE_META = {"version": 2, "type": 2}  # type 2: a change file (1 is tag fixes)


def default_instructions(profile: Profile) -> str:
    producer = profile.source.producer or "the municipal data"
    return (f"This task holds one change prepared by sig2osm from {producer} "
            f"({(profile.description or profile.name).rstrip('.')}). Open it in JOSM: the change loads by "
            "itself. Check it against recent imagery and the objects around it; fix tags or "
            "position, or drop it if it duplicates an object or is wrong. Upload with the "
            "challenge's changeset comment, then mark the task.")


ARROW = " \u2192 "  # →


def flat_tags(decision: Decision) -> dict[str, str]:
    """One `tag:<key>` property per key, as text: MapRoulette's task view lists properties
    whose values are text or numbers and skips nested objects. The value is the tag's value
    for a new object or a tag that stays; "old → new" for a change; "(none) → new" for a key
    added to an OSM object; "old → (removed)"; "osm (kept; source: value)" where OSM's value
    stays over a different source value."""
    shown = {f"tag:{k}": v for k, v in decision.tags.items()}
    merge = decision.merge
    if merge is not None and (merge.new or merge.changed or merge.kept or merge.removed):
        shown.update({f"tag:{k}": f"(none){ARROW}{v}" for k, v in merge.new.items()})
        shown.update({f"tag:{k}": f"{old}{ARROW}{new}" for k, (old, new) in merge.changed.items()})
        shown.update({f"tag:{k}": f"{osm} (kept; source: {source})"
                      for k, (osm, source) in merge.kept.items()})
        shown.update({f"tag:{k}": f"{old}{ARROW}(removed)" for k, old in merge.removed.items()})
    return dict(sorted(shown.items()))


def task_line(group: ChangeGroup, instructions: str, geometry: dict[str, Any] | None = None,
              fragments: XmlFragments | None = None) -> str:
    """One task: RS, the FeatureCollection as compact JSON, newline; `geometry`: the group's
    geometry as GeoJSON, when already known; `fragments`: the objects' XML, when written."""
    osc = osmchange_xml(ChangeSet((group,)), fragments)
    decision = group.decision
    main = group.main
    osm_key = f"{main.type}/{main.id}" if group.action != CREATE else None
    properties: dict[str, Any] = {
        "id": f"{group.action}/{group.source_id}",
        "source_id": group.source_id,
        "action": group.action,
        "osm_id": osm_key,
        "osm_url": OSM_BROWSE + osm_key if osm_key else None,
        **flat_tags(decision),
        "reason": decision.reason,
        "instructions": instructions,
    }
    if decision.extra_osm and group.action != CREATE:  # the ways of a street
        properties["osm_ids"] = ";".join(f"{o.type}/{o.id}" for o in group.objects)
    collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature",
                      "geometry": mapping(group.geometry) if geometry is None else geometry,
                      "properties": properties}],
        "cooperativeWork": {
            "meta": COOPERATIVE_META,
            "file": {"type": "xml", "format": "osc", "encoding": "base64",
                     "content": base64.b64encode(osc.encode("utf-8")).decode("ascii")},
        },
    }
    # ASCII JSON: no U+2028 or U+0085 from a tag value can break a line for a line reader.
    return RECORD_SEPARATOR + json.dumps(collection, separators=(",", ":")) + "\n"


def maproulette_geojsonl(changes: ChangeSet, instructions: str,
                         fragments: XmlFragments | None = None) -> str:
    """Every create and modify of `changes` as one task, in decision order."""
    geometries = geometries_json([group.geometry for group in changes.groups])
    return "".join(task_line(group, instructions, geometry, fragments)
                   for group, geometry in zip(changes.groups, geometries, strict=True))


def challenge_json(profile: Profile, tags: Mapping[str, str], instructions: str,
                   tasks: int) -> str:
    """Challenge settings to paste into MapRoulette's form: name, instruction, check-in
    comment and source (MapRoulette's names for the changeset comment and source)."""
    data = {
        "name": f"{profile.description or profile.name}"[:100],
        "description": profile.description or profile.name,
        "instruction": instructions,
        "checkinComment": tags.get("comment", ""),
        "checkinSource": tags.get("source", ""),
        "tasks": tasks,
        "cooperativeType": COOPERATIVE_META["type"],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def read_tasks(text: str) -> Iterator[dict[str, Any]]:
    """Parse a line-by-line GeoJSON file back into its FeatureCollections (for checks)."""
    if not text.strip():  # no task (e.g. every decision is a review)
        return
    for number, line in enumerate(text.rstrip("\n").split("\n"), 1):
        if not line.startswith(RECORD_SEPARATOR):
            raise ValueError(f"line {number}: no RFC 7464 record separator")
        yield json.loads(line[1:])


def task_change(task: Mapping[str, Any]) -> str:
    """The osmChange text a task carries."""
    file = task["cooperativeWork"]["file"]
    return base64.b64decode(file["content"]).decode("utf-8")


__all__ = ["challenge_json", "default_instructions", "flat_tags", "maproulette_geojsonl",
           "read_tasks", "task_change", "task_line"]
