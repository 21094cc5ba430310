"""The conflation on a Dask cluster (Dask's own LocalCluster) decides what one process decides,
byte for byte, with one worker or two, also for features whose candidates, twins or ref lie
across a tile border; a worker killed mid-run is replaced and its work done again; a country
extract's candidates are kept as GeoParquet for the next runs."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely

from bench.same_outputs import compare
from conflation.facts import RunFacts
from conflation.matching import conflate
from pipeline.cli import main
from pipeline.distributed import ClusterSettings, conflate_on_cluster, connected
from pipeline.ingest import SourceFeature
from pipeline.kernel.decisions import (
    CREATE,
    MISSING,
    MODIFY,
    REVIEW,
    SKIP,
    UNCHANGED,
    decisions_json,
)
from pipeline.kernel.errors import ProfileError
from pipeline.kernel.osm import OsmData, OsmElement
from tests.conftest import matching

ROOT = Path(__file__).resolve().parents[1]
BAN = ROOT / "examples" / "bondy" / "addresses-on-buildings.yml"
CRS = "EPSG:32632"
WEST, SOUTH = 8.69, 49.41
KINDS = {"amenity": "bench"}


def _at(east_m: float, north_m: float) -> shapely.Point:
    return shapely.Point(WEST + east_m / 72_600, SOUTH + north_m / 111_200)


def _node(ident: int, east_m: float, north_m: float, **tags: str) -> OsmElement:
    return OsmElement("node", ident, 1, {"amenity": "bench", **tags}, _at(east_m, north_m))


def _feature(ident: str, east_m: float | None, north_m: float = 0.0, **tags: str
             ) -> SourceFeature:
    geometry = _at(east_m, north_m) if east_m is not None else None
    return SourceFeature(ident, geometry, {"amenity": "bench", **tags}, {})


# Tiles of 100 m from the westernmost, southernmost feature (at 0, 0).
SOURCES = [
    _feature("A", 0.0),  # the tiles' origin
    _feature("W", 96.0, 50.0), _feature("E", 104.0, 50.0),  # both want node 1, across a border
    _feature("T1", 199.5, 150.0, name="Banc du parc"),  # twins, across a border
    _feature("T2", 200.5, 150.0, name="Banc du parc"),
    _feature("R", 20.0, 250.0, ref="B-7"),  # its ref is on node 3, 330 m away in another tile
    _feature("N", None),  # no geometry
]
ELEMENTS = (
    _node(1, 100.0, 50.0), _node(2, 112.0, 50.0),
    _node(3, 350.0, 250.0, ref="B-7"), _node(4, 380.0, 10.0, ref="B-9"),
)
OSM = OsmData(ELEMENTS, shapely.box(WEST - 0.01, SOUTH - 0.01, WEST + 0.02, SOUTH + 0.02),
              "test box")
PROFILE = matching(KINDS, ref="ref")


@pytest.fixture(scope="module", params=[1, 2], ids=["1 worker", "2 workers"])
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    with connected(ClusterSettings(workers=request.param)) as dask_client:
        yield dask_client


def test_features_across_tile_borders_are_decided_as_by_one_process(
        client: Any, caplog: pytest.LogCaptureFixture) -> None:
    alone = conflate(SOURCES, OSM, CRS, PROFILE)
    with caplog.at_level(logging.INFO, logger="pipeline.distributed"):
        spread = conflate_on_cluster(client, SOURCES, OSM, CRS, PROFILE, RunFacts(), tile_m=100.0)
    assert decisions_json(spread) == decisions_json(alone)
    got = {d.source_id: (d.decision, d.osm_key) for d in spread}
    # One process's answers, which tiles decided alone would not all give:
    assert got["W"] == (MODIFY, "node/1") and got["E"] == (MODIFY, "node/2")  # one to one
    assert got["T1"][0] == REVIEW and got["T2"][0] == REVIEW  # twins seen together
    assert got["R"] == (UNCHANGED, "node/3")  # its ref, however far
    assert got["N"][0] == SKIP and got[None] == (MISSING, "node/4")
    crossing = [r.getMessage() for r in caplog.records if "across a tile border" in r.getMessage()]
    assert crossing and not crossing[0].endswith(" 0 of them across a tile border")


def test_a_dense_area_is_decided_as_by_one_process(client: Any) -> None:
    """400 benches among 4 000 within 600 m: every point near ~30 objects, one connected group
    of candidates, cut by 36 tiles of 100 m."""
    import numpy as np

    rng = np.random.default_rng(5)
    where = rng.uniform(0, 600, (4000, 2))
    elements = tuple(_node(i + 1, x, y) for i, (x, y) in enumerate(where.tolist()))
    copies = where[rng.choice(4000, 400, replace=False)] + rng.uniform(-7, 7, (400, 2))
    sources = [_feature(f"S{i}", x, y) for i, (x, y) in enumerate(copies.tolist())]
    osm = OsmData(elements, OSM.coverage, "test box")
    alone = conflate(sources, osm, CRS, matching(KINDS))
    spread = conflate_on_cluster(client, sources, osm, CRS, matching(KINDS), RunFacts(),
                                 tile_m=100.0)
    assert decisions_json(spread) == decisions_json(alone)
    assert {d.decision for d in alone} == {UNCHANGED, REVIEW}  # matches, and doubts


class _KillFirstDecider:
    """A Dask worker plugin: the worker that starts the first region task dies at once
    (os._exit, as when the kernel kills it), once in the whole run (a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def setup(self, worker: Any) -> None:
        pass

    def teardown(self, worker: Any) -> None:
        pass

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish == "executing" and "_decide_part" in str(key) and not self.marker.exists():
            self.marker.write_text("killed")
            os._exit(1)


def test_a_worker_killed_mid_run_is_replaced_and_its_work_done_again(tmp_path: Path) -> None:
    from distributed import WorkerPlugin

    plugin = type("KillFirstDecider", (_KillFirstDecider, WorkerPlugin), {})(tmp_path / "marker")
    with connected(ClusterSettings(workers=2)) as dask_client:
        dask_client.register_plugin(plugin)
        spread = conflate_on_cluster(dask_client, SOURCES, OSM, CRS, PROFILE, RunFacts(),
                                     tile_m=100.0)
    assert (tmp_path / "marker").read_text() == "killed"
    assert decisions_json(spread) == decisions_json(conflate(SOURCES, OSM, CRS, PROFILE))


@pytest.fixture(scope="module")
def ban_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Bondy addresses put onto buildings (ways), in one process and on 1 and 2 workers
    with tiles of 150 m (a dozen groups cross a border); the reviewer map in parts of 3 000
    features, as a national run has it (parts of 20 000)."""
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("maps.publish.PART_SIZE", 3_000)
        for name, options in (("alone", []),
                              ("1 worker", ["--workers", "1", "--tile-size", "150"]),
                              ("2 workers", ["--workers", "2", "--tile-size", "150"])):
            out = tmp_path_factory.mktemp(name.replace(" ", "-"))
            assert main(["-q", "run", str(BAN), "--out", str(out), *options]) == 0
            runs[name] = out
    return runs


@pytest.mark.parametrize("workers", ["1 worker", "2 workers"])
def test_a_real_layer_gives_the_same_files_on_workers(ban_runs: dict[str, Path],
                                                      workers: str) -> None:
    alone, spread = ban_runs["alone"], ban_runs[workers]
    assert compare(alone, spread, alone, spread) == []  # every file, the map's parts included
    parts = sorted(p.name for p in (spread / "bondy-addresses-on-buildings" / "maps").iterdir())
    assert parts == ["001.html", "002.html", "003.html"]
    report = json.loads((spread / "bondy-addresses-on-buildings" / "report.json").read_text())
    assert report["counts"][CREATE] == 514 and report["counts"][MODIFY] == 91


def test_the_extract_is_kept_as_geoparquet_for_the_next_runs(ban_runs: dict[str, Path],
                                                             caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    out = ban_runs["2 workers"]
    monkeypatch.setattr("maps.publish.PART_SIZE", 3_000)  # as the runs compared with
    caches = list((out / ".cache" / "osm").iterdir())
    assert len(caches) == 1 and (caches[0] / "_osm.json").is_file()
    tiles = sorted(p.parent.name for p in caches[0].glob("tile=*/part.parquet"))
    assert tiles, "one GeoParquet part per tile"
    import geopandas as gpd

    frame = gpd.read_parquet(caches[0])  # one dataset, as any GeoParquet reader opens it
    assert frame.crs.to_epsg() == 4326 and {"type", "id", "tags", "tile"} <= set(frame.columns)
    with caplog.at_level(logging.INFO):
        assert main(["run", str(BAN), "--out", str(out), "--workers", "1", "--refresh"]) == 0
    assert "from the GeoParquet cache" not in caplog.text  # --refresh reads the extract again
    caplog.clear()
    shutil.rmtree(out / "bondy-addresses-on-buildings" / "work")  # no stage cache: fetch again
    with caplog.at_level(logging.INFO):
        assert main(["run", str(BAN), "--out", str(out), "--workers", "1"]) == 0
    assert "from the GeoParquet cache" in caplog.text
    assert compare(ban_runs["alone"], out, ban_runs["alone"], out) == []


def test_cluster_options_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(BAN), "--out", str(tmp_path), "--tile-size", "100"]) == 2
    assert "give --workers or --scheduler too" in " ".join(capsys.readouterr().err.split())
    assert main(["run", str(BAN), "--out", str(tmp_path), "--workers", "2", "--scheduler",
                 "tcp://127.0.0.1:1"]) == 2
    assert "--workers and --scheduler: give one" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(ProfileError, match="runs in one process"):
        conflate_on_cluster(None, [], OSM, CRS, matching(geometry="none"), RunFacts())


def test_a_running_cluster_is_reached_by_its_scheduler_address(
        caplog: pytest.LogCaptureFixture) -> None:
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1,
                      dashboard_address="127.0.0.1:0") as cluster, caplog.at_level(logging.INFO), \
            connected(ClusterSettings(scheduler=cluster.scheduler_address)) as dask_client:
        spread = conflate_on_cluster(dask_client, SOURCES, OSM, CRS, PROFILE, RunFacts(),
                                     tile_m=100.0)
    assert f"Dask scheduler {cluster.scheduler_address}, 2 worker(s)" in caplog.text
    assert decisions_json(spread) == decisions_json(conflate(SOURCES, OSM, CRS, PROFILE))
