"""Fault injection, the commit: SIGKILL at each rename a run makes (strace injects it, the
rename not done), from a run folder of generations and from one written by an older sig2osm
(plain files, converted at the first commit). Each time a reader sees the old set of outputs
or the complete new one, never a mix; no process outlives the kill; the next run cleans what
the killed one left."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from pipeline.kernel.generations import GENERATIONS
from tests.faults import (
    NAME,
    copy_out,
    is_complete_new_set,
    one_generation,
    sig2osm,
    visible_digests,
    wait_until_gone,
)


def _legacy(run_dir: Path) -> None:
    """The run folder as sig2osm wrote it before generations: plain files and folders."""
    current = one_generation(run_dir)
    for entry in list(run_dir.iterdir()):
        if entry.is_symlink():
            entry.unlink()
    for entry in current.iterdir():
        shutil.copytree(entry, run_dir / entry.name) if entry.is_dir() else \
            shutil.copy2(entry, run_dir / entry.name)
    shutil.rmtree(run_dir / GENERATIONS)


def _renames(trace: Path) -> int:
    lines = [line for line in trace.read_text().splitlines() if " rename(" in line]
    assert len({line.split()[0] for line in lines}) == 1, "renames in several processes"
    return len(lines)


@pytest.mark.parametrize("layout", ["generations", "older-sig2osm"])
def test_sigkill_at_each_rename_leaves_the_old_set_or_the_new_one(
        earlier: tuple[Path, Path, Path], tmp_path: Path, layout: str) -> None:
    _folder, _, new = earlier
    start = copy_out(earlier, tmp_path / "start")
    if layout == "older-sig2osm":
        _legacy(start)
    old = visible_digests(start)
    traced = copy_out(earlier, tmp_path / "traced") if layout == "generations" else None
    if traced is None:
        shutil.copytree(start.parent, tmp_path / "traced", symlinks=True)
        traced = tmp_path / "traced" / NAME
    done = sig2osm("-q", "run", new, "--out", traced.parent,
                   strace=["-o", str(tmp_path / "trace"), "-e", "trace=rename"])
    assert done.returncode == 0, done.stderr
    names = set(visible_digests(traced))
    count = _renames(tmp_path / "trace")
    assert count >= (2 if layout == "generations" else 10)
    # Every rename of a commit; of the one-time conversion (one rename per output, all alike),
    # the first two, the middle one and the last three.
    kills = range(1, count + 1) if layout == "generations" else sorted(
        {1, 2, count // 2, count - 2, count - 1, count})
    for k in kills:
        out = tmp_path / f"killed-{k}"
        shutil.copytree(start.parent, out, symlinks=True)
        killed = sig2osm("-q", "run", new, "--out", out, strace=[
            "-e", f"inject=rename:error=ENOENT:signal=SIGKILL:when={k}"])
        assert killed.returncode == -signal.SIGKILL, (k, killed.stderr)
        assert not wait_until_gone(str(new)), f"a process outlived the run killed at rename {k}"
        run_dir = out / NAME
        state = visible_digests(run_dir)
        assert state == old or is_complete_new_set(run_dir, names), \
            f"killed at rename {k} of {count}: a mix of old and new outputs"
        if layout == "older-sig2osm" and k not in (count // 2, count):
            continue  # the conversion's renames are alike: the next run is tried on two of them
        again = sig2osm("-q", "run", new, "--out", out)  # cleans what the killed run left
        assert again.returncode == 0, again.stderr
        assert is_complete_new_set(run_dir, names)
        assert len(list((run_dir / GENERATIONS).iterdir())) == 1
        assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
