"""The second process of a run: its result comes back, its errors are raised here, a crash is a
clear error, and without fork the work runs in this process."""

from __future__ import annotations

import os
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest

from bench.same_outputs import compare
from pipeline.background import Background, BackgroundError
from pipeline.cli import main
from pipeline.kernel.errors import (
    FetchError,
    InputError,
    InputNotFoundError,
    OutputError,
    RunFolderBusy,
    SourceDownloadError,
)

ROOT = Path(__file__).resolve().parents[1]


def _pid_and_text() -> tuple[int, str]:
    return os.getpid(), "é" * 300_000  # larger than a pipe's buffer


def test_the_result_comes_back_from_another_process() -> None:
    pid, text = Background(_pid_and_text, "test").result()
    assert pid != os.getpid()
    assert text == "é" * 300_000


def _fails() -> None:
    raise InputError("layer 'x' has no field 'ID'")


def test_an_error_in_the_second_process_is_raised_as_it_was() -> None:
    with pytest.raises(InputError, match="no field 'ID'"):
        Background(_fails, "test").result()


def _crashes() -> None:
    os._exit(3)  # as a crash in native code would: no result, no exception


def test_a_process_that_dies_is_a_clear_error() -> None:
    with pytest.raises(BackgroundError, match=r"test process ended without a result \(exit code 3\)"):
        Background(_crashes, "test").result()


def test_in_serial_mode_the_work_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIG2OSM_SERIAL", "1")
    assert Background(_pid_and_text, "test").result()[0] == os.getpid()


def _sleeps() -> None:
    import time

    time.sleep(60)


def test_cancel_stops_the_second_process() -> None:
    work = Background(_sleeps, "test")
    work.cancel()
    assert work._process is not None and not work._process.is_alive()


def test_a_layer_comes_back_from_the_ingest_process_unchanged() -> None:
    import pickle

    import shapely

    from pipeline.ingest import SourceFeature, SourceLayer

    layer = SourceLayer((
        SourceFeature("1", shapely.Point(-4.486, 48.39), {"amenity": "bench"}, {"ID": 1}),
        SourceFeature("2", None, {}, {"ID": 2, "NOM": "Kerinou"}, "no geometry"),
        SourceFeature("3", shapely.from_wkt("POLYGON ((0 0, 1 0, 1 1, 0 0), (0.5 0.2, 0.6 0.2, "
                                            "0.6 0.3, 0.5 0.2))"), {"leisure": "park"}, {}),
        SourceFeature("4", shapely.from_wkt("LINESTRING Z (0 0 1, 1 1 2)"), {}, {"x": None}),
    ), "EPSG:2154", {"path": "layer.gpkg"})
    again = pickle.loads(pickle.dumps(layer))
    assert again == layer
    assert [f.geometry.wkt if f.geometry else None for f in again.features] == [
        f.geometry.wkt if f.geometry else None for f in layer.features]


def test_a_whole_run_in_one_process_writes_what_two_write(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """SIG2OSM_SERIAL (and systems without fork): the branch of the second process runs here,
    on its own state: freeing its values must not free the export's."""
    profile = ROOT / "examples" / "bondy" / "parking-meters.yml"
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "two")]) == 0
    monkeypatch.setenv("SIG2OSM_SERIAL", "1")
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "one")]) == 0
    assert compare(tmp_path / "two", tmp_path / "one", tmp_path / "two", tmp_path / "one") == []


def _file_missing() -> None:
    raise InputNotFoundError("source.path: no such file: /nowhere/layer.gpkg")


def test_our_errors_come_back_once_dask_has_changed_how_exceptions_pickle() -> None:
    """A run on workers imports Dask, which installs tblib's pickling of every exception; an
    error that is also an OSError (a missing file) must still come back as itself."""
    import distributed  # noqa: F401  (installs tblib's pickling of exceptions)

    with pytest.raises(InputNotFoundError, match="no such file") as raised:
        Background(_file_missing, "test").result()
    assert raised.value.exit_code == 3
    for kind in (SourceDownloadError, FetchError, OutputError, RunFolderBusy):
        again = ForkingPickler.loads(ForkingPickler.dumps(kind("a message")))
        assert type(again) is kind and str(again) == "a message"
