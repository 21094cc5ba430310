"""The one-to-one assignment: shortcuts for groups with one side single give the same choice
as the full optimal assignment, and doubts are measured the same way."""

from __future__ import annotations

import numpy as np
import pytest

from conflation.assignment import (
    _best_in_group,
    _solve_group,
    assign,
    min_cost_assignment,
    useless_pairs,
)
from pipeline.kernel.components import connected_components


def _reference(source: np.ndarray, osm: np.ndarray, score: np.ndarray) -> dict[int, int]:
    """Every connected group through the full assignment (no shortcut)."""
    groups: list[set[int]] = []
    for p in range(len(source)):
        touching = [g for g in groups if any(source[q] == source[p] or osm[q] == osm[p]
                                             for q in g)]
        merged = set().union(*touching, {p})
        groups = [g for g in groups if g not in touching] + [merged]
    chosen = {}
    for group in groups:
        members = np.array(sorted(group))
        for i in _best_in_group(source[members], osm[members], score[members]):
            chosen[int(source[members[i]])] = int(members[i])
    return chosen


@pytest.mark.parametrize("seed", range(20))
def test_assignment_equals_the_full_optimum_in_every_group(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    source = rng.integers(0, 25, n)
    osm = rng.integers(0, 25, n)
    pairs = sorted(set(zip(source.tolist(), osm.tolist(), strict=True)))
    source, osm = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    score = np.round(rng.uniform(0.3, 1.0, len(pairs)), 1)  # ties on purpose
    result = assign(source, osm, score, margin=0.1)
    assert result.chosen == _reference(source, osm, score)
    for s, rivals in result.rivals.items():
        assert all(isinstance(r.loss, float) and r.loss < 0.1 for r in rivals), s


def test_a_single_source_takes_its_best_object_and_names_the_close_one() -> None:
    result = assign(np.array([0, 0, 0]), np.array([4, 5, 6]), np.array([0.7, 0.9, 0.85]), 0.1)
    assert result.chosen == {0: 1}
    assert [(r.pair, r.kind) for r in result.rivals[0]] == [(2, "osm")]


@pytest.mark.parametrize("seed", range(5))
def test_small_groups_are_solved_exactly_as_scipy_does(seed: int) -> None:
    """The written-out solver makes the very choices of scipy's linear_sum_assignment, ties
    included (scores rounded to one or two decimals, half the cells without a pair)."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(seed)
    for _ in range(400):
        rows, cols = int(rng.integers(1, 9)), int(rng.integers(1, 22))
        dense = np.round(rng.uniform(0, 1, (rows, cols)), int(rng.integers(1, 3)))
        dense[rng.uniform(size=(rows, cols)) < 0.5] = 0
        expected = linear_sum_assignment(dense, maximize=True)
        got = min_cost_assignment((-dense).tolist())
        assert (list(expected[0]), list(expected[1])) == got, dense


@pytest.mark.parametrize("seed", range(5))
def test_connected_groups_are_labelled_as_scipy_labels_them(seed: int) -> None:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    rng = np.random.default_rng(seed)
    n_rows, n_cols, n_edges = 40, 60, int(rng.integers(10, 80))
    left = rng.integers(0, n_rows, n_edges)
    right = n_rows + rng.integers(0, n_cols, n_edges)
    used = np.unique(np.concatenate([left, right]))  # every node of a real run is in a pair
    left, right = np.searchsorted(used, left), np.searchsorted(used, right)
    graph = csr_matrix((np.ones(n_edges), (left, right)), shape=(len(used),) * 2)
    n, labels = scipy_components(graph, directed=False)
    got_n, got_labels = connected_components(left.tolist(), right.tolist(), len(used))
    assert got_n == n
    assert got_labels.tolist() == labels.tolist()


def test_a_large_group_gets_the_optimal_total_through_the_sparse_matching() -> None:
    """A band of 160 sources each near 5 of 160 objects: one group of 25 600 cells, beyond
    the dense solver's 10 000; its total score is the optimum scipy finds on the dense matrix."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(7)
    source = np.repeat(np.arange(160), 5)
    osm = np.minimum(source + np.tile(np.arange(5), 160), 159)
    pairs = sorted(set(zip(source.tolist(), osm.tolist(), strict=True)))
    source, osm = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    score = rng.uniform(0.35, 1.0, len(pairs))
    chosen = _best_in_group(source, osm, score)
    assert len({int(source[p]) for p in chosen}) == len(chosen)  # one to one
    assert len({int(osm[p]) for p in chosen}) == len(chosen)
    dense = np.zeros((160, 160))
    dense[source, osm] = score
    rows, cols = linear_sum_assignment(dense, maximize=True)
    assert score[chosen].sum() == pytest.approx(dense[rows, cols].sum())


def _optimum(source: np.ndarray, osm: np.ndarray, score: np.ndarray) -> float:
    """The best total score, each source and object used at most once (scipy, dense)."""
    from scipy.optimize import linear_sum_assignment

    dense = np.zeros((int(source.max()) + 1, int(osm.max()) + 1))
    dense[source, osm] = score
    rows, cols = linear_sum_assignment(dense, maximize=True)
    return float(dense[rows, cols].sum())


def _random_pairs(seed: int, n_sources: int, n_osm: int, per_source: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    source = np.repeat(np.arange(n_sources), per_source)
    osm = rng.integers(0, n_osm, len(source))
    pairs = sorted(set(zip(source.tolist(), osm.tolist(), strict=True)))
    source, osm = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    return source, osm, np.round(rng.uniform(0.35, 1.0, len(pairs)), 2)  # some ties


@pytest.mark.parametrize("seed", range(30))
def test_pairs_found_useless_change_no_optimum(seed: int) -> None:
    source, osm, score = _random_pairs(seed, 12, 15, 4)
    useless = useless_pairs(source, osm, score)
    kept = ~useless
    assert _optimum(source[kept], osm[kept], score[kept]) == pytest.approx(
        _optimum(source, osm, score))
    # Each pair found useless is in no optimal assignment: forcing it costs something.
    for p in np.flatnonzero(useless).tolist():
        others = (source != source[p]) & (osm != osm[p])
        forced = score[p] + (_optimum(source[others], osm[others], score[others])
                             if others.any() else 0.0)
        assert forced < _optimum(source, osm, score) - 1e-9, p


def test_a_dense_group_falls_apart_once_useless_pairs_are_gone() -> None:
    """As in a dense city centre (`bench.conflation_speed 10`): 4 000 objects on 600 × 600 m,
    400 points copying one of them (moved up to 10 m), 30 m search radius: ~30 candidates per
    point, and all points in one connected group; without its useless pairs (most of them) it
    falls apart into groups of a few points."""
    rng = np.random.default_rng(3)
    objects = rng.uniform(0, 600, (4000, 2))
    points = objects[rng.choice(4000, 400, replace=False)] + rng.uniform(-7, 7, (400, 2))
    distance = np.hypot(*(points[:, None, :] - objects[None, :, :]).transpose(2, 0, 1))
    source, osm = np.nonzero(distance <= 30)
    score = 0.6 + 0.4 * (1 - distance[source, osm] / 30)  # unnamed objects: closeness only

    def largest_group(kept: np.ndarray) -> int:
        _, labels = connected_components(source[kept].tolist(), (400 + osm[kept]).tolist(), 4400)
        return int(np.bincount(labels[np.unique(source[kept])]).max())

    useless = useless_pairs(source, osm, score)
    assert largest_group(np.ones(len(source), dtype=bool)) == 400
    assert useless.mean() > 0.9 and largest_group(~useless) <= 10
    kept = ~useless
    assert _optimum(source[kept], osm[kept], score[kept]) == pytest.approx(
        _optimum(source, osm, score))


@pytest.mark.parametrize("seed", range(5))
def test_large_groups_solved_in_parts_reach_the_optimum(seed: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    source, osm, score = _random_pairs(seed, 60, 200, 6)
    monkeypatch.setattr("conflation.assignment.DENSE_CELLS", 0)  # every group "large"
    chosen = _solve_group(source, osm, score)
    assert [int(source[p]) for p in chosen] == sorted({int(source[p]) for p in chosen})
    assert len({int(osm[p]) for p in chosen}) == len(chosen)
    assert score[chosen].sum() == pytest.approx(_optimum(source, osm, score))
