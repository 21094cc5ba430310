"""Scoring of candidate pairs: geometric closeness, name similarity, agreement of main tags.

score = (0.3 × closeness + 0.7 × name term) × tag factor   when both sides are named
score = (0.6 + 0.4 × closeness) × tag factor               when neither is (meters, benches)
score = (0.45 + 0.4 × closeness) × tag factor              when only one side is named

Between two areas, overlap dominates: when both are named, score = (0.6 × overlap + 0.4 × name
term) × tag factor, so a park overlapping its OSM twin by 93 % under a partly different name
still beats unnamed scraps nearby; and areas that do not touch, farther apart than
match.distance, keep only a share distance / gap of the base (a per-kind radius lets a school
*point* lie 150 m from its grounds, not a scrap of grass 190 m from a park).

The name term maps similarity 0.6 → 0 and 0.95 → 1: a different name is strong evidence of a
different object even at 0 m (two shops in one building), a variant spelling or a typo is not.
The tag factor is 0.6 when the main tags (amenity, shop, …) disagree, or when both sides have
main tags but share none (tourism=information vs amenity=parking). Ref equality is decisive and handled
before scoring (see `conflation.matching`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from conflation.candidates import KINDS, Pairs, RadiusFn
from conflation.names import name_similarity

# Keys that say what an object is; a different value means a different kind of object.
MAIN_KEYS = ("amenity", "shop", "tourism", "leisure", "office", "craft", "healthcare",
             "historic", "highway", "railway", "public_transport", "man_made", "emergency",
             "sport", "natural", "landuse", "place", "building", "vending", "club")
# Label keys compared exactly (after case and spaces): "12" and "14" are different addresses.
EXACT_KEYS = frozenset({"addr:housenumber", "addr:unit", "addr:postcode", "ref", "addr:flats"})

# Default search radii (metres) for objects whose mapped point may lie far from the source's:
# used as a floor over match.distance; `match.radii` in the profile overrides any of them.
TYPE_RADII: dict[str, float] = {
    "amenity=school": 150.0, "amenity=college": 200.0, "amenity=university": 300.0,
    "amenity=hospital": 300.0, "amenity=marketplace": 100.0, "amenity=grave_yard": 150.0,
    "landuse=cemetery": 200.0, "leisure=park": 200.0, "leisure=stadium": 200.0,
    "leisure=sports_centre": 150.0, "railway=station": 200.0, "tourism=zoo": 300.0,
    "tourism=theme_park": 300.0, "aeroway=aerodrome": 1000.0,
}


@dataclass(frozen=True)
class Weights:
    """The weights of the score (see the module text)."""

    geo_named: float = 0.3
    name: float = 0.7
    geo_areas: float = 0.6  # two named areas: overlap weighs more than the name
    name_areas: float = 0.4
    name_floor: float = 0.6  # name similarity that counts as nothing
    name_full: float = 0.95  # name similarity that counts as the same name
    unnamed_base: float = 0.6
    one_named_base: float = 0.45
    geo_unnamed: float = 0.4
    tag_conflict: float = 0.6  # factor when a main tag disagrees
    tag_mixed: float = 0.85  # factor when some main tags agree and another disagrees


@dataclass(frozen=True)
class Scored:
    score: np.ndarray
    name: np.ndarray  # name similarity, NaN when a side has no label
    tags: np.ndarray  # tag factor


def radius_function(
    source_tags: Sequence[Mapping[str, str]], osm_kinds: np.ndarray, distance: float,
    radii: Mapping[str, float]
) -> tuple[RadiusFn, np.ndarray]:
    """The per-pair radius and each source's search distance (the largest radius it may use).

    A profile radius for the source's type (`amenity=school: 100`) wins; otherwise the larger of
    the OSM kind's radius (`node`, `line`, `area`; default match.distance) and `TYPE_RADII`.
    """
    kind_radius = np.array([radii.get(KINDS[k], distance) for k in sorted(KINDS)])
    typed = np.full(len(source_tags), np.nan)
    floor = np.zeros(len(source_tags))
    for i, tags in enumerate(source_tags):
        for key, value in tags.items():
            kv = f"{key}={value}"
            if kv in radii:
                typed[i] = radii[kv]
            elif kv in TYPE_RADII:
                floor[i] = max(floor[i], TYPE_RADII[kv])

    def radius_of(src: np.ndarray, osm: np.ndarray) -> np.ndarray:
        base = np.maximum(kind_radius[osm_kinds[osm]], floor[src])
        return np.where(np.isnan(typed[src]), base, typed[src])

    search = np.where(np.isnan(typed), np.maximum(kind_radius.max(), floor), typed)
    return radius_of, search


def label_similarity(a: Mapping[str, str], b: Mapping[str, str],
                     keys: Sequence[str]) -> float | None:
    """The lowest similarity over the label keys both sides have; None if they share none."""
    result: float | None = None
    for key in keys:
        x, y = a.get(key), b.get(key)
        if not x or not y:
            continue
        exact = key in EXACT_KEYS
        sim = float(_compact(x) == _compact(y)) if exact else name_similarity(x, y)
        result = sim if result is None else min(result, sim)
    return result


def _compact(value: str) -> str:
    return "".join(value.casefold().split())


def tag_factor(a: Mapping[str, str], b: Mapping[str, str], weights: Weights) -> float:
    agree = conflict = 0
    for key in MAIN_KEYS:
        x, y = a.get(key), b.get(key)
        if x is None or y is None:
            continue
        if x == y or "yes" in (x, y):  # building=yes is any building
            agree += 1
        else:
            conflict += 1
    if not conflict:
        if agree or not (_kinds(a) and _kinds(b)):
            return 1.0
        return weights.tag_conflict  # both say what they are, and it is not the same
    return weights.tag_mixed if agree else weights.tag_conflict


def _signatures(tags: Sequence[Mapping[str, str]], positions: np.ndarray
                ) -> tuple[np.ndarray, list[int]]:
    """The number of each position's main-tag signature (its values of MAIN_KEYS), and one
    position holding each signature."""
    number_of: dict[tuple[str | None, ...], int] = {}
    example: list[int] = []
    numbers: dict[int, int] = {}
    for i in set(positions.tolist()):
        signature = tuple(map(tags[i].get, MAIN_KEYS))
        number = numbers[i] = number_of.setdefault(signature, len(number_of))
        if number == len(example):
            example.append(i)
    return np.array([numbers[i] for i in positions.tolist()], dtype=np.int64), example


def _kinds(tags: Mapping[str, str]) -> bool:
    """Whether the tags say what the object is (building alone does not: a POI sits in one)."""
    return any(k in tags for k in MAIN_KEYS if k not in ("building", "vending"))


def _named(tags: Sequence[Mapping[str, str]], positions: np.ndarray,
           label_keys: Sequence[str]) -> np.ndarray:
    """Whether the object at each position has a label; only objects in a pair are looked at."""
    listed = positions.tolist()
    named = {i: any(tags[i].get(k) for k in label_keys) for i in set(listed)}
    return np.array([named[i] for i in listed], dtype=bool)


def score_pairs(
    pairs: Pairs,
    source_tags: Sequence[Mapping[str, str]],
    osm_tags: Sequence[Mapping[str, str]],
    label_keys: Sequence[str],
    weights: Weights = Weights(),
    near: float = math.inf,
) -> Scored:
    """`near`: match.distance (see the module text)."""
    name = np.full(len(pairs), np.nan)
    named_src = _named(source_tags, pairs.source, label_keys)
    named_osm = _named(osm_tags, pairs.osm, label_keys)
    both_named = np.flatnonzero(named_src & named_osm)
    for p, s, o in zip(both_named.tolist(), pairs.source[both_named].tolist(),
                       pairs.osm[both_named].tolist(), strict=True):
        sim = label_similarity(source_tags[s], osm_tags[o], label_keys)
        if sim is not None:
            name[p] = sim
    # The tag factor depends on the main tags only: computed once per pair of signatures.
    src_kind, src_example = _signatures(source_tags, pairs.source)
    osm_kind, osm_example = _signatures(osm_tags, pairs.osm)
    combined, which = np.unique(src_kind * len(osm_example) + osm_kind, return_inverse=True)
    factors = [tag_factor(source_tags[src_example[c // len(osm_example)]],
                          osm_tags[osm_example[c % len(osm_example)]], weights)
               for c in combined.tolist()]
    tags = np.array(factors, dtype=float)[which] if len(factors) else np.ones(0)
    span = weights.name_full - weights.name_floor
    name_term = np.clip((np.nan_to_num(name, nan=0.0) - weights.name_floor) / span, 0.0, 1.0)
    both = ~np.isnan(name)
    one = ~both & (named_src | named_osm)
    geo_w = np.where(pairs.areas, weights.geo_areas, weights.geo_named)
    name_w = np.where(pairs.areas, weights.name_areas, weights.name)
    base = np.where(one, weights.one_named_base, weights.unnamed_base)
    apart = pairs.areas & (pairs.geo < 1e-9) & (pairs.distance > near)
    base = np.where(apart, base * near / np.maximum(pairs.distance, 1e-9), base)
    score = np.where(both, geo_w * pairs.geo + name_w * name_term,
                     base + weights.geo_unnamed * pairs.geo)
    return Scored(np.clip(score * tags, 0.0, 1.0), name, tags)
