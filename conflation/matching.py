"""Conflation: one decision per source feature against the OSM candidates.

Order of work:
1. features that are unusable, outside the area the OSM data covers (we cannot know OSM lacks
   them), or rejected by a reviewer are `skip`;
2. matches forced by a reviewer (`match.decisions`) are kept;
3. ref matches (the dataset's ref key on an OSM object) are decisive;
4. the rest are scored against candidates found through a spatial index in a metric CRS
   (`conflation.candidates`, `conflation.scoring`) and assigned one to one, globally
   (`conflation.assignment`); doubtful pairs go to review naming both sides;
5. OSM objects carrying a ref the source no longer has are `missing`.
OSM objects carrying this dataset's ref are never given to another feature by score.

Steps 1–4 are the matching method; `METHODS` holds them by the kind of source (`source.geometry`:
"file", matched by place, this module; "none", a table matched by name, `conflation.attributes`).
The settings are the profile's (`pipeline.kernel.settings.Profile`), read as they are; what a run
knows beyond them (reviewers' verdicts, the layer's precision) comes as `RunFacts`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import shapely

from conflation.assignment import Assignment, assign
from conflation.attributes import conflate_by_name
from conflation.candidates import Pairs, find_candidates, geometry_kinds
from conflation.duplicates import SAME_POSITION, duplicate_groups
from conflation.facts import RunFacts
from conflation.feedback import ACCEPT, CREATE_NEW, MATCH, REJECT
from conflation.metric import to_metric
from conflation.names import SAME_NAME
from conflation.policies import merge_tags
from conflation.scoring import MAIN_KEYS, Scored, radius_function, score_pairs
from pipeline.kernel.decisions import (
    CREATE,
    MISSING,
    MODIFY,
    REVIEW,
    SKIP,
    UNCHANGED,
    Candidate,
    Decision,
    SourceLike,
    and_more,
    as_review,
    because,
)
from pipeline.kernel.osm import OsmData, OsmElement, is_candidate
from pipeline.kernel.reasons import Reason, as_reason, reason
from pipeline.kernel.settings import MatchConfig, Profile


@dataclass(frozen=True)
class ProjectedOsm:
    """The OSM candidates in a metric CRS, with a spatial index over all of them: built once,
    possibly ahead of time (a run builds it while the layer is still being read)."""

    crs: str
    geometries: np.ndarray  # aligned with OsmData.elements
    by_key: dict[str, shapely.Geometry]
    tree: shapely.STRtree


def project_osm(osm: OsmData, metric_crs: str) -> ProjectedOsm:
    geometries = to_metric([e.geometry for e in osm.elements], metric_crs)
    return ProjectedOsm(metric_crs, geometries,
                        dict(zip((e.key for e in osm.elements), geometries.tolist(), strict=True)),
                        shapely.STRtree(geometries))


@dataclass
class _Run:
    """The working state of one conflation."""

    sources: Sequence[SourceLike]
    profile: Profile
    facts: RunFacts
    metric_crs: str
    metric: dict[int, shapely.Geometry] = field(default_factory=dict)  # source pos -> metric
    osm_metric: dict[str, shapely.Geometry] = field(default_factory=dict)
    decisions: dict[int, Decision] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)

    @property
    def match(self) -> MatchConfig:
        return self.profile.match


NO_FACTS = RunFacts()  # no reviewer's verdict, a precise layer


def conflate(sources: Sequence[SourceLike], osm: OsmData, metric_crs: str, profile: Profile,
             facts: RunFacts = NO_FACTS, projected: ProjectedOsm | None = None
             ) -> list[Decision]:
    """Decide, for every source feature, create / modify / unchanged / review / skip; add missing.
    `projected`: `project_osm(osm, …)` when already built (used if its CRS is `metric_crs`)."""
    method = METHODS[profile.source.geometry]
    decisions = method(sources, osm, metric_crs, profile, facts, projected)
    return finish(sources, decisions, osm, profile.match.ref, facts)


def conflate_by_place(sources: Sequence[SourceLike], osm: OsmData, metric_crs: str,
                      profile: Profile, facts: RunFacts, projected: ProjectedOsm | None
                      ) -> dict[int, Decision]:
    """The matching method of layers with geometries: steps 1 to 4 above."""
    run = _Run(sources, profile, facts, metric_crs)
    osm, related = _split_related(osm, profile)
    if related:
        projected = None  # built over every object, related ones included
    pending = _screen(run, osm)
    run.metric = dict(zip(pending, to_metric([sources[i].geometry for i in pending], metric_crs),
                          strict=True))
    if projected is None or projected.crs != metric_crs:
        projected = project_osm(osm, metric_crs)
    run.osm_metric = projected.by_key
    if any(v.action in (MATCH, CREATE_NEW) for v in facts.reviewer.values()):
        pending = _forced(run, pending, {e.key: e for e in osm.elements})
    pending = _by_ref(run, pending, osm.elements)
    ref_key = profile.match.ref
    free = [e for e in osm.elements
            if e.key not in run.taken and not (ref_key and ref_key in e.tags)]
    # Usually no OSM object is held by a ref or a reviewer: the index over all of them serves.
    _by_score(run, pending, free, projected if len(free) == len(osm.elements) else None)
    held = [e for e in osm.elements
            if e.key in run.taken or (ref_key and ref_key in e.tags)]
    _doubt_creates_beside_held(run, pending, held)
    _doubt_creates_beside_related(run, pending, related)
    _review_source_duplicates(run, pending)
    return run.decisions


def _split_related(osm: OsmData, profile: Profile) -> tuple[OsmData, list[OsmElement]]:
    """The candidates of the kinds matched, and the objects of related kinds (`osm.related`)."""
    if not profile.osm.related:
        return osm, []
    main: list[OsmElement] = []
    related: list[OsmElement] = []
    for element in osm.elements:
        wanted = is_candidate(element.tags, profile.osm.match, profile.match.ref)
        (main if wanted else related).append(element)
    if not related:
        return osm, []
    return replace(osm, elements=tuple(main)), related


def finish(sources: Sequence[SourceLike], decisions: Mapping[int, Decision], osm: OsmData,
           ref_key: str | None, facts: RunFacts) -> list[Decision]:
    """Decisions in source order, with reviewers' acceptances carried out, then `missing`."""
    ordered = [_after_reviewer(decisions[i], facts) for i in range(len(sources))]
    refs = {ref_value(f, ref_key) for f in sources}
    ordered.extend(_missing(osm.elements, ref_key, refs))
    return ordered


