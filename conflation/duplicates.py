"""Duplicates inside the source: features of one layer that are one object listed twice.

A survey that logged a stop twice, a table exported with its rows repeated, coordinates rounded
so that several features stack on one spot: features within `match.duplicates` metres of each
other whose main tags agree and whose names, when both have one, are the same name, form a group;
so do features at the very same position, whatever they are (a placeholder position shared by a
hundred addresses of an estate in the Base Adresse Nationale, "51" and "51 bis" on one point:
new nodes there would be one position twice, which JOSM's validator flags). Every decision of a
group but `skip` goes to review, naming the others; a person says which one is the object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import shapely

from conflation.names import SAME_NAME
from conflation.scoring import MAIN_KEYS, label_similarity
from pipeline.kernel.components import connected_components

SAME_POSITION = 0.01  # metres: the files write 1e-7 degree, about a centimetre


def _same_kind(a: Mapping[str, str], b: Mapping[str, str], label_keys: Sequence[str]) -> bool:
    if any(a.get(k) != b.get(k) for k in MAIN_KEYS):
        return False
    similarity = label_similarity(a, b, label_keys)
    return similarity is None or similarity >= SAME_NAME


def duplicate_groups(positions: Sequence[int], metric: Sequence[shapely.Geometry],
                     tags: Sequence[Mapping[str, str]], distance: float,
                     label_keys: Sequence[str]) -> list[list[int]]:
    """Groups (of `positions`, each sorted) of features that are the same object."""
    if len(positions) < 2:
        return []
    geoms = np.array([*metric, None], dtype=object)[:-1]
    left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin",
                                               distance=max(distance, SAME_POSITION))
    apart = shapely.distance(geoms[left], geoms[right])
    same = [(a, b) for a, b, gap in zip(left.tolist(), right.tolist(), apart.tolist(), strict=True)
            if a < b and (gap <= SAME_POSITION or (gap <= distance
                                                   and _same_kind(tags[a], tags[b], label_keys)))]
    _, labels = connected_components([a for a, _ in same], [b for _, b in same], len(positions))
    members: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        members[label].append(positions[i])
    return sorted(sorted(group) for group in members.values() if len(group) > 1)
