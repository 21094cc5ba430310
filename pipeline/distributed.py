"""The conflation on a Dask cluster: `sig2osm run PROFILE --workers N` (a `LocalCluster` of N
processes on this machine) or `--scheduler ADDRESS` (a cluster running elsewhere).

The decisions are those of one process, byte for byte, whatever the number of workers:
1. the source features are cut into square tiles (`--tile-size`, or about `TILE_FEATURES`
   features a tile); each tile's links (`conflation.regions`: the OSM objects within each
   feature's search distance, the features that may be its twins) are found on a worker, with
   the OSM objects and features within that distance of the tile — the overlap margin;
2. the client joins the links (and those by ref or a reviewer's match, found in one pass) into
   regions: groups of features and objects that no link leaves. A group of the one-to-one
   assignment lies in one region, however many tiles it crosses;
3. each region is decided on a worker, by the tile that holds its first feature, with the
   conflation of one process run on the region's features and objects alone;
4. the client puts the decisions in source order and adds what needs all of them at once
   (`missing` objects, reviewers' acceptances).

Memory: a worker holds one tile's features and the objects around them, or one tile's regions.
A region is never split, so a dense area whose candidates all link up (every point near a few
dozen others) is decided by one worker; that is rare in real data, and such a region is still
solved in parts (`conflation.assignment`).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import shapely

from conflation.facts import RunFacts
from conflation.matching import METHODS, conflate_by_place, finish
from conflation.metric import to_metric
from conflation.regions import (
    identity_links,
    nearby_links,
    region_labels,
    search_distances,
    twin_distance,
    twin_links,
)
from pipeline.kernel.decisions import Decision
from pipeline.kernel.errors import ProfileError
from pipeline.kernel.osm import OsmData
from pipeline.kernel.settings import MatchConfig, Profile
from pipeline.progress import progress

log = logging.getLogger(__name__)

TILE_FEATURES = 20_000  # source features a tile holds, about, when no tile size is given
_UNPLACED = -1  # the "tile" of features without a geometry (decided with the first tile's)


@dataclass(frozen=True)
class ClusterSettings:
    """Where the conflation runs: `workers` local processes, or the cluster at `scheduler`."""

    workers: int | None = None
    scheduler: str | None = None
    tile_m: float | None = None  # side of a tile in metres (None: about TILE_FEATURES a tile)
    memory_per_worker: str | None = None  # a LocalCluster's limit ("4GiB"); None: RAM / workers

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise ProfileError("--workers and --scheduler: give one (a local cluster of that "
                               "many workers, or the address of a running one).")
        if self.workers is not None and self.workers < 1:
            raise ProfileError(f"--workers {self.workers}: expected 1 or more.")
        if self.tile_m is not None and not (self.tile_m > 0 and math.isfinite(self.tile_m)):
            raise ProfileError(f"--tile-size {self.tile_m}: expected a positive number of metres.")


@contextmanager
def connected(settings: ClusterSettings) -> Iterator[Any]:
    """A Dask client: of a `LocalCluster` of `settings.workers` processes (one thread each: the
    conflation holds the GIL), or of the scheduler at `settings.scheduler`."""
    from dask.distributed import Client, LocalCluster  # heavy: only for a run on a cluster

    # Dask sets its loggers to INFO when imported: every worker started and stopped would be
    # logged. Ours says where the dashboard is; Dask's own lines come with -vv.
    verbose = logging.getLogger().getEffectiveLevel() < logging.INFO
    logging.getLogger("distributed").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if settings.scheduler is not None:
        with Client(settings.scheduler, timeout="30s") as client:
            log.info("conflate: Dask scheduler %s, %d worker(s); dashboard %s", settings.scheduler,
                     len(client.scheduler_info().get("workers", {})), client.dashboard_link)
            yield client
        return
    workers = settings.workers or 1
    memory = settings.memory_per_worker or _memory_share(workers)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=memory, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        log.info("conflate: Dask LocalCluster of %d worker(s), %s each; dashboard %s", workers,
                 memory, client.dashboard_link)
        yield client


def _memory_share(workers: int) -> str:
    """This machine's memory shared between the workers, the client's part kept aside."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(total // (workers + 1), 1 << 30) // (1 << 20)}MiB"


