"""Outputs are replaced all at once or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from exports.atomic import Staging, write_all_atomic, write_atomic


def test_staged_files_move_into_place_together(tmp_path: Path) -> None:
    (tmp_path / "changes.osc").write_text("old")
    staging = Staging(tmp_path)
    staging.write({"changes.osc": "new", "chunks/001.osc": "chunk"})
    assert (tmp_path / "changes.osc").read_text() == "old"  # nothing replaced before commit
    written = staging.commit()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "changes.osc", "chunks/001.osc"]
    assert (tmp_path / "changes.osc").read_text() == "new"
    assert not list(tmp_path.glob(".staging-*"))


def test_discarded_files_leave_the_old_ones(tmp_path: Path) -> None:
    (tmp_path / "map.html").write_text("old")
    staging = Staging(tmp_path)
    staging.write({"map.html": "new"})
    staging.discard()
    assert (tmp_path / "map.html").read_text() == "old"
    assert not list(tmp_path.glob(".staging-*"))


def test_a_failure_while_writing_replaces_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(TypeError):
        write_all_atomic(tmp_path, {"a.txt": "new", "b.txt": 42})  # type: ignore[dict-item]
    assert (tmp_path / "a.txt").read_text() == "old"
    assert not (tmp_path / "b.txt").exists() and not list(tmp_path.glob(".staging-*"))


def test_a_staging_folder_left_by_a_killed_run_is_removed(tmp_path: Path) -> None:
    (tmp_path / ".staging-dead").mkdir()
    (tmp_path / ".staging-dead" / "map.html").write_text("half")
    Staging(tmp_path).discard()
    assert not list(tmp_path.glob(".staging-*"))


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "one.txt", "x")
        write_all_atomic(tmp_path, {"two.txt": "y"})
    finally:
        os.umask(mask)
    for name in ("one.txt", "two.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
