"""The second process of a run: its result comes back, its errors are raised here, a crash is a
clear error, and without fork the work runs in this process."""

from __future__ import annotations

import os

import pytest

from pipeline.background import Background, BackgroundError
from pipeline.errors import InputError


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
