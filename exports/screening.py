"""The last check before writing: a create or modify that cannot be written as OSM data becomes a
`skip` (a create) or a `review` (a modify), with the reason, instead of failing the run or being
written wrong. Ingest refuses most of these earlier; this also covers decisions from elsewhere
(a reviewer's decisions file, a merged tag set). (Features at one same position are held for
review earlier, with the source's duplicates: `conflation.duplicates`.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from exports.osmchange import IdCounter, new_objects
from pipeline.kernel.decisions import CREATE, MODIFY, REVIEW, SKIP, Decision, because
from pipeline.kernel.reasons import Reason, reason
from pipeline.kernel.tag_rules import tags_problem

API_MAX_CHANGES = 10000  # elements one changeset may hold on the OSM API


def refuse_unwritable(decisions: Sequence[Decision]) -> list[Decision]:
    """The decisions with every unwritable create turned into `skip` and every unwritable modify
    into `review`, each with a reason that says what is wrong (the others are the same objects:
    `is` tells which were refused)."""
    result = []
    for decision in decisions:
        problem = writing_problem(decision)
        if problem is None:
            result.append(decision)
            continue
        if decision.decision == CREATE:
            result.append(replace(decision, decision=SKIP, proposed=None,
                                  **because(reason("unwritable_create", problem=problem))))
        else:
            result.append(replace(decision, decision=REVIEW, proposed=MODIFY,
                                  **because(reason("unwritable_modify", problem=problem))))
    return result


def writing_problem(decision: Decision) -> Reason | None:
    """Why a create or modify cannot be written, or None (also for other decisions)."""
    if decision.decision not in (CREATE, MODIFY):
        return None
    problem = tags_problem(decision.tags)
    if problem:
        return problem
    if decision.decision == MODIFY:
        osm = decision.osm
        if osm is None or osm.version < 1:
            return reason("version_unknown")
        for element, tags in zip(decision.extra_osm, decision.extra_tags, strict=True):
            problem = tags_problem(tags) or (
                reason("member_version_unknown", osm_id=element.key) if element.version < 1
                else None)
            if problem:
                return problem
        return None
    geometry = decision.geometry
    if geometry is None or geometry.is_empty:
        return reason("no_geometry")
    if not isinstance(geometry, (Point, LineString, Polygon, MultiPolygon)):
        return reason("no_single_form", type=geometry.geom_type)
    if isinstance(geometry, LineString) and len(set(geometry.coords)) < 2:
        return reason("short_line")
    count = len(new_objects(geometry, decision.tags, IdCounter()))
    if count > API_MAX_CHANGES:
        return reason("too_many_objects", count=count, max=API_MAX_CHANGES)
    return None

