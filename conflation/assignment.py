"""One-to-one assignment of source features to OSM objects, globally consistent.

The assignment maximises the total score over all eligible pairs (score ≥ review threshold),
within each connected group of candidate pairs: a dense optimal assignment for small groups
(the shortest augmenting path algorithm of scipy's `linear_sum_assignment`, written out here
because importing scipy.optimize costs more than solving the thousands of small groups of a
dense run), a minimum-weight full bipartite matching on the sparse graph for large ones (each
source feature then has a private "no match" column of score 0). The optimum over the whole
graph is the optimum within each connected group; it is never first come, first served.

Doubt is then measured against the nearest alternative assignments (exchanging one pair): when
another OSM object, or another source feature, would give a total within `margin` of the
optimum, the pair goes to review naming both.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.kernel.components import connected_components


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
    n_groups, labels = connected_components(row_of.tolist(), (n_rows + col_of).tolist(),
                                         n_rows + len(cols))
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
        for p in _solve_group(row_of[members], col_of[members], score[members]):
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


DENSE_CELLS = 10_000  # a group this small (sources × OSM objects) is solved as a dense matrix


def _solve_group(rows: np.ndarray, cols: np.ndarray, score: np.ndarray) -> list[int]:
    """Positions of the chosen pairs within one connected group, in the order of their source.
    A large group is first rid of the pairs no optimal assignment can hold (`useless_pairs`);
    what is left usually falls apart into small groups, solved apart (the optimum of the whole
    is the optimum of each part), so a dense area costs about what a sparse one does."""
    if len(np.unique(rows)) * len(np.unique(cols)) <= DENSE_CELLS:
        return _best_in_group(rows, cols, score)
    kept = np.flatnonzero(~useless_pairs(rows, cols, score))
    row_of = np.unique(rows[kept], return_inverse=True)[1]
    col_of = np.unique(cols[kept], return_inverse=True)[1]
    n_rows = int(row_of.max()) + 1
    _, labels = connected_components(row_of.tolist(), (n_rows + col_of).tolist(),
                                        n_rows + int(col_of.max()) + 1)
    part_of = labels[row_of]
    order = np.argsort(part_of, kind="stable")
    bounds = np.flatnonzero(np.diff(part_of[order])) + 1
    chosen: list[int] = []
    for members in np.split(order, bounds):
        at = kept[members]
        chosen += [int(at[p]) for p in _best_in_group(rows[at], cols[at], score[at])]
    return sorted(chosen, key=lambda p: int(rows[p]))


def useless_pairs(rows: np.ndarray, cols: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The pairs that no optimal assignment holds, found by counting (exact, never a guess).

    Source i and OSM object j are in no optimal assignment when the objects i prefers to j
    (strictly higher score), a set B, are wanted by fewer other sources than B has members:
    whatever the others take, one object of B stays free, and moving i there scores more. The
    same holds the other way round (the sources j prefers to i, wanting fewer other objects
    than they are, leave one of them unassigned; it takes j from i). Removing such pairs
    changes no optimum, and fewer pairs can make more of them useless: repeated until none is
    found. Ties are never removed (strictly higher scores only)."""
    useless = np.zeros(len(rows), dtype=bool)
    row_list, col_list, values = rows.tolist(), cols.tolist(), score.tolist()
    while True:
        found = _outnumbered(row_list, col_list, values, useless)
        found |= _outnumbered(col_list, row_list, values, useless | found)
        if not found.any():
            return useless
        useless |= found


def _outnumbered(mine: list[int], theirs: list[int], values: list[float],
                 removed: np.ndarray) -> np.ndarray:
    """One side's pass of `useless_pairs`: for each node of `mine`, its pairs from the first
    score at which the strictly better partners are outnumbering their other suitors."""
    live = np.flatnonzero(~removed).tolist()
    suitors: dict[int, set[int]] = defaultdict(set)  # partner -> the nodes of `mine` it pairs
    pairs_of: dict[int, list[int]] = defaultdict(list)
    for p in live:
        suitors[theirs[p]].add(mine[p])
        pairs_of[mine[p]].append(p)
    found = np.zeros(len(mine), dtype=bool)
    for pairs in pairs_of.values():
        if len(pairs) < 2:
            continue
        pairs.sort(key=lambda p: -values[p])
        suitors_above: set[int] = set()  # who wants the k partners above (this node among them)
        for k, p in enumerate(pairs):
            # At a lower score the k partners above are complete: are they outnumbered?
            if k and values[p] < values[pairs[k - 1]] and len(suitors_above) - 1 < k:
                found[pairs[k:]] = True
                break
            suitors_above |= suitors[theirs[p]]
    return found


