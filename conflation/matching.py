"""Conflation: one decision per source feature against the OSM candidates.

Order of work: features outside the OSM data's area are `skip` (we cannot know OSM lacks them);
ref matches come first (the dataset's ref key on an OSM object is decisive); the rest are matched
by distance in a metric CRS, one to one and globally consistent (optimal assignment within each
connected group of candidate pairs); OSM objects carrying a ref the source no longer has are
`missing`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry.base import BaseGeometry

from conflation.decisions import (
    CREATE,
    MISSING,
    MODIFY,
    REVIEW,
    SKIP,
    UNCHANGED,
    Candidate,
    Decision,
    SourceLike,
)
from conflation.metric import to_metric
from conflation.policies import merge_tags
from pipeline.osm_model import OsmData, OsmElement


@dataclass(frozen=True)
class MatchSettings:
    """The profile's matching parameters, as conflation needs them."""

    distance: float = 30.0
    ref_key: str | None = None
    authoritative: tuple[str, ...] = ()
    policies: Mapping[str, str] = field(default_factory=dict)
    removable: tuple[str, ...] = ()
    low_precision: bool = False  # every create or modify goes to review (PDF-derived layers)
    ambiguity_margin_m: float = 3.0  # two candidates closer than this in distance → review


def conflate(
    sources: Sequence[SourceLike], osm: OsmData, metric_crs: str, settings: MatchSettings
) -> list[Decision]:
    """Decide, for every source feature, create / modify / unchanged / review / skip; add missing."""
    decisions: dict[int, Decision] = {}
    to_match: list[int] = []
    coverage = osm.coverage
    if coverage is not None:
        shapely.prepare(coverage)
    for i, feature in enumerate(sources):
        if feature.skip_reason is not None or feature.geometry is None:
            decisions[i] = Decision(feature.source_id, SKIP, feature.skip_reason or "no geometry",
                                    feature.tags, feature.geometry, source_tags=feature.tags)
        elif coverage is None or not coverage.covers(feature.geometry):
            decisions[i] = Decision(
                feature.source_id, SKIP,
                "outside the area the OSM data covers, so OSM may already have it "
                f"(area: {osm.coverage_origin})", feature.tags, feature.geometry,
                source_tags=feature.tags)
        else:
            to_match.append(i)

    by_ref = _index_by_ref(osm.elements, settings.ref_key)
    source_refs = {_ref_value(sources[i], settings.ref_key) for i in to_match}
    source_refs |= {_ref_value(f, settings.ref_key) for f in sources if f.skip_reason is not None}
    taken: set[str] = set()
    metric_osm = dict(zip((e.key for e in osm.elements),
                          to_metric([e.geometry for e in osm.elements], metric_crs), strict=True))

    unmatched: list[int] = []
    for i in to_match:
        feature = sources[i]
        owners = by_ref.get(_ref_value(feature, settings.ref_key), []) if settings.ref_key else []
        if not owners:
            unmatched.append(i)
            continue
        geometry = to_metric([feature.geometry], metric_crs)[0]
        dists = [float(geometry.distance(metric_osm[e.key])) for e in owners]
        if len(owners) > 1:
            names = ", ".join(e.key for e in owners)
            cands = tuple(Candidate(e.key, d, 1.0) for e, d in zip(owners, dists, strict=True))
            decisions[i] = Decision(feature.source_id, REVIEW,
                                    f"several OSM objects carry {settings.ref_key}="
                                    f"{_ref_value(feature, settings.ref_key)}: {names}",
                                    feature.tags, feature.geometry, candidates=cands,
                                    source_tags=feature.tags)
            taken.update(e.key for e in owners)
            continue
        owner = owners[0]
        taken.add(owner.key)
        decisions[i] = _matched(feature, owner, dists[0], f"same {settings.ref_key}", settings)

    # Objects that carry this dataset's ref belong to their own source feature (or are missing):
    # they are never given to another feature by distance.
    free = [e for e in osm.elements
            if e.key not in taken and not (settings.ref_key and settings.ref_key in e.tags)]
    decisions.update(_match_by_distance(sources, unmatched, free, metric_osm, metric_crs, settings))

    ordered = [decisions[i] for i in range(len(sources))]
    ordered.extend(_missing(osm.elements, settings.ref_key, source_refs))
    return ordered


def _ref_value(feature: SourceLike, ref_key: str | None) -> str:
    if ref_key and ref_key in feature.tags:
        return feature.tags[ref_key]
    return feature.source_id


def _index_by_ref(elements: Sequence[OsmElement], ref_key: str | None) -> dict[str, list[OsmElement]]:
    index: dict[str, list[OsmElement]] = defaultdict(list)
    if not ref_key:
        return index
    for element in elements:
        for value in element.tags.get(ref_key, "").split(";"):
            if value.strip():
                index[value.strip()].append(element)
    return index