def conflate_on_cluster(client: Any, sources: Sequence[Any], osm: OsmData, metric_crs: str,
                        profile: Profile, facts: RunFacts, tile_m: float | None = None
                        ) -> list[Decision]:
    """The decisions of `conflation.matching.conflate`, made region by region on the cluster."""
    if METHODS[profile.source.geometry] is not conflate_by_place:
        raise ProfileError("source.geometry: none (a table matched by name) runs in one process;"
                           " leave out --workers and --scheduler.")
    match = profile.match
    slim = [_slim(f) for f in sources]  # what the conflation reads of a feature
    placed = [i for i, f in enumerate(slim) if f.geometry is not None and f.skip_reason is None]
    source_metric = np.empty(len(slim), dtype=object)
    source_metric[placed] = to_metric([slim[i].geometry for i in placed], metric_crs)
    osm_metric = to_metric([e.geometry for e in osm.elements], metric_crs)
    search = search_distances([f.tags for f in slim], match)
    tiles = _tiles(source_metric, placed, tile_m)

    source_osm, source_source = _links_on_cluster(client, tiles, source_metric, search,
                                                  osm_metric, match)
    source_osm.append(identity_links(slim, osm.elements, match, facts.reviewer))
    labels, osm_labels = region_labels(len(slim), len(osm.elements), source_osm, source_source)
    decided = _decide_on_cluster(client, tiles, labels, osm_labels, slim, osm, metric_crs,
                                 profile, facts)
    return finish(sources, decided, osm, match.ref, facts)


@dataclass(frozen=True)
class _Feature:
    """A source feature as the conflation reads it (its attributes stay with the client)."""

    source_id: str
    geometry: Any
    tags: dict[str, str]
    skip_reason: str | None


def _slim(feature: Any) -> _Feature:
    return _Feature(feature.source_id, feature.geometry, feature.tags, feature.skip_reason)


def _tiles(metric: np.ndarray, placed: list[int], tile_m: float | None) -> dict[int, np.ndarray]:
    """Source positions by tile (square cells of the metric CRS), tiles in row order; features
    without a geometry in `_UNPLACED`. A feature belongs to the tile holding its centre."""
    if not placed:
        return {_UNPLACED: np.arange(len(metric))} if len(metric) else {}
    bounds = shapely.bounds(metric[placed].astype(object))
    x, y = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    west, south = float(x.min()), float(y.min())
    if tile_m is None:  # about TILE_FEATURES a tile, were the features spread evenly
        area = max(float(x.max()) - west, 1.0) * max(float(y.max()) - south, 1.0)
        tile_m = math.sqrt(area * TILE_FEATURES / len(placed))
    column = np.floor((x - west) / tile_m).astype(np.int64)
    row = np.floor((y - south) / tile_m).astype(np.int64)
    cell = row * (int(column.max()) + 1) + column
    tiles: dict[int, np.ndarray] = {}
    order = np.argsort(cell, kind="stable")
    ids, starts = np.unique(cell[order], return_index=True)
    for t, members in zip(ids.tolist(), np.split(order, starts[1:]), strict=True):
        tiles[t] = np.asarray(placed)[members]
    unplaced = np.setdiff1d(np.arange(len(metric)), placed)
    if len(unplaced):
        tiles[_UNPLACED] = unplaced
    return tiles


def _links_on_cluster(client: Any, tiles: Mapping[int, np.ndarray], source_metric: np.ndarray,
                      search: np.ndarray, osm_metric: np.ndarray, match: MatchConfig
                      ) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                 list[tuple[np.ndarray, np.ndarray]]]:
    """Step 1: each tile's links, found by a worker with what lies within the margin."""
    placed = np.concatenate([t for k, t in tiles.items() if k != _UNPLACED] or [np.zeros(0, int)])
    osm_tree = shapely.STRtree(osm_metric)
    source_tree = shapely.STRtree(source_metric[placed])
    futures = []
    for tile, core in tiles.items():
        if tile == _UNPLACED:
            continue
        box = shapely.box(*shapely.total_bounds(source_metric[core]))
        near_osm = np.sort(osm_tree.query(box, predicate="dwithin",
                                          distance=float(search[core].max())))
        near_sources = np.sort(placed[source_tree.query(box, predicate="dwithin",
                                                        distance=twin_distance(match))])
        futures.append(client.submit(
            _tile_links, core, shapely.to_wkb(source_metric[core]), search[core], near_osm,
            shapely.to_wkb(osm_metric[near_osm]), near_sources,
            shapely.to_wkb(source_metric[near_sources]), match, pure=False))
    source_osm, source_source = [], []
    for future in progress(_as_completed(futures), "linking tiles", total=len(futures),
                           unit="tile"):
        links = future.result()
        source_osm.append(links[0])
        source_source.append(links[1])
    log.info("conflate: links of %d tile(s) found", len(futures))
    return source_osm, source_source


