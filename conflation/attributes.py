"""Attribute-only sources: rows of a table without geometry matched to OSM ways by name.

A street-name table (an id, the full name, maybe a Breton name or a gender) has no geometry.
Each row is matched to the OSM ways of `osm.match` (e.g. highway=*) named like it inside
`match.area` (or, without it, the area the OSM data covers). OSM splits a street into many ways,
so a row matches a *street*: the ways of one name lying within `STREET_GAP_M` of each other.
One decision per row, in this order:

1. `skip`: unusable rows, rows a reviewer rejected, rows without a name, and every row when no
   area is known;
2. a street chosen by a reviewer (`match.decisions`: "way/123" takes that way's street);
3. ref: ways carrying `match.ref` = the row's id are its street (decisive), with the other ways of
   the same name around them (a street extended or split since the last run);
4. name: the same name after normalisation (case, accents, punctuation, abbreviations, word
   order) on exactly one street that no other row names → `modify` (every way whose tags change)
   or `unchanged`. The same name on two streets apart, one street named by two rows, or only a
   near name (similarity ≥ `NAME_REVIEW`: a typo, a missing word) → `review` naming them. Nothing
   → `skip`: a row without geometry cannot be created.

The name tag (the first of `match.labels`) only finds the street; it is never written, so OSM's
spelling stands. Decisions touching several ways carry the first in `osm` (a way the row changes,
if any) and the others in `extra_osm`, with their final tags in `extra_tags`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from rapidfuzz import fuzz, process
from shapely.geometry.base import BaseGeometry

from conflation.facts import RunFacts
from conflation.feedback import CREATE_NEW, MATCH, REJECT, ReviewerDecision
from conflation.metric import to_metric
from conflation.names import name_similarity, normalise_name
from conflation.policies import merge_tags
from pipeline.kernel.decisions import (
    MODIFY,
    REVIEW,
    SKIP,
    UNCHANGED,
    Candidate,
    Decision,
    SourceLike,
    TagMerge,
    and_more,
    as_review,
    because,
)
from pipeline.kernel.osm import OsmData, OsmElement
from pipeline.kernel.reasons import Reason, as_reason, reason
from pipeline.kernel.settings import MatchConfig, Profile

STREET_GAP_M = 200.0  # ways of one name closer than this are one street
NAME_REVIEW = 0.8  # a near name at least this similar is shown to a reviewer; below, no match
SUBSET = 0.85  # one name's words all in the other ("Boulevard Laënnec" in an official long form)
TYPO = 0.95  # similarity of one typo (conflation.names): a row this close to another row's
# street may be a duplicate of it; a less similar row names a street OSM does not have
_PREFILTER = 70  # rapidfuzz score (0–100) below which a name is not compared in full
_SHOWN = 5  # streets named in a reason or listed as candidates
# Words left out when names are compared as "the same name": French and English articles
# ("Place de Monténégro" is "Place du Monténégro"; "Rue de la Paix" is "Rue Paix").
ARTICLES = frozenset({"de", "du", "des", "la", "le", "les", "l", "d", "the", "of"})
_ORDINAL = re.compile(r"^(\d+)(?:e|eme|er|ere|re|nd|nde)$")


@dataclass(frozen=True)
class Street:
    """The OSM ways of one name that lie together: what a row of a street table matches."""

    name: str  # OSM's spelling (of the first way)
    ways: tuple[OsmElement, ...]  # sorted by id
    metric: BaseGeometry  # the ways' union in the metric CRS

    @property
    def key(self) -> str:
        return self.ways[0].key

    def describe(self) -> Reason:
        more = reason("more_ways", n=len(self.ways) - 1) if len(self.ways) > 1 else None
        return reason("street", name=self.name, osm_id=self.key, more=more)


@dataclass
class _NameRun:
    """The working state of one attribute-only conflation."""

    sources: Sequence[SourceLike]
    settings: MatchConfig
    facts: RunFacts
    streets: list[Street] = field(default_factory=list)
    by_name: dict[str, list[int]] = field(default_factory=dict)  # normalised name -> streets
    decisions: dict[int, Decision] = field(default_factory=dict)

    @property
    def name_key(self) -> str:
        keys = self.settings.labels
        return keys[0] if keys else "name"

    @property
    def ref_key(self) -> str | None:
        return self.settings.ref

    def verdict(self, feature: SourceLike) -> ReviewerDecision | None:
        return self.facts.reviewer.get(feature.source_id)


def match_area(osm: OsmData, area: Sequence[float] | None) -> BaseGeometry | None:
    """Where names are looked for: `match.area` within the area the OSM data covers."""
    box = shapely.box(*area) if area else None
    if box is None or osm.coverage is None:
        return box if box is not None else osm.coverage
    return shapely.intersection(box, osm.coverage)


def find_streets(elements: Sequence[OsmElement], name_key: str, area: BaseGeometry,
                 metric_crs: str) -> list[Street]:
    """Named ways and relations (never nodes: bus stops carry street names) inside `area`,
    grouped by name (but for articles, word order and ordinals) and nearness."""
    shapely.prepare(area)
    ways = sorted((e for e in elements if e.type != "node" and e.tags.get(name_key)
                   and area.intersects(e.geometry)), key=lambda e: (e.type, e.id))
    if not ways:
        return []
    # SciPy stays off the start-up path of a run: only tables of names need it.
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    names = [_core(normalise_name(e.tags[name_key])) for e in ways]
    metric = to_metric([e.geometry for e in ways], metric_crs)
    left, right = shapely.STRtree(metric).query(metric, predicate="dwithin",
                                                distance=STREET_GAP_M)
    same = np.array([names[a] == names[b] for a, b in zip(left.tolist(), right.tolist(),
                                                          strict=True)], dtype=bool)
    graph = csr_matrix((np.ones(int(same.sum())), (left[same], right[same])),
                       shape=(len(ways), len(ways)))
    _, labels = connected_components(graph, directed=False)
    members: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        members[label].append(i)
    streets = [Street(ways[group[0]].tags[name_key], tuple(ways[i] for i in group),
                      shapely.union_all(metric[group]))
               for group in sorted(members.values())]
    return streets


def conflate_by_name(sources: Sequence[SourceLike], osm: OsmData, metric_crs: str,
                     profile: Profile, facts: RunFacts, projected: object = None
                     ) -> dict[int, Decision]:
    """One decision per row (by position in `sources`); `conflation.matching.conflate` adds
    reviewer acceptances and `missing`. (`projected`: the matching methods' common signature;
    a table has no geometry to project.)"""
    run = _NameRun(sources, profile.match, facts)
    area = match_area(osm, profile.match.area or profile.osm.bounds)
    if area is None:
        for i, feature in enumerate(sources):
            run.decisions[i] = _plain(feature, SKIP, reason("no_street_area"))
        return run.decisions
    run.streets = find_streets(osm.elements, run.name_key, area, metric_crs)
    for s, street in enumerate(run.streets):  # each spelling of the street's ways finds it
        for name in {normalise_name(w.tags[run.name_key]) for w in street.ways}:
            run.by_name.setdefault(name, []).append(s)
    pending = _screen(run)
    pending = _forced(run, pending)
    pending = _by_ref(run, pending)
    _by_name(run, pending)
    return run.decisions


def _plain(feature: SourceLike, decision: str, why: Reason, **extra: object) -> Decision:
    return Decision(feature.source_id, decision, tags=dict(feature.tags), geometry=None,
                    source_tags=dict(feature.tags), **because(why),
                    **extra)  # type: ignore[arg-type]


def _screen(run: _NameRun) -> list[int]:
    pending = []
    for i, feature in enumerate(run.sources):
        verdict = run.verdict(feature)
        action = verdict.action if verdict else None
        if feature.skip_reason is not None:
            run.decisions[i] = _plain(feature, SKIP, as_reason(feature.skip_reason))
        elif not feature.tags.get(run.name_key):
            run.decisions[i] = _plain(feature, SKIP, reason("no_name", key=run.name_key))
        elif verdict is not None and action == REJECT and verdict.osm_key is None:
            run.decisions[i] = _plain(feature, SKIP, reason("rejected", by=verdict.by()))
        elif action == CREATE_NEW:
            run.decisions[i] = _plain(feature, SKIP, reason("create_without_geometry"))
        else:
            pending.append(i)
    return pending


def _street_of(run: _NameRun, osm_key: str) -> Street | None:
    for street in run.streets:
        if any(w.key == osm_key for w in street.ways):
            return street
    return None


def _forced(run: _NameRun, pending: list[int]) -> list[int]:
    rest = []
    for i in pending:
        feature = run.sources[i]
        verdict = run.verdict(feature)
        if verdict is None or verdict.action != MATCH:
            rest.append(i)
            continue
        key = str(verdict.osm_key)
        street = _street_of(run, key)
        if street is None:
            run.decisions[i] = _plain(feature, REVIEW, reason("forced_way_absent", osm_id=key,
                                                              by=verdict.by()))
        else:
            run.decisions[i] = street_decision(run, feature, street.ways, street.name,
                                               reason("basis_street_reviewer", by=verdict.by()))
    return rest


def _by_ref(run: _NameRun, pending: list[int]) -> list[int]:
    """Ways carrying the row's id in `match.ref`, with their streets' other ways."""
    if not run.ref_key:
        return pending
    owners: dict[str, set[int]] = defaultdict(set)  # ref value -> streets
    for s, street in enumerate(run.streets):
        for way in street.ways:
            for value in way.tags.get(run.ref_key, "").split(";"):
                if value.strip():
                    owners[value.strip()].add(s)
    rest = []
    for i in pending:
        feature = run.sources[i]
        value = feature.tags.get(run.ref_key) or feature.source_id
        found = sorted(owners.get(value, ()))
        if not found:
            rest.append(i)
            continue
        ways = tuple(w for s in found for w in run.streets[s].ways)
        run.decisions[i] = street_decision(run, feature, ways, run.streets[found[0]].name,
                                           reason("basis_ref", key=run.ref_key))
    return rest


def _by_name(run: _NameRun, pending: list[int]) -> None:
    ranked = {i: _ranked(run, i) for i in pending}
    claims: dict[int, list[int]] = defaultdict(list)  # street -> rows naming it exactly
    for i, options in ranked.items():
        exact = [s for sim, s in options if sim >= 1.0]
        if len(exact) == 1:
            claims[exact[0]].append(i)
    for i, options in ranked.items():
        run.decisions[i] = _name_decision(run, i, options, claims)


def _ranked(run: _NameRun, i: int) -> list[tuple[float, int]]:
    """(similarity, street) pairs at or above `NAME_REVIEW`, best first; reviewer-rejected
    streets left out."""
    feature = run.sources[i]
    wanted = normalise_name(feature.tags[run.name_key])
    names = list(run.by_name)
    found = {wanted} if wanted in run.by_name else set()
    for scorer in (fuzz.ratio, fuzz.token_set_ratio):
        found.update(n for n, _, _ in process.extract(wanted, names, scorer=scorer, limit=10,
                                                      score_cutoff=_PREFILTER))
    verdict = run.verdict(feature)
    banned = verdict.osm_key if verdict is not None and verdict.action == REJECT else None
    best: dict[int, float] = {}  # street -> its best similarity over its spellings
    for name in found:
        sim = _similarity(name, wanted)
        if sim < NAME_REVIEW:
            continue
        for s in run.by_name[name]:
            if banned is None or all(w.key != banned for w in run.streets[s].ways):
                best[s] = max(sim, best.get(s, 0.0))
    return sorted(((sim, s) for s, sim in best.items()),
                  key=lambda o: (-o[0], run.streets[o[1]].key))


def _core(normalised: str) -> str:
    """A normalised name without articles, ordinals as "87e", its words sorted: equal cores are
    the same name ("Rue de la 87ème Division" is "Rue 87e Division")."""
    words = (_ORDINAL.sub(r"\1e", w) for w in normalised.split() if w not in ARTICLES)
    return " ".join(sorted(words))


def _similarity(a: str, b: str) -> float:
    """1 for the same name (but for articles and word order), else `name_similarity`, raised to
    `SUBSET` when every word of one (at least two, articles aside) is in the other."""
    x, y = _core(a).split(), _core(b).split()
    if x == y:
        return 1.0
    sim = name_similarity(a, b)
    short, long_ = sorted((set(x), set(y)), key=len)
    if len(short) >= 2 and short <= long_:
        sim = max(sim, SUBSET)
    return sim


def _name_decision(run: _NameRun, i: int, options: list[tuple[float, int]],
                   claims: Mapping[int, list[int]]) -> Decision:
    feature = run.sources[i]
    name = feature.tags[run.name_key]
    candidates = tuple(Candidate(run.streets[s].key, 0.0, sim) for sim, s in options[:_SHOWN])
    if not options:
        return _plain(feature, SKIP, reason("no_street", name=name))
    exact = [s for sim, s in options if sim >= 1.0]
    if len(exact) > 1:  # one street with a gap, or namesakes: accept takes them all
        gap = float(shapely.distance(run.streets[exact[0]].metric, run.streets[exact[1]].metric))
        ways = tuple(w for s in exact for w in run.streets[s].ways)
        whole = street_decision(run, feature, ways, name, reason("basis_same_name"), candidates)
        return as_review(whole, reason("street_groups", n=len(exact), name=name, gap=gap,
                                       **_listing(run, exact)))
    best_sim, best = options[0]
    street = run.streets[best]
    others = [run.sources[j].source_id for j in claims.get(best, []) if j != i]
    if exact and others:
        return _plain(feature, REVIEW, reason("rows_same_street", rows=[feature.source_id, *others],
                                              street=street.describe()),
                      candidates=candidates, proposed=MODIFY)
    if exact:
        return street_decision(run, feature, street.ways, street.name, reason("basis_same_name"),
                               candidates)
    if claims.get(best):
        closest = reason("closest_street_taken", street=street.describe(), similarity=best_sim,
                         owner=run.sources[claims[best][0]].source_id)
        if best_sim < TYPO:  # another row names that street exactly: this one is elsewhere
            return _plain(feature, SKIP, reason("no_street_closest_taken", name=name,
                                                closest=closest), candidates=candidates)
        return _plain(feature, REVIEW, reason("street_typo", name=name, closest=closest),
                      candidates=candidates, proposed=MODIFY)
    margin = run.settings.review_margin
    rivals = [s for sim, s in options[1:] if best_sim - sim < margin]
    also = reason("also_streets", **_listing(run, rivals)) if rivals else None
    why = reason("near_street_name", name=name, street=street.describe(), similarity=best_sim,
                 also=also)
    matched = street_decision(run, feature, street.ways, street.name, reason("basis_near_name"),
                              candidates)
    return as_review(matched, why)


def _listing(run: _NameRun, streets: Sequence[int]) -> dict[str, object]:
    """The first streets described, and how many more there are (`streets`, `more`)."""
    return {"streets": [run.streets[s].describe() for s in streets[:_SHOWN]],
            "more": and_more(len(streets) - _SHOWN)}


def street_decision(run: _NameRun, feature: SourceLike, ways: Sequence[OsmElement], name: str,
                    basis: Reason, candidates: tuple[Candidate, ...] = ()) -> Decision:
    """modify / unchanged / review (values differ) for a row matched to a street's ways."""
    settings = run.settings
    source_tags = {k: v for k, v in feature.tags.items() if k != run.name_key}
    if run.ref_key and run.ref_key not in source_tags:
        source_tags[run.ref_key] = feature.source_id  # so the next run matches by ref
    merges = [(way, merge_tags(way.tags, source_tags, settings)) for way in ways]
    merges.sort(key=lambda m: (not m[1].changes_anything, m[0].type, m[0].id))
    (first, merge), rest = merges[0], merges[1:]
    geometry = shapely.union_all([way.geometry for way in ways])
    where = reason("street_ways", name=name, n=len(ways), osm_id=first.key,
                   more=reason("ellipsis") if rest else None, basis=basis)
    base = {"source_id": feature.source_id, "tags": merge.tags, "geometry": geometry,
            "osm": first, "merge": merge, "candidates": candidates,
            "source_tags": dict(feature.tags), "extra_osm": tuple(w for w, _ in rest),
            "extra_tags": tuple(dict(m.tags) for _, m in rest)}
    conflicts = _conflicts(merges)
    if conflicts:
        return Decision(decision=REVIEW, proposed=MODIFY, **because(reason(
            "street_conflict", where=where, conflicts=conflicts[:_SHOWN],
            more=and_more(len(conflicts) - _SHOWN))), **base)
    changed = [(w, m) for w, m in merges if m.changes_anything]
    kept = next((m.kept_reason() for _, m in merges if m.kept), None)
    if not changed:
        return Decision(decision=UNCHANGED, **because(reason("street_same", where=where,
                                                             kept=kept)), **base)
    keys = sorted({k for _, m in changed for k in (*m.new, *m.changed, *m.removed)})
    return Decision(decision=MODIFY, **because(reason(
        "street_sets", where=where, keys=keys, changed=len(changed), total=len(ways),
        kept=kept)), **base)


def _conflicts(merges: Sequence[tuple[OsmElement, TagMerge]]) -> list[Reason]:
    return [reason("way_conflict", osm_id=way.key, key=k, osm=way.tags[k],
                   source=merge.tags.get(k, "") if k in merge.changed else merge.kept[k][1])
            for way, merge in merges for k in merge.conflicts]
