"""Every output of the export stage, built and validated in memory before anything is written.

`build_exports` is the stage's pure core: decisions in, file contents out (`review.geojson`,
the reviewers' view of the same decisions, comes from `exports.review`). Checks happen here
(references, versions, chunks holding every change once), and the runner reads the change files
back through pyosmium (`pipeline.readback`) before anything is written, so a failure leaves
earlier outputs intact. Chunks and MapRoulette tasks are assembled from the very object
fragments of the change files (`XmlFragments`), so reading each of them back again would check
the same text twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from exports.changeset import changeset_tags, josm_changeset_tags
from exports.chunks import Area, Chunk, chunk_files, split_into_chunks
from exports.import_plan import PlanFacts, import_plan_files
from exports.maproulette import challenge_json, default_instructions, maproulette_geojsonl
from exports.osmchange import (
    ChangeSet,
    XmlFragments,
    build_changes,
    check_references,
    josm_xml,
    osmchange_xml,
)
from exports.screening import refuse_unwritable
from pipeline.kernel.decisions import Decision, count_decisions
from pipeline.kernel.errors import ExportError
from pipeline.kernel.osm import Key, OsmData
from pipeline.kernel.settings import Profile

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    decisions: list[Decision]  # after refusing unwritable changes
    changes: ChangeSet
    chunks: list[Chunk]
    tags: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def nothing_to_upload(self) -> bool:
        return not self.changes.groups

    def summary(self) -> dict[str, object]:
        """For report.json."""
        return {"nothing_to_upload": self.nothing_to_upload,
                "changeset_tags": self.tags, "chunks": len(self.chunks),
                "chunk_elements": [c.elements for c in self.chunks],
                "maproulette_tasks": len(self.changes.groups),
                "objects": self.changes.counts(),
                "unmodified_objects_in_josm_files": len(self.changes.context),
                "objects_absent_from_osm_data": len(self.changes.absent())}


def known_osm_objects(osm: OsmData) -> set[Key]:
    """Objects that exist in OSM: the candidates, what the data holds of the objects they refer
    to, and every object the data says they refer to (a relation's members outside an extract
    are in OSM all the same: the API keeps references whole)."""
    known = {(e.type, e.id) for e in osm.elements}
    known.update(osm.context)
    refers = [(e.nodes, e.members) for e in osm.elements if e.nodes or e.members]
    refers += [(r.nodes, r.members) for r in osm.context.values() if r.nodes or r.members]
    for nodes, members in refers:  # most candidates are nodes: they refer to nothing
        known.update(("node", n) for n in nodes)
        known.update((t, r) for t, r, _ in members)
    return known


def build_exports(profile: Profile, source_info: dict[str, object], osm: OsmData,
                  decisions: Sequence[Decision], areas: Sequence[Area] = ()) -> ExportResult:
    """`areas`: the polygons of `changeset.chunk_layer` that chunks are split by (none: a k-d
    split)."""
    screened = refuse_unwritable(decisions)
    refused = sum(1 for before, after in zip(decisions, screened, strict=True) if before is not after)
    if refused:
        log.warning("export: %d change(s) refused as unwritable (see review.geojson reasons)",
                    refused)
    decisions = screened
    changes = build_changes(decisions, osm.context)
    check_references(changes, known_osm_objects(osm))
    _log_absent(changes)
    tags = changeset_tags(profile)
    cs = profile.changeset
    chunks = split_into_chunks(changes, cs.chunk_size, list(areas))
    result = ExportResult(decisions, changes, chunks, tags)
    if result.nothing_to_upload:
        log.info("export: nothing to upload (no create or modify): no change file, chunk or "
                 "MapRoulette task is written")
    else:
        result.files.update(_upload_files(profile, changes, chunks, tags))
    facts = PlanFacts(
        counts=count_decisions(decisions), objects=changes.counts(), chunks=len(chunks),
        chunk_max_elements=cs.chunk_size, tasks=len(changes.groups), changeset_tags=tags,
        source_info=source_info, osm_origin=osm.coverage_origin, osm_meta=dict(osm.meta),
        osm_candidates=len(osm.elements))
    result.files.update(import_plan_files(profile, facts))
    return result


# Written only when there is something to upload; a run with nothing to upload commits a set
# without them (and `remove_stale_outputs` removes plain files of these names: a run folder of
# an older sig2osm, or one copied through its links).
UPLOAD_FILES = ("changes.osc", "changes.osm", "maproulette.geojsonl",
                "maproulette-challenge.json", "changeset-tags.json", "chunks/index.json")


def _upload_files(profile: Profile, changes: ChangeSet, chunks: Sequence[Chunk],
                  tags: dict[str, str]) -> dict[str, str]:
    """The change files, chunks, MapRoulette challenge and changeset tags, validated."""
    files: dict[str, str] = {}
    fragments = XmlFragments()
    josm_tags = josm_changeset_tags(tags)
    files["changes.osc"] = osmchange_xml(changes, fragments)
    files["changes.osm"] = josm_xml(changes, josm_tags, fragments)
    _check_chunks(chunks, changes, profile.changeset.chunk_size)
    files.update(chunk_files(chunks, tags, fragments, josm_tags))
    instructions = profile.changeset.instructions or default_instructions(profile)
    files["maproulette.geojsonl"] = maproulette_geojsonl(changes, instructions, fragments)
    files["maproulette-challenge.json"] = challenge_json(profile, tags, instructions,
                                                         len(changes.groups))
    files["changeset-tags.json"] = json.dumps(tags, ensure_ascii=False, indent=2) + "\n"
    return files


def _log_absent(changes: ChangeSet) -> None:
    absent = changes.absent()
    if absent:
        shown = ", ".join(f"{t}/{i}" for t, i in absent[:5])
        log.warning("export: %d object(s) that modified ways or relations refer to are not in "
                    "the OSM data (%s%s): JOSM shows those ways or relations incomplete; "
                    "download them in JOSM before uploading", len(absent), shown,
                    ", …" if len(absent) > 5 else "")


def _check_chunks(chunks: Sequence[Chunk], changes: ChangeSet, limit: int) -> None:
    """Each chunk fits the limit and refers only to what it or OSM holds; together the chunks
    hold every change once."""
    seen: list[Key] = []
    for chunk in chunks:
        if chunk.elements > limit and len(chunk.changes.groups) > 1:
            raise ExportError(f"chunk {chunk.stem} holds {chunk.elements} elements, more than "
                              f"changeset.chunk_size {limit}")
        check_references(chunk.changes)
        seen += [o.ident for o in chunk.changes.objects]
    if sorted(seen) != sorted(o.ident for o in changes.objects):
        raise ExportError("the chunks do not hold every change exactly once")
