"""Regions of a conflation: groups of source features and OSM objects that can be decided apart
(on other cores or machines) and still get the decisions of one conflation of everything.

A feature's decision depends on other features and objects only through links:
- a source feature and an OSM object within the feature's search distance (the largest radius
  it may use: its candidates, and the objects held by a ref or of a related kind it is checked
  against, are all looked for within it);
- two source features close enough to be one object listed twice (`match.duplicates`, or one
  position);
- a source feature and the OSM objects carrying its ref (`match.ref`, wherever they are), or the
  object a reviewer matched it to.
A region is a connected group of linked features and objects. Every candidate of its features,
and every feature that competes for one of them, is in it: a group of the one-to-one
assignment is never split between two regions. What is decided for the whole data at once
(`missing` objects, the reviewers' acceptances) is left to `conflation.matching.finish`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import shapely

from conflation.duplicates import SAME_POSITION
from conflation.feedback import MATCH
from conflation.matching import ref_value, ref_values
from conflation.scoring import radius_function
from pipeline.kernel.components import connected_components
from pipeline.kernel.decisions import SourceLike
from pipeline.kernel.osm import OsmElement
from pipeline.kernel.settings import MatchConfig

Links = tuple[np.ndarray, np.ndarray]  # parallel arrays of linked positions


def search_distances(source_tags: Sequence[Mapping[str, str]], match: MatchConfig) -> np.ndarray:
    """Each source feature's search distance, in metres (as the conflation computes it)."""
    _, search = radius_function(source_tags, np.zeros(0, dtype=int), match.distance, match.radii)
    return search


def nearby_links(source_metric: np.ndarray, search: np.ndarray, osm_metric: np.ndarray
                 ) -> Links:
    """(source, OSM object) positions within each source feature's search distance."""
    if len(source_metric) == 0 or len(osm_metric) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    tree = shapely.STRtree(osm_metric)
    left, right = tree.query(source_metric, predicate="dwithin", distance=search)
    return left.astype(np.int64), right.astype(np.int64)


def twin_distance(match: MatchConfig) -> float:
    """How close two source features may be one object listed twice, in metres."""
    return max(match.duplicates, SAME_POSITION)


def twin_links(source_metric: np.ndarray, other_metric: np.ndarray, match: MatchConfig) -> Links:
    """(source, other source) positions close enough to be one object listed twice."""
    if len(source_metric) == 0 or len(other_metric) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    tree = shapely.STRtree(other_metric)
    left, right = tree.query(source_metric, predicate="dwithin", distance=twin_distance(match))
    return left.astype(np.int64), right.astype(np.int64)


def identity_links(sources: Sequence[SourceLike], elements: Sequence[OsmElement],
                   match: MatchConfig, reviewer: Mapping[str, object]) -> Links:
    """(source, OSM object) positions linked whatever the distance: the objects that carry the
    feature's ref, and the object a reviewer matched it to."""
    position: dict[str, list[int]] = {}
    if match.ref:
        for o, element in enumerate(elements):
            for value in ref_values(element, match.ref):
                position.setdefault("ref:" + value, []).append(o)
    forced = {element.key: o for o, element in enumerate(elements)} if reviewer else {}
    left: list[int] = []
    right: list[int] = []
    for s, feature in enumerate(sources):
        targets = list(position.get("ref:" + ref_value(feature, match.ref), ())) if match.ref else []
        verdict = reviewer.get(feature.source_id)
        key = getattr(verdict, "osm_key", None)
        if verdict is not None and getattr(verdict, "action", None) == MATCH and key in forced:
            targets.append(forced[key])
        left += [s] * len(targets)
        right += targets
    return np.array(left, dtype=np.int64), np.array(right, dtype=np.int64)


def region_labels(n_sources: int, n_osm: int, source_osm: Sequence[Links],
                  source_source: Sequence[Links]) -> tuple[np.ndarray, np.ndarray]:
    """The region of each source feature and of each OSM object (-1: linked to no feature),
    from every link found; regions are numbered 0… in the order of their first feature."""
    left = [a for a, _ in source_osm] + [a for a, _ in source_source]
    right = [n_sources + b for _, b in source_osm] + [b for _, b in source_source]
    rows = np.concatenate(left).tolist() if left else []
    cols = np.concatenate(right).tolist() if right else []
    # Components are numbered in the order of their lowest node, and the features are the
    # first nodes: regions with a feature come first, in the order of their first feature;
    # those of OSM objects alone after them.
    _, labels = connected_components(rows, cols, n_sources + n_osm)
    regions = int(labels[:n_sources].max()) + 1 if n_sources else 0
    osm_labels = labels[n_sources:].astype(np.int64)
    osm_labels[osm_labels >= regions] = -1
    return labels[:n_sources].astype(np.int64), osm_labels
