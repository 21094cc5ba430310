"""Fault injection, the run folder: SIGKILL at each rename of the commit (strace injects it),
two runs on one folder at once, a parent killed mid-run, a full disk. Each time a reader sees
the old set of outputs or the new one, never a mix; no process is left; the next run cleans
what the killed one left; a refused run writes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.kernel.generations import GENERATIONS
from tests.faults import (
    NAME,
    children_of,
    copy_out,
    grenoble_profile,
    is_complete_new_set,
    one_generation,
    processes_mentioning,
    sig2osm,
    strace_path,
    visible_digests,
    wait_until_gone,
)


def _holding(out: Path, timeout: float = 60) -> dict[str, object]:
    """The holder of the run folder's lock, once a run has taken it."""
    lock = out / NAME / ".lock"
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        text = lock.read_text() if lock.is_file() else ""
        if text:
            return dict(json.loads(text))
        time.sleep(0.02)
    raise AssertionError("no run took the lock")


def _slow_run(profile: Path, out: Path) -> subprocess.Popen[str]:
    """A run that waits 5 s before the rename that makes its outputs current."""
    command = [strace_path(), "-f", "-qq", "-o", "/dev/null", "-e",
               "inject=rename:delay_enter=5s:when=1", sys.executable, "-m", "pipeline.cli",
               "-q", "run", str(profile), "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])


def test_a_second_run_is_refused_at_once_and_the_first_one_completes(
        earlier: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Before: the second run, failing, deleted the first one's staging folder, and the first
    reported success with old change files beside its new review file and map."""
    _folder, old, new = earlier
    run_dir = copy_out(earlier, tmp_path / "out")
    names = set(visible_digests(run_dir))
    first = _slow_run(new, tmp_path / "out")
    holder = _holding(tmp_path / "out")
    second = sig2osm("-q", "run", old, "--out", tmp_path / "out")
    assert second.returncode == 75
    assert f"is being written by another sig2osm run: pid {holder['pid']} on host " in \
        " ".join(second.stderr.split())
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    assert is_complete_new_set(run_dir, names)
    assert not wait_until_gone(str(new))


def test_with_wait_the_second_run_waits_for_the_first(earlier: tuple[Path, Path, Path],
                                                      tmp_path: Path) -> None:
    _folder, old, new = earlier
    run_dir = copy_out(earlier, tmp_path / "out")
    first = _slow_run(new, tmp_path / "out")
    _holding(tmp_path / "out")
    second = sig2osm("-q", "run", old, "--out", tmp_path / "out", "--wait", "60")
    assert first.wait(timeout=120) == 0
    assert second.returncode == 0, second.stderr
    one_generation(run_dir)
    assert "Import des horodateurs" in (run_dir / "changeset-tags.json").read_text()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_parent_killed_mid_run_leaves_no_process_and_its_outputs(
        earlier: tuple[Path, Path, Path], tmp_path: Path, sig: signal.Signals) -> None:
    """Before: the forked second process stayed blocked on its result pipe for ever, holding
    the caller's stdout open."""
    _folder, _, new = earlier
    run_dir = copy_out(earlier, tmp_path / "out")
    before = visible_digests(run_dir)
    run = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "-q", "run", str(new), "--out",
                            str(tmp_path / "out"), "--refresh"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=Path(__file__).resolve().parents[1])
    ends = time.monotonic() + 60
    while not children_of(run.pid) and time.monotonic() < ends and run.poll() is None:
        time.sleep(0.005)
    assert children_of(run.pid), "the run ended before its second process was seen"
    os.kill(run.pid, sig)
    _stdout, stderr = run.communicate(timeout=30)  # returns: nothing holds the pipe any more
    assert run.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 143)
    if sig == signal.SIGTERM:
        assert "terminated (SIGTERM); earlier outputs are intact" in stderr
    assert not wait_until_gone(str(new))
    assert visible_digests(run_dir) == before
    again = sig2osm("-q", "run", new, "--out", tmp_path / "out")
    assert again.returncode == 0, again.stderr
    assert len(list((run_dir / GENERATIONS).iterdir())) == 1


def test_a_full_disk_is_a_clear_error_and_changes_nothing(earlier: tuple[Path, Path, Path],
                                                          tmp_path: Path) -> None:
    _folder, _, new = earlier
    run_dir = copy_out(earlier, tmp_path / "out")
    before = visible_digests(run_dir)
    full = sig2osm("-q", "run", new, "--out", tmp_path / "out", strace=[
        "-e", "inject=fsync:error=ENOSPC"])
    assert full.returncode == 73, full.stderr
    message = " ".join(full.stderr.split())
    assert "cannot be written (No space left on device); earlier outputs are intact" in message
    assert visible_digests(run_dir) == before
    assert not processes_mentioning(str(new))


def test_a_run_folder_that_sig2osm_did_not_make_is_left_alone(tmp_path: Path) -> None:
    profile = grenoble_profile(tmp_path, name="pdf")
    (tmp_path / "out" / "pdf").mkdir(parents=True)
    (tmp_path / "out" / "pdf" / "map.gpkg").write_text("someone's file")
    done = sig2osm("-q", "run", profile, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert "is a folder that sig2osm did not make" in " ".join(done.stderr.split())
    assert sorted(p.name for p in (tmp_path / "out" / "pdf").iterdir()) == ["map.gpkg"]
