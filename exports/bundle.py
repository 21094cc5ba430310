"""Every output of the export stage, built and validated in memory before anything is written.

`build_exports` is the stage's pure core: decisions in, file contents out (`review.geojson`,
the reviewers' view of the same decisions, comes from `exports.review`). Validation happens
here (references, versions, pyosmium read-back of the change files, chunks holding every change
once), so a failure leaves earlier outputs intact. Chunks and MapRoulette tasks are assembled
from the very object fragments of the validated change files (`XmlFragments`), so reading each
of them back through pyosmium again would check the same text twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from conflation.decisions import Decision, count_decisions
from exports.changeset import changeset_tags
from exports.chunks import Chunk, chunk_files, read_chunk_areas, split_into_chunks
from exports.import_plan import PlanFacts, import_plan_files
from exports.maproulette import challenge_json, default_instructions, maproulette_geojsonl
from exports.osmchange import (
    ChangeSet,
    XmlFragments,
    build_changes,
    check_references,
    josm_xml,
    osmchange_xml,
    validate_with_osmium,
)
from exports.screening import refuse_unwritable
from pipeline.errors import ExportError
from pipeline.osm_model import OsmData
from pipeline.profile import Profile

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    decisions: list[Decision]  # after refusing unwritable changes
    changes: ChangeSet
    chunks: list[Chunk]
    tags: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """For report.json."""
        return {"changeset_tags": self.tags, "chunks": len(self.chunks),
                "chunk_elements": [c.elements for c in self.chunks],
                "maproulette_tasks": len(self.changes.groups),
                "objects": self.changes.counts()}


def known_osm_objects(osm: OsmData) -> set[tuple[str, int]]:
    """Objects that exist in the OSM input: candidates and the nodes of their ways."""
    known = {(e.type, e.id) for e in osm.elements}
    known.update(("node", n) for n in osm.node_locations)
    known.update(("node", n) for element in osm.elements for n in element.nodes)
    return known


def build_exports(profile: Profile, source_info: dict[str, object], osm: OsmData,
                  decisions: Sequence[Decision]) -> ExportResult:
    screened = refuse_unwritable(decisions)
    refused = sum(1 for before, after in zip(decisions, screened, strict=True) if before is not after)
    if refused:
        log.warning("export: %d change(s) refused as unwritable (see review.geojson reasons)",
                    refused)
    decisions = screened
    changes = build_changes(decisions)
    check_references(changes, known_osm_objects(osm))
    tags = changeset_tags(profile)
    cs = profile.changeset
    areas = (read_chunk_areas(cs.chunk_layer, cs.chunk_layer_name, cs.chunk_field)
             if cs.chunk_layer else [])
    chunks = split_into_chunks(changes, cs.chunk_size, areas)
    result = ExportResult(decisions, changes, chunks, tags)
    files = result.files
    fragments = XmlFragments()
    files["changes.osc"] = osmchange_xml(changes, fragments)
    files["changes.osm"] = josm_xml(changes, tags, fragments)
    validate_with_osmium(files["changes.osc"], ".osc", changes)
    validate_with_osmium(files["changes.osm"], ".osm", changes)
    _check_chunks(chunks, changes, cs.chunk_size)
    files.update(chunk_files(chunks, tags, fragments))
    instructions = cs.instructions or default_instructions(profile)
    files["maproulette.geojsonl"] = maproulette_geojsonl(changes, instructions, fragments)
    files["maproulette-challenge.json"] = challenge_json(profile, tags, instructions,
                                                         len(changes.groups))
    files["changeset-tags.json"] = json.dumps(tags, ensure_ascii=False, indent=2) + "\n"
    facts = PlanFacts(
        counts=count_decisions(decisions), objects=changes.counts(), chunks=len(chunks),
        chunk_max_elements=cs.chunk_size, tasks=len(changes.groups), changeset_tags=tags,
        source_info=source_info, osm_origin=osm.coverage_origin, osm_meta=dict(osm.meta),
        osm_candidates=len(osm.elements))
    files.update(import_plan_files(profile, facts))
    return result


def _check_chunks(chunks: Sequence[Chunk], changes: ChangeSet, limit: int) -> None:
    """Each chunk fits the limit and refers only to what it or OSM holds; together the chunks
    hold every change once."""
    seen: list[tuple[str, int]] = []
    for chunk in chunks:
        if chunk.elements > limit and len(chunk.changes.groups) > 1:
            raise ExportError(f"chunk {chunk.stem} holds {chunk.elements} elements, more than "
                              f"changeset.chunk_size {limit}")
        check_references(chunk.changes)
        seen += [o.key for o in chunk.changes.objects]
    if sorted(seen) != sorted(o.key for o in changes.objects):
        raise ExportError("the chunks do not hold every change exactly once")
