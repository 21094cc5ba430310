"""The one-to-one assignment: shortcuts for groups with one side single give the same choice
as the full optimal assignment, and doubts are measured the same way."""

from __future__ import annotations

import numpy as np
import pytest

from conflation.assignment import _best_in_group, assign


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