def _plain(feature: SourceLike, decision: str, why: Reason, **extra: object) -> Decision:
    return Decision(feature.source_id, decision, tags=dict(feature.tags),
                    geometry=feature.geometry, source_tags=dict(feature.tags), **because(why),
                    **extra)  # type: ignore[arg-type]


def _screen(run: _Run, osm: OsmData) -> list[int]:
    """Skip unusable, uncovered and reviewer-rejected features; return the others."""
    coverage = osm.coverage
    if coverage is not None:
        shapely.prepare(coverage)
    pending = []
    for i, feature in enumerate(run.sources):
        verdict = run.facts.reviewer.get(feature.source_id)
        if feature.skip_reason is not None or feature.geometry is None:
            run.decisions[i] = _plain(feature, SKIP, as_reason(feature.skip_reason)
                                      if feature.skip_reason else reason("no_geometry"))
        elif coverage is None or not coverage.covers(feature.geometry):
            run.decisions[i] = _plain(feature, SKIP, reason("outside_coverage",
                                                            area=osm.coverage_origin))
        elif verdict is not None and verdict.action == REJECT and verdict.osm_key is None:
            note = reason("note", text=verdict.note) if verdict.note else None
            run.decisions[i] = _plain(feature, SKIP, reason("rejected", by=verdict.by(),
                                                            note=note))
        else:
            pending.append(i)
    return pending


