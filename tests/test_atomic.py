"""Outputs are replaced all at once or not at all: files written atomically, a run folder's
files switched as one set (generations), one writer per run folder (the lock)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline.kernel.atomic import write_atomic
from pipeline.kernel.errors import OutputError, RunFolderBusy
from pipeline.kernel.generations import (
    CURRENT,
    GENERATIONS,
    Generation,
    clean_stale,
    commit_files,
    current_generation,
)
from pipeline.run_lock import RunFolderLock


def _visible(folder: Path) -> dict[str, str]:
    """What a user sees in `folder`: every file outside the hidden entries, through links."""
    seen = {}
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(root) / name
            if not name.startswith(".") and path.is_file():
                seen[path.relative_to(folder).as_posix()] = path.read_text()
    return seen


def test_a_generation_becomes_visible_all_at_once(tmp_path: Path) -> None:
    commit_files(tmp_path, {"changes.osc": "old", "report.json": "old"})
    generation = Generation(tmp_path)
    generation.write({"changes.osc": "new", "chunks/001.osc": "chunk"})
    assert _visible(tmp_path) == {"changes.osc": "old", "report.json": "old"}  # before commit
    written = generation.commit()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "changes.osc", "chunks/001.osc"]
    assert _visible(tmp_path) == {"changes.osc": "new", "chunks/001.osc": "chunk"}
    assert (tmp_path / "changes.osc").is_symlink()
    assert os.readlink(tmp_path / "changes.osc") == f"{CURRENT}/changes.osc"
    assert len(list((tmp_path / GENERATIONS).iterdir())) == 1  # the old one is gone


def test_discarded_files_leave_the_old_ones(tmp_path: Path) -> None:
    commit_files(tmp_path, {"map.html": "old"})
    generation = Generation(tmp_path)
    generation.write({"map.html": "new"})
    generation.discard()
    assert _visible(tmp_path) == {"map.html": "old"}
    assert [current_generation(tmp_path)] == list((tmp_path / GENERATIONS).iterdir())


def test_a_failure_while_writing_replaces_nothing(tmp_path: Path) -> None:
    commit_files(tmp_path, {"a.txt": "old"})
    with pytest.raises(TypeError):
        commit_files(tmp_path, {"a.txt": "new", "b.txt": 42})  # type: ignore[dict-item]
    assert _visible(tmp_path) == {"a.txt": "old"}
    assert len(list((tmp_path / GENERATIONS).iterdir())) == 1


def test_kept_files_are_carried_into_the_next_set(tmp_path: Path) -> None:
    commit_files(tmp_path, {"map.html": "map", "changes.osc": "old", "chunks/002.osc": "old"})
    commit_files(tmp_path, {"changes.osc": "new", "chunks/001.osc": "new"},
                 keep=lambda name: not name.startswith("chunks/"))
    assert _visible(tmp_path) == {"map.html": "map", "changes.osc": "new",
                                  "chunks/001.osc": "new"}


def test_what_a_killed_run_left_is_removed(tmp_path: Path) -> None:
    commit_files(tmp_path, {"report.json": "old"})
    half = Generation(tmp_path)  # killed while writing: never committed
    half.write({"report.json": "half", "new.txt": "half"})
    os.symlink(f"{CURRENT}/new.txt", tmp_path / "new.txt")  # killed after linking a new name
    (tmp_path / ".staging-dead").mkdir()  # left by an older sig2osm
    assert _visible(tmp_path) == {"report.json": "old"}
    clean_stale(tmp_path)
    assert not half.path.exists() and not (tmp_path / "new.txt").is_symlink()
    assert not list(tmp_path.glob(".staging-*"))
    assert _visible(tmp_path) == {"report.json": "old"}


def test_outputs_of_an_older_sig2osm_are_taken_over(tmp_path: Path) -> None:
    (tmp_path / "changes.osc").write_text("old")
    (tmp_path / "chunks").mkdir()
    (tmp_path / "chunks" / "001.osc").write_text("old chunk")
    (tmp_path / "notes.txt").write_text("mine")  # not an output: left alone
    commit_files(tmp_path, {"changes.osc": "new", "chunks/001.osc": "new chunk"})
    assert _visible(tmp_path) == {"changes.osc": "new", "chunks/001.osc": "new chunk",
                                  "notes.txt": "mine"}
    assert (tmp_path / "chunks").is_symlink() and not (tmp_path / "notes.txt").is_symlink()


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "one.txt", "x")
        commit_files(tmp_path, {"two.txt": "y"})
    finally:
        os.umask(mask)
    for name in ("one.txt", "two.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_a_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    from pipeline.kernel.atomic import _write_synced

    fd = os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC
    with pytest.raises(OutputError, match=r"report\.json: cannot be written \(No space left"):
        _write_synced(fd, "/dev/full", "x" * 10000, tmp_path / "report.json")


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    holder = rf"pid {os.getpid()} on host .+ started .+ \(sig2osm.*\)\. Nothing was written"
    with RunFolderLock(tmp_path), pytest.raises(RunFolderBusy, match=holder), \
            RunFolderLock(tmp_path, wait=0.3, poll=0.05):
        pass
    with RunFolderLock(tmp_path):  # released
        pass