def _best_in_group(rows: np.ndarray, cols: np.ndarray, score: np.ndarray) -> list[int]:
    """Positions of the chosen pairs within one connected group."""
    row_list, col_list, values = rows.tolist(), cols.tolist(), score.tolist()
    r, c = sorted(set(row_list)), sorted(set(col_list))
    if len(r) == 1 or len(c) == 1:
        return [values.index(max(values))]  # the first best, as np.argmax
    if len(r) * len(c) <= DENSE_CELLS:  # small group: a dense matrix, 0 where there is no pair
        r_of = {x: i for i, x in enumerate(r)}
        c_of = {y: j for j, y in enumerate(c)}
        cost = [[0.0] * len(c) for _ in r]
        pair_at: dict[tuple[int, int], int] = {}
        for p, (x, y, value) in enumerate(zip(row_list, col_list, values, strict=True)):
            cost[r_of[x]][c_of[y]] = -value
            pair_at[(r_of[x], c_of[y])] = p
        chosen = zip(*min_cost_assignment(cost), strict=True)
        return [pair_at[cell] for cell in chosen if cell in pair_at]
    from scipy.sparse import csr_matrix  # slow to import, needed only by the largest groups
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    row_at, col_at = np.unique(rows, return_inverse=True)[1], np.unique(cols, return_inverse=True)[1]

    # Costs must be positive (a zero is "no edge" in a sparse matrix): 2 - score, and 2 for
    # the private "no match" column of each row, so every row can be matched.
    data = np.concatenate([2.0 - score, np.full(len(r), 2.0)])
    i = np.concatenate([row_at, np.arange(len(r))])
    j = np.concatenate([col_at, len(c) + np.arange(len(r))])
    matrix = csr_matrix((data, (i, j)), shape=(len(r), len(c) + len(r)))
    matched_rows, matched_cols = min_weight_full_bipartite_matching(matrix)
    at = {(int(a), int(b)): p for p, (a, b) in enumerate(zip(row_at, col_at, strict=True))}
    return [at[(int(a), int(b))] for a, b in zip(matched_rows, matched_cols, strict=True)
            if b < len(c)]


def min_cost_assignment(cost: Sequence[Sequence[float]]) -> tuple[list[int], list[int]]:
    """Rows and columns of the minimum-cost complete assignment of the smaller side of a dense
    cost matrix (callers pass minus the scores): `scipy.optimize.linear_sum_assignment(cost)`,
    the same algorithm (Crouse 2016, shortest augmenting paths with dual variables) step by
    step, so ties are broken the same way; rows come out in increasing order."""
    transpose = len(cost[0]) < len(cost) if cost else False
    if transpose:
        cost = [list(column) for column in zip(*cost, strict=True)]
    n_rows, n_cols = len(cost), len(cost[0]) if cost else 0
    u, v = [0.0] * n_rows, [0.0] * n_cols
    col4row, row4col = [-1] * n_rows, [-1] * n_cols
    path = [-1] * n_cols
    for current in range(n_rows):
        sink, min_val, shortest, rows_seen, cols_seen = _augmenting_path(
            cost, u, v, path, row4col, current)
        u[current] += min_val  # update the dual variables
        for i in range(n_rows):
            if rows_seen[i] and i != current:
                u[i] += min_val - shortest[col4row[i]]
        for j in range(n_cols):
            if cols_seen[j]:
                v[j] -= min_val - shortest[j]
        j = sink  # augment the previous solution along the path
        while True:
            i = path[j]
            row4col[j] = i
            col4row[i], j = j, col4row[i]
            if i == current:
                break
    if transpose:
        order = sorted(range(n_rows), key=col4row.__getitem__)
        return [col4row[k] for k in order], order
    return list(range(n_rows)), col4row


def _augmenting_path(
    cost: Sequence[Sequence[float]], u: list[float], v: list[float], path: list[int],
    row4col: list[int], i: int,
) -> tuple[int, float, list[float], list[bool], list[bool]]:
    n_cols = len(v)
    remaining = list(range(n_cols - 1, -1, -1))  # unvisited columns, last one first
    rows_seen, cols_seen = [False] * len(u), [False] * n_cols
    shortest = [math.inf] * n_cols
    min_val, sink = 0.0, -1
    while sink == -1:
        rows_seen[i] = True
        row, u_i = cost[i], u[i]
        index, lowest = -1, math.inf
        for it, j in enumerate(remaining):
            reduced = min_val + row[j] - u_i - v[j]
            if reduced < shortest[j]:
                path[j] = i
                shortest[j] = reduced
            # Among equal lowest costs prefer a free column: it ends the path at once.
            if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                lowest, index = shortest[j], it
        min_val = lowest
        j = remaining[index]
        if row4col[j] == -1:
            sink = j
        else:
            i = row4col[j]
        cols_seen[j] = True
        remaining[index] = remaining[-1]
        remaining.pop()
    return sink, min_val, shortest, rows_seen, cols_seen


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