def _forced(run: _Run, pending: list[int], by_key: Mapping[str, OsmElement]) -> list[int]:
    """Matches and creates decided by a reviewer on an earlier run."""
    rest = []
    for i in pending:
        feature = run.sources[i]
        verdict = run.facts.reviewer.get(feature.source_id)
        if verdict is None or verdict.action not in (MATCH, CREATE_NEW):
            rest.append(i)
            continue
        if verdict.action == CREATE_NEW:
            run.decisions[i] = _plain(feature, CREATE, reason("forced_create", by=verdict.by()))
            continue
        assert verdict.osm_key is not None
        element = by_key.get(verdict.osm_key)
        if element is None or verdict.osm_key in run.taken:
            code = "forced_absent" if element is None else "forced_twice"
            run.decisions[i] = _plain(feature, REVIEW, reason(code, osm_id=verdict.osm_key,
                                                              by=verdict.by()))
            continue
        run.taken.add(element.key)
        run.decisions[i] = _matched(run, i, element, reason("basis_reviewer", by=verdict.by()))
    return rest


def ref_value(feature: SourceLike, ref_key: str | None) -> str:
    if ref_key and ref_key in feature.tags:
        return feature.tags[ref_key]
    return feature.source_id


def _by_ref(run: _Run, pending: list[int], elements: Sequence[OsmElement]) -> list[int]:
    """The dataset's ref on an OSM object is decisive."""
    ref_key = run.match.ref
    if not ref_key:
        return pending
    index: dict[str, list[OsmElement]] = defaultdict(list)
    for element in elements:
        if ref_key in element.tags and element.key not in run.taken:
            for value in ref_values(element, ref_key):
                index[value].append(element)
    rest = []
    for i in pending:
        feature = run.sources[i]
        value = ref_value(feature, ref_key)
        owners = index.get(value, [])
        if not owners:
            rest.append(i)
        elif len(owners) == 1:
            run.taken.add(owners[0].key)
            run.decisions[i] = _matched(run, i, owners[0], reason("basis_ref", key=ref_key))
        else:
            run.taken.update(e.key for e in owners)
            cands = tuple(Candidate(e.key, _distance(run, i, e), 1.0) for e in owners)
            run.decisions[i] = _plain(
                feature, REVIEW, reason("ref_ambiguous", key=ref_key, value=value,
                                        osm_ids=[e.key for e in owners]), candidates=cands)
    return rest


def _distance(run: _Run, i: int, element: OsmElement) -> float:
    return float(shapely.distance(run.metric[i], run.osm_metric[element.key]))


def _by_score(run: _Run, pending: list[int], free: list[OsmElement],
              every: ProjectedOsm | None) -> None:
    """`every`: the projection of every OSM candidate, when `free` is all of them."""
    settings = run.match
    src_geoms = np.array([run.metric[i] for i in pending] + [None], dtype=object)[:-1]
    if every is not None:
        osm_geoms, tree = every.geometries, every.tree
    else:
        osm_geoms = np.array([run.osm_metric[e.key] for e in free] + [None], dtype=object)[:-1]
        tree = None
    src_tags = [run.sources[i].tags for i in pending]
    osm_tags = [e.tags for e in free]
    radius_of, search = radius_function(src_tags, geometry_kinds(osm_geoms), settings.distance,
                                        settings.radii)
    pairs = find_candidates(src_geoms, osm_geoms, search, radius_of, tree, settings.distance)
    pairs = _without_rejected(run, pairs, pending, free)
    scored = score_pairs(pairs, src_tags, osm_tags, settings.labels, near=settings.distance)
    eligible = np.flatnonzero(scored.score >= settings.review_threshold)
    assignment = assign(pairs.source[eligible], pairs.osm[eligible], scored.score[eligible],
                        settings.review_margin)
    outcome = _Outcome(run, pending, free, pairs, scored, eligible, assignment)
    by_source: dict[int, list[int]] = defaultdict(list)
    source_of = outcome.source_of
    for p in np.argsort(-scored.score, kind="stable").tolist():
        by_source[source_of[p]].append(p)
    for s, i in enumerate(pending):
        run.decisions[i] = outcome.decide(s, by_source.get(s, []))


