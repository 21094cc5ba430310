"""One-to-one assignment of source features to OSM objects, globally consistent.

The assignment maximises the total score over all eligible pairs (score ≥ review threshold),
within each connected group of candidate pairs: a dense optimal assignment for small groups,
a minimum-weight full bipartite matching on the sparse graph for large ones (each source
feature then has a private "no match" column of score 0). The optimum over the whole graph is the
optimum within each connected group of candidate pairs; it is never first come, first served.

Doubt is then measured against the nearest alternative assignments (exchanging one pair): when
another OSM object, or another source feature, would give a total within `margin` of the
optimum, the pair goes to review naming both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching


@dataclass(frozen=True)
class Rival:
    """An alternative that comes within the margin: another OSM object or source feature."""

    pair: int  # the rival pair's index
    kind: str  # "osm": same source, other OSM object; "source": same OSM object, other source
    loss: float  # how much total score choosing it would lose (< margin)


@dataclass
class Assignment:
    chosen: dict[int, int] = field(default_factory=dict)  # source position -> pair index
    rivals: dict[int, list[Rival]] = field(default_factory=dict)  # source position -> rivals


def assign(source: np.ndarray, osm: np.ndarray, score: np.ndarray, margin: float) -> Assignment:
    """Best one-to-one assignment of the given pairs (parallel arrays), with its doubts."""
    result = Assignment()
    if len(source) == 0:
        return result
    rows, row_of = np.unique(source, return_inverse=True)
    cols, col_of = np.unique(osm, return_inverse=True)
    n_rows = len(rows)
    graph = csr_matrix((np.ones(len(source)), (row_of, n_rows + col_of)),
                       shape=(n_rows + len(cols),) * 2)
    n_groups, labels = connected_components(graph, directed=False)
    group_of = labels[row_of]
    # Groups with one source feature or one OSM object (most of them) need no assignment.
    single = (np.bincount(labels[:n_rows], minlength=n_groups) == 1) | (
        np.bincount(labels[n_rows:], minlength=n_groups) == 1)
    order = np.argsort(group_of, kind="stable")
    bounds = np.flatnonzero(np.diff(group_of[order])) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(order)]])
    best = _first_best(score[order], starts)
    single_run = single[group_of[order[starts]]].tolist()
    pair_list, source_list = order.tolist(), source.tolist()
    # Groups in label order, as the chosen pairs' order decides the order of doubts.
    for g, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if single_run[g]:
            pair = pair_list[best[g]]
            result.chosen[source_list[pair]] = pair
            continue
        members = order[start:end]
        for p in _best_in_group(row_of[members], col_of[members], score[members]):
            result.chosen[int(source[members[p]])] = int(members[p])
    result.rivals = _doubts(source, osm, score, result.chosen, margin)
    return result


def _first_best(score: np.ndarray, starts: np.ndarray) -> list[int]:
    """For runs of `score` beginning at `starts`, the position of each run's first highest
    score (what `np.argmax` gives run by run, without a numpy call per run)."""
    top = np.maximum.reduceat(score, starts)
    lengths = np.diff(np.concatenate([starts, [len(score)]]))
    at_top = np.flatnonzero(score == np.repeat(top, lengths))
    return at_top[np.searchsorted(at_top, starts)].tolist()


def _best_in_group(rows: np.ndarray, cols: np.ndarray, score: np.ndarray) -> list[int]:
    """Positions of the chosen pairs within one connected group."""
    if len(rows) == 1:
        return [0]
    r, r_of = np.unique(rows, return_inverse=True)
    c, c_of = np.unique(cols, return_inverse=True)
    if len(r) == 1 or len(c) == 1:
        return [int(np.argmax(score))]
    if len(r) * len(c) <= 10_000:  # small group: a dense matrix, 0 where there is no pair
        from scipy.optimize import linear_sum_assignment  # slow to import, often not needed

        dense = np.zeros((len(r), len(c)))
        dense[r_of, c_of] = score
        index = np.full((len(r), len(c)), -1)
        index[r_of, c_of] = np.arange(len(score))
        a, b = linear_sum_assignment(dense, maximize=True)
        return [int(index[x, y]) for x, y in zip(a, b, strict=True) if index[x, y] >= 0]
    # Costs must be positive (a zero is "no edge" in a sparse matrix): 2 - score, and 2 for
    # the private "no match" column of each row, so every row can be matched.
    data = np.concatenate([2.0 - score, np.full(len(r), 2.0)])
    i = np.concatenate([r_of, np.arange(len(r))])
    j = np.concatenate([c_of, len(c) + np.arange(len(r))])
    matrix = csr_matrix((data, (i, j)), shape=(len(r), len(c) + len(r)))
    matched_rows, matched_cols = min_weight_full_bipartite_matching(matrix)
    at = {(int(a), int(b)): p for p, (a, b) in enumerate(zip(r_of, c_of, strict=True))}
    return [at[(int(a), int(b))] for a, b in zip(matched_rows, matched_cols, strict=True)
            if b < len(c)]


def _doubts(source: np.ndarray, osm: np.ndarray, score: np.ndarray, chosen: dict[int, int],
            margin: float) -> dict[int, list[Rival]]:
    # Plain Python numbers: the loops below look at every pair, numpy scalars would slow them.
    src, obj, val = source.tolist(), osm.tolist(), score.tolist()
    by_source: dict[int, list[int]] = defaultdict(list)
    by_osm: dict[int, list[int]] = defaultdict(list)
    for p, (s, o) in enumerate(zip(src, obj, strict=True)):
        by_source[s].append(p)
        by_osm[o].append(p)
    owner = {obj[p]: s for s, p in chosen.items()}
    pair_of = {(s, o): p for p, (s, o) in enumerate(zip(src, obj, strict=True))}

    def value(s: int) -> float:
        return val[chosen[s]] if s in chosen else 0.0

    rivals: dict[int, list[Rival]] = defaultdict(list)
    for s, p in chosen.items():
        o = obj[p]
        for q in by_source[s]:  # s takes another OSM object o2; its owner takes o, or nothing
            o2 = obj[q]
            if q == p:
                continue
            other = owner.get(o2)
            back = pair_of.get((other, o)) if other is not None else None
            alt = val[q] + (val[back] if back is not None else 0.0)
            loss = val[p] + (value(other) if other is not None else 0.0) - alt
            if loss < margin:
                rivals[s].append(Rival(q, "osm", loss))
        for q in by_osm[o]:  # another source s2 takes o; s takes s2's object, or nothing
            s2 = src[q]
            if s2 == s:
                continue
            forth = pair_of.get((s, obj[chosen[s2]])) if s2 in chosen else None
            alt = val[q] + (val[forth] if forth is not None else 0.0)
            loss = val[p] + value(s2) - alt
            if loss < margin:
                rivals[s].append(Rival(q, "source", loss))
                if s2 not in chosen:
                    rivals[s2].append(Rival(p, "source", loss))
    return dict(rivals)