def _tile_links(core: np.ndarray, core_wkb: np.ndarray, core_search: np.ndarray,
                near_osm: np.ndarray, near_osm_wkb: np.ndarray, near_sources: np.ndarray,
                near_source_wkb: np.ndarray, match: MatchConfig
                ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """On a worker: one tile's links, in the run's positions. Geometries travel as WKB: one
    call for all of them, where pickling them would take one each."""
    core_metric = shapely.from_wkb(core_wkb)
    s, o = nearby_links(core_metric, core_search, shapely.from_wkb(near_osm_wkb))
    a, b = twin_links(core_metric, shapely.from_wkb(near_source_wkb), match)
    return (core[s], near_osm[o]), (core[a], near_sources[b])


def _decide_on_cluster(client: Any, tiles: Mapping[int, np.ndarray], labels: np.ndarray,
                       osm_labels: np.ndarray, sources: Sequence[_Feature], osm: OsmData,
                       metric_crs: str, profile: Profile, facts: RunFacts
                       ) -> dict[int, Decision]:
    """Step 3: each tile's regions (those whose first feature it holds), decided by a worker."""
    tile_of = np.empty(len(sources), dtype=np.int64)
    for tile, members in tiles.items():
        tile_of[members] = tile
    first = np.full(int(labels.max()) + 1 if len(labels) else 0, len(sources), dtype=np.int64)
    np.minimum.at(first, labels, np.arange(len(sources)))
    owner = tile_of[first]  # the tile deciding each region
    by_tile: dict[int, list[int]] = defaultdict(list)
    for position, region in enumerate(labels.tolist()):
        by_tile[int(owner[region])].append(position)
    osm_by_tile: dict[int, list[int]] = defaultdict(list)
    for o, region in enumerate(osm_labels.tolist()):
        if region >= 0:
            osm_by_tile[int(owner[region])].append(o)
    futures = []
    for tile in sorted(by_tile):
        positions = by_tile[tile]
        part = replace(osm, elements=tuple(osm.elements[o] for o in osm_by_tile[tile]),
                       context={})
        futures.append(client.submit(_decide_part, _sealed((
            positions, _columns([sources[i] for i in positions]), part.to_json(), metric_crs,
            profile, facts)), pure=False))
    decided: dict[int, Decision] = {}
    by_key = {e.key: e for e in osm.elements}
    for future in progress(_as_completed(futures), "deciding tiles", total=len(futures),
                           unit="tile"):
        for position, (decision, osm_key) in pickle.loads(future.result()).items():
            decided[position] = replace(  # with the client's own geometry and OSM object
                decision, geometry=sources[position].geometry if decision.geometry is None
                else decision.geometry, osm=by_key[osm_key] if osm_key else decision.osm)
    lowest = np.full(len(first), np.iinfo(np.int64).max)
    highest = np.full(len(first), np.iinfo(np.int64).min)
    np.minimum.at(lowest, labels, tile_of)
    np.maximum.at(highest, labels, tile_of)
    log.info("conflate: %d region(s) decided in %d tile(s), %d of them across a tile border",
             len(first), len(futures), int((lowest != highest).sum()))
    return decided


def _columns(features: Sequence[_Feature]) -> dict[str, Any]:
    return {"id": [f.source_id for f in features], "tags": [f.tags for f in features],
            "skip": [f.skip_reason for f in features],
            "wkb": shapely.to_wkb(np.array([*(f.geometry for f in features), None],
                                           dtype=object)[:-1])}


def _features(columns: Mapping[str, Any]) -> list[_Feature]:
    geometries = shapely.from_wkb(columns["wkb"]).tolist()
    return [_Feature(*row) for row in zip(columns["id"], geometries, columns["tags"],
                                          columns["skip"], strict=True)]


def _sealed(value: Any) -> bytes:
    """A task's arguments, or its result, as one pickle: Dask would otherwise walk every list
    and dict in them (hundreds of thousands of tags) and serialise each object apart."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _decide_part(sealed: bytes) -> bytes:
    """On a worker: the decisions of some whole regions, by the run's positions, sealed
    (`_sealed`: Dask would serialise each of them apart). A decision comes back without the
    feature's geometry and the OSM object it names (by key) when they are those it was given:
    the client has them."""
    positions, columns, osm_json, metric_crs, profile, facts = pickle.loads(sealed)
    sources = _features(columns)
    osm = OsmData.from_json(osm_json)
    given = {e.key: e for e in osm.elements}
    packed = {}
    for i, decision in conflate_by_place(sources, osm, metric_crs, profile, facts, None).items():
        own_geometry = decision.geometry is sources[i].geometry
        known = decision.osm is not None and given.get(decision.osm.key) is decision.osm
        packed[positions[i]] = (
            replace(decision, geometry=None if own_geometry else decision.geometry,
                    osm=None if known else decision.osm),
            decision.osm.key if known and decision.osm is not None else None)
    return _sealed(packed)


def _as_completed(futures: list[Any]) -> Iterator[Any]:
    from dask.distributed import as_completed

    yield from as_completed(futures)