def _doubt_creates_beside_held(run: _Run, pending: list[int], held: list[OsmElement]) -> None:
    """A create that fits an object another feature already holds (by ref or a reviewer's match)
    goes to review, as it did on the run that matched that object: new object or duplicate?
    Without this, applying a run's changes and running again would turn its doubts into creates.
    """
    creates = [i for i in pending if run.decisions[i].decision == CREATE]
    if not creates or not held:
        return
    settings = run.match
    pairs, scored = _pairs_with(run, creates, held, [run.osm_metric[e.key] for e in held],
                                _as_before_import(run, held))
    for s, p in _best_pair_of_each_source(pairs, scored).items():
        score = float(scored.score[p])
        if score < settings.match_threshold:
            continue
        i, element = creates[s], held[int(pairs.osm[p])]
        owner = element.tags.get(settings.ref or "", "") or reason("another_source_feature")
        run.decisions[i] = replace(
            run.decisions[i], decision=REVIEW, proposed=CREATE, **because(reason(
                "held_by_other", osm_id=element.key, distance=float(pairs.distance[p]),
                score=score, owner=owner)))


def _doubt_creates_beside_related(run: _Run, pending: list[int],
                                  related: list[OsmElement]) -> None:
    """A create with an object of a related kind (`osm.related`: a garden for a park) of the
    same name nearby goes to review: the same object mapped as another kind?"""
    creates = [i for i in pending if run.decisions[i].decision == CREATE]
    if not creates or not related:
        return
    metric = to_metric([e.geometry for e in related], run.metric_crs)
    pairs, scored = _pairs_with(run, creates, related, list(metric))
    same_name = np.nan_to_num(scored.name, nan=0.0) >= SAME_NAME
    for s, p in _best_pair_of_each_source(pairs.subset(same_name), _subset(scored, same_name)
                                          ).items():
        i, element = creates[s], related[int(pairs.osm[same_name][p])]
        run.decisions[i] = replace(
            run.decisions[i], decision=REVIEW, proposed=CREATE, **because(reason(
                "related_same_name", osm_id=element.key, kind=_kind(element.tags),
                name=_label(element.tags, run.match.labels),
                distance=float(pairs.distance[same_name][p]))))


def _review_source_duplicates(run: _Run, pending: list[int]) -> None:
    """Features of the layer that are one object listed twice go to review together."""
    settings = run.match
    groups = duplicate_groups(pending, [run.metric[i] for i in pending],
                              [run.sources[i].tags for i in pending], settings.duplicates,
                              settings.labels)
    for group in groups:
        ids = [str(run.sources[i].source_id) for i in group]
        gap = max(float(shapely.distance(run.metric[group[0]], run.metric[i])) for i in group)
        for i in group:
            decision = run.decisions[i]
            if decision.decision == SKIP:
                continue
            rest = [x for x in ids if x != decision.source_id]
            where = (reason("same_position") if gap <= SAME_POSITION
                     else reason("within_gap", gap=gap))
            why = reason("source_duplicates", ids=ids[:5],
                         ids_more=reason("ellipsis") if len(ids) > 5 else None, where=where,
                         others=rest[:5], others_more=and_more(len(rest) - 5))
            run.decisions[i] = as_review(decision, why)