def _match_by_distance(
    sources: Sequence[SourceLike],
    indices: list[int],
    free: list[OsmElement],
    metric_osm: Mapping[str, BaseGeometry],
    metric_crs: str,
    settings: MatchSettings,
) -> dict[int, Decision]:
    result: dict[int, Decision] = {}
    if not indices:
        return result
    source_geoms = to_metric([sources[i].geometry for i in indices], metric_crs)  # type: ignore[misc]
    pairs: list[tuple[int, int, float]] = []  # (source position, osm position, distance)
    if free:
        osm_geoms = [metric_osm[e.key] for e in free]
        tree = shapely.STRtree(osm_geoms)
        left, right = tree.query(source_geoms, predicate="dwithin", distance=settings.distance)
        for s, o in zip(left.tolist(), right.tolist(), strict=True):
            pairs.append((s, o, float(source_geoms[s].distance(osm_geoms[o]))))
    by_source: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for s, o, d in pairs:
        by_source[s].append((o, d))
    assignment = _assign(pairs, len(indices), len(free))
    wanted_by: dict[int, list[int]] = defaultdict(list)
    for s, cands in by_source.items():
        wanted_by[min(cands, key=lambda c: c[1])[0]].append(s)
    for s, i in enumerate(indices):
        feature = sources[i]
        cands = sorted(by_source.get(s, []), key=lambda c: c[1])
        candidates = tuple(Candidate(free[o].key, d, _distance_score(d, settings.distance))
                           for o, d in cands)
        if not cands:
            proposed = Decision(feature.source_id, CREATE,
                                f"no matching OSM object within {settings.distance:g} m",
                                feature.tags, feature.geometry, source_tags=feature.tags)
            result[i] = _low_precision(proposed, settings)
            continue
        if len(cands) > 1 and cands[1][1] - cands[0][1] < settings.ambiguity_margin_m:
            result[i] = Decision(
                feature.source_id, REVIEW,
                f"two OSM objects at similar distances: {free[cands[0][0]].key} "
                f"({cands[0][1]:.1f} m) and {free[cands[1][0]].key} ({cands[1][1]:.1f} m)",
                feature.tags, feature.geometry, distance_m=cands[0][1], candidates=candidates,
                proposed=MODIFY, source_tags=feature.tags)
            continue
        o = assignment.get(s)
        rivals = [sources[indices[r]].source_id for r in wanted_by.get(cands[0][0], []) if r != s]
        if o is None or rivals:
            nearest = free[cands[0][0]]
            others = ", ".join(rivals) if rivals else "another source feature"
            result[i] = Decision(
                feature.source_id, REVIEW,
                f"{nearest.key} ({cands[0][1]:.1f} m) is also the nearest OSM object for source "
                f"feature {others}", feature.tags, feature.geometry, distance_m=cands[0][1],
                candidates=candidates, source_tags=feature.tags)
            continue
        distance = dict(cands)[o]
        result[i] = _matched(feature, free[o], distance, f"nearest within {settings.distance:g} m",
                             settings, candidates)
    return result


def _assign(pairs: list[tuple[int, int, float]], n_source: int, n_osm: int) -> dict[int, int]:
    """Optimal one-to-one assignment (least total distance) within each connected group."""
    if not pairs:
        return {}
    rows = np.array([s for s, _, _ in pairs])
    cols = np.array([o for _, o, _ in pairs]) + n_source
    graph = csr_matrix((np.ones(len(pairs)), (rows, cols)), shape=(n_source + n_osm,) * 2)
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for pair in pairs:
        groups[labels[pair[0]]].append(pair)
    result: dict[int, int] = {}
    for group in groups.values():
        srcs = sorted({s for s, _, _ in group})
        osms = sorted({o for _, o, _ in group})
        big = 1e9
        cost = np.full((len(srcs), len(osms)), big)
        for s, o, d in group:
            cost[srcs.index(s), osms.index(o)] = d
        r, c = linear_sum_assignment(cost)
        for a, b in zip(r.tolist(), c.tolist(), strict=True):
            if cost[a, b] < big:
                result[srcs[a]] = osms[b]
    return result


def _distance_score(distance: float, radius: float) -> float:
    return max(0.0, 1.0 - distance / radius) if radius > 0 else 0.0


def _matched(
    feature: SourceLike,
    element: OsmElement,
    distance: float,
    why: str,
    settings: MatchSettings,
    candidates: tuple[Candidate, ...] = (),
) -> Decision:
    source_tags = dict(feature.tags)
    if settings.ref_key and settings.ref_key not in source_tags:
        source_tags[settings.ref_key] = feature.source_id  # so the next run matches by ref
    merge = merge_tags(element.tags, source_tags, settings.policies, settings.authoritative,
                       settings.removable)
    where = f"{element.key} ({why}, {distance:.1f} m)"
    if merge.conflicts:
        details = "; ".join(
            f"{k}: OSM '{element.tags[k]}', source '{source_tags[k]}'" for k in merge.conflicts)
        return Decision(feature.source_id, REVIEW, f"matched {where} but values differ: {details}",
                        merge.tags, feature.geometry, element, distance, merge, candidates,
                        MODIFY, feature.tags)
    if merge.changes_anything:
        keys = ", ".join(sorted([*merge.new, *merge.changed, *merge.removed]))
        decision = Decision(feature.source_id, MODIFY, f"matched {where}; sets {keys}",
                            merge.tags, feature.geometry, element, distance, merge, candidates,
                            source_tags=feature.tags)
        return _low_precision(decision, settings)
    return Decision(feature.source_id, UNCHANGED, f"matched {where}; OSM already has these tags",
                    merge.tags, feature.geometry, element, distance, merge, candidates,
                    source_tags=feature.tags)


def _low_precision(decision: Decision, settings: MatchSettings) -> Decision:
    if not settings.low_precision:
        return decision
    from dataclasses import replace

    return replace(decision, decision=REVIEW, proposed=decision.decision,
                   reason=f"low-precision source (e.g. a PDF map): proposed {decision.decision}, "
                          f"{decision.reason}")


def _missing(
    elements: Sequence[OsmElement], ref_key: str | None, source_refs: set[str]
) -> list[Decision]:
    if not ref_key:
        return []
    gone = []
    for element in elements:
        values = [v.strip() for v in element.tags.get(ref_key, "").split(";") if v.strip()]
        if values and not any(v in source_refs for v in values):
            gone.append(Decision(
                None, MISSING,
                f"{element.key} carries {ref_key}={';'.join(values)}, which the source no longer "
                "has; check on the ground before any deletion", dict(element.tags),
                element.geometry, element))
    return gone