def _as_before_import(run: _Run, held: Sequence[OsmElement]) -> list[Mapping[str, str]]:
    """The tags of objects held by ref without the labels their owner gave them: an address
    added to a building by the run that matched it must not make a second address beside it
    look like another object now, when it looked like the same one then."""
    ref_key = run.match.ref
    labels = run.match.labels
    owners = {ref_value(f, ref_key): f.tags for f in run.sources} if ref_key else {}
    result: list[Mapping[str, str]] = []
    for element in held:
        values = ref_values(element, ref_key) if ref_key else []
        owner = owners.get(values[0], {}) if len(values) == 1 else {}
        result.append({k: v for k, v in element.tags.items()
                       if not (k in labels and owner.get(k) == v)})
    return result


def _pairs_with(run: _Run, sources: list[int], elements: Sequence[OsmElement],
                metric: list[shapely.Geometry],
                osm_tags: Sequence[Mapping[str, str]] | None = None) -> tuple[Pairs, Scored]:
    """Candidate pairs and their scores between some source features and some OSM objects
    (scored with `osm_tags` instead of theirs, when given)."""
    settings = run.match
    src_tags = [run.sources[i].tags for i in sources]
    osm_geoms = np.array([*metric, None], dtype=object)[:-1]
    radius_of, search = radius_function(src_tags, geometry_kinds(osm_geoms), settings.distance,
                                        settings.radii)
    src_geoms = np.array([run.metric[i] for i in sources] + [None], dtype=object)[:-1]
    pairs = find_candidates(src_geoms, osm_geoms, search, radius_of, near=settings.distance)
    tags = osm_tags if osm_tags is not None else [e.tags for e in elements]
    scored = score_pairs(pairs, src_tags, tags, settings.labels, near=settings.distance)
    return pairs, scored


def _best_pair_of_each_source(pairs: Pairs, scored: Scored) -> dict[int, int]:
    best: dict[int, int] = {}
    for p in np.argsort(-scored.score, kind="stable").tolist():
        best.setdefault(int(pairs.source[p]), p)
    return best


def _subset(scored: Scored, keep: np.ndarray) -> Scored:
    return Scored(scored.score[keep], scored.name[keep], scored.tags[keep])


def _without_rejected(run: _Run, pairs: Pairs, pending: list[int],
                      free: list[OsmElement]) -> Pairs:
    banned = {(v.source_id, v.osm_key) for v in run.facts.reviewer.values()
              if v.action == REJECT and v.osm_key}
    if not banned:
        return pairs
    keep = np.array([(run.sources[pending[s]].source_id, free[o].key) not in banned
                     for s, o in zip(pairs.source.tolist(), pairs.osm.tolist(), strict=True)],
                    dtype=bool)
    return pairs.subset(keep)


@dataclass
class _Outcome:
    """Turns scored, assigned pairs into one decision per source feature."""

    run: _Run
    pending: list[int]
    free: list[OsmElement]
    pairs: Pairs
    scored: Scored
    eligible: np.ndarray
    assignment: Assignment
    # The arrays above as Python lists: reading numpy arrays one element at a time is slow.
    source_of: list[int] = field(init=False)
    osm_of: list[int] = field(init=False)
    distance: list[float] = field(init=False)
    score: list[float] = field(init=False)
    owners: dict[int, int] | None = field(init=False, default=None)  # OSM pos -> source pos

    def __post_init__(self) -> None:
        self.source_of = self.pairs.source.tolist()
        self.osm_of = self.pairs.osm.tolist()
        self.distance = self.pairs.distance.tolist()
        self.score = self.scored.score.tolist()

    def decide(self, s: int, ranked: list[int]) -> Decision:
        run, i = self.run, self.pending[s]
        feature = run.sources[i]
        free, osm_of, distance, score = self.free, self.osm_of, self.distance, self.score
        candidates = tuple(Candidate(free[osm_of[p]].key, distance[p], score[p])
                           for p in ranked[:5])
        rivals = self.assignment.rivals.get(s, [])
        chosen = self.assignment.chosen.get(s)
        if chosen is not None:
            return self._assigned(s, int(self.eligible[chosen]), candidates)
        if rivals:
            p = int(self.eligible[rivals[0].pair])
            return _plain(feature, REVIEW, reason(
                "rival_source", pair=self._pair(p), source=self._source_of(p),
                mine=self._score_of_rival(s, p), theirs=float(self.scored.score[p])),
                candidates=candidates, proposed=MODIFY)
        return self._unmatched(s, ranked, candidates)

    def _assigned(self, s: int, p: int, candidates: tuple[Candidate, ...]) -> Decision:
        run, i = self.run, self.pending[s]
        element = self.free[self.osm_of[p]]
        score = self.score[p]
        matched = _matched(run, i, element, reason("basis_score", score=score, pair=self._pair(p)),
                           candidates, self.distance[p])
        rivals = self.assignment.rivals.get(s, [])
        if rivals:
            q = int(self.eligible[rivals[0].pair])
            other_score = float(self.scored.score[q])
            if rivals[0].kind == "osm":
                why = reason("two_osm_fit", pair=self._pair(p), score=score, other=self._pair(q),
                             other_score=other_score)
            else:
                why = reason("also_wanted", pair=self._pair(p), score=score,
                             source=self._source_of(q), other_score=other_score)
            return as_review(matched, why)
        if score < run.match.match_threshold:
            return as_review(matched, reason("uncertain", score=score, pair=self._pair(p),
                                             threshold=run.match.match_threshold))
        return matched

    def _unmatched(self, s: int, ranked: list[int], candidates: tuple[Candidate, ...]) -> Decision:
        feature = self.run.sources[self.pending[s]]
        if not ranked:
            return _low_precision(_plain(
                feature, CREATE, reason("none_within", distance=self.run.match.distance)),
                self.run.facts)
        best = ranked[0]
        score = float(self.scored.score[best])
        if score >= self.run.match.match_threshold:
            # Another feature won this object, but this one fits it well too: a duplicate in
            # the source, or a new object beside it? A person says.
            return _plain(feature, REVIEW, reason("taken_by_other", pair=self._pair(best),
                                                  score=score, owner=self._owner_of(best)),
                          candidates=candidates, proposed=CREATE)
        if score >= self.run.match.review_threshold:
            why = reason("closest_taken", pair=self._pair(best), owner=self._owner_of(best))
        else:
            why = reason("no_fit", pair=self._pair(best), score=score)
        decision = _plain(feature, CREATE, why, candidates=candidates)
        return _low_precision(decision, self.run.facts)

    def _pair(self, p: int) -> Reason:
        """'node/1 at 4.2 m, name 'X' vs 'Y' (similarity 0.93)'."""
        element = self.free[self.osm_of[p]]
        feature = self.run.sources[self.pending[self.source_of[p]]]
        sim = float(self.scored.name[p])
        keys = self.run.match.labels
        name = None if math.isnan(sim) else reason(
            "pair_name", osm=_label(element.tags, keys), source=_label(feature.tags, keys),
            similarity=sim)
        kind = reason("pair_kind", osm=_kind(element.tags), source=_kind(feature.tags)) if (
            self.scored.tags[p] < 1) else None
        return reason("pair", osm_id=element.key, distance=self.distance[p], name=name, kind=kind)

    def _source_of(self, p: int) -> str:
        return self.run.sources[self.pending[int(self.pairs.source[p])]].source_id

    def _owner_of(self, p: int) -> str | Reason:
        if self.owners is None:  # the first source, in assignment order, holding each object
            self.owners = {}
            for s, q in self.assignment.chosen.items():
                self.owners.setdefault(self.osm_of[int(self.eligible[q])], s)
        owner = self.owners.get(self.osm_of[p])
        return reason("another") if owner is None else self.run.sources[
            self.pending[owner]].source_id

    def _score_of_rival(self, s: int, p: int) -> float:
        o = int(self.pairs.osm[p])
        mine = np.flatnonzero((self.pairs.source == s) & (self.pairs.osm == o))
        return float(self.scored.score[mine[0]]) if len(mine) else 0.0


def _label(tags: Mapping[str, str], keys: Sequence[str]) -> str:
    return " ".join(tags[k] for k in keys if tags.get(k))


def _kind(tags: Mapping[str, str]) -> list[str]:
    """The main tags of an object (`amenity=bench`), what says which kind it is."""
    return [f"{k}={tags[k]}" for k in MAIN_KEYS if k in tags]


def _matched(
    run: _Run,
    i: int,
    element: OsmElement,
    basis: Reason,
    candidates: tuple[Candidate, ...] = (),
    distance: float | None = None,
) -> Decision:
    settings, feature = run.match, run.sources[i]
    if distance is None:
        distance = _distance(run, i, element)
    source_tags = dict(feature.tags)
    if settings.ref and settings.ref not in source_tags:
        source_tags[settings.ref] = feature.source_id  # so the next run matches by ref
    merge = merge_tags(element.tags, source_tags, settings)
    said = {"osm_id": element.key, "basis": basis}
    common: dict[str, Any] = {"tags": merge.tags, "geometry": feature.geometry, "osm": element,
              "distance_m": distance, "merge": merge, "candidates": candidates}
    if merge.conflicts:
        conflicts = [reason("conflict", key=k, osm=element.tags[k], source=source_tags[k])
                     for k in merge.conflicts]
        return Decision(feature.source_id, REVIEW, proposed=MODIFY, source_tags=dict(feature.tags),
                        **because(reason("matched_conflict", conflicts=conflicts, **said)),
                        **common)
    if merge.changes_anything:
        keys = sorted([*merge.new, *merge.changed, *merge.removed])
        decision = Decision(feature.source_id, MODIFY, source_tags=dict(feature.tags),
                            **because(reason("matched_sets", keys=keys, kept=merge.kept_reason(),
                                             **said)), **common)
        return _low_precision(decision, run.facts)
    return Decision(feature.source_id, UNCHANGED, source_tags=dict(feature.tags),
                    **because(reason("matched_same", kept=merge.kept_reason(), **said)), **common)


def _low_precision(decision: Decision, facts: RunFacts) -> Decision:
    if not facts.low_precision:
        return decision
    proposed = reason(f"do_{decision.decision}")
    return replace(decision, decision=REVIEW, proposed=decision.decision, **because(
        reason("low_precision", note=facts.precision_note, proposed=proposed), *decision.why))


def _after_reviewer(decision: Decision, facts: RunFacts) -> Decision:
    """A reviewer's `accept` carries out what the review proposed."""
    verdict = facts.reviewer.get(decision.source_id or "")
    if verdict is None or verdict.action != ACCEPT or decision.decision != REVIEW:
        return decision
    accepted = because(reason("accepted", by=verdict.by()), *decision.why)
    if decision.proposed == CREATE and decision.osm is None:
        return replace(decision, decision=CREATE, proposed=None, **accepted)
    if decision.osm is not None and decision.merge is not None:
        final = MODIFY if decision.merge.changes_anything else UNCHANGED
        return replace(decision, decision=final, proposed=None, **accepted)
    return decision


def _missing(
    elements: Sequence[OsmElement], ref_key: str | None, source_refs: set[str]
) -> list[Decision]:
    if not ref_key:
        return []
    gone = []
    for element in elements:
        if ref_key not in element.tags:
            continue
        values = ref_values(element, ref_key)
        if values and not any(v in source_refs for v in values):
            gone.append(Decision(
                None, MISSING, tags=dict(element.tags), geometry=element.geometry, osm=element,
                **because(reason("missing_from_source", osm_id=element.key, key=ref_key,
                                 values=";".join(values)))))
    return gone


def ref_values(element: OsmElement, ref_key: str) -> list[str]:
    """The values of `ref_key` on an OSM object (`a;b` holds two)."""
    return [v.strip() for v in element.tags.get(ref_key, "").split(";") if v.strip()]


# The matching methods, by the kind of source (`source.geometry`).
METHODS = {"file": conflate_by_place, "none": conflate_by_name}
