"""What every fault-injection test checks: a clear error (its exit code, and a message naming
what failed), no process left behind, and the outputs of an earlier run intact (sha256 of
every file a user sees, before and after)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import osmium

from tests.conftest import DATA, EXAMPLES

GRENOBLE = EXAMPLES / "grenoble" / "parking-meters.yml"


def grenoble_profile(folder: Path, name: str = "grenoble-parking-meters", **replace: str) -> Path:
    """The Grenoble example in `folder` (absolute data paths), with text replaced."""
    text = GRENOBLE.read_text(encoding="utf-8").replace("../../../shared/data", str(DATA))
    text = text.replace("name: grenoble-parking-meters", f"name: {name}")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = folder / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    return path


def visible_digests(run_dir: Path) -> dict[str, str]:
    """sha256 of every file a user sees in the run folder (through its links; hidden entries
    and the stage caches of work/ aside)."""
    seen = {}
    for root, dirs, files in os.walk(run_dir, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "work"]
        for name in files:
            path = Path(root) / name
            if not name.startswith(".") and path.is_file():
                seen[path.relative_to(run_dir).as_posix()] = hashlib.sha256(
                    path.read_bytes()).hexdigest()
    return seen


def one_generation(run_dir: Path) -> Path:
    """The generation every visible file resolves to; fails if they resolve to several."""
    homes = set()
    for root, dirs, files in os.walk(run_dir, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "work"]
        for name in files:
            real = (Path(root) / name).resolve()
            if not name.startswith(".") and real.is_file():
                homes.add(real.relative_to(run_dir.resolve()).parts[:2])
    assert len(homes) == 1, f"files of several generations are visible: {homes}"
    return run_dir / Path(*homes.pop())


def processes_mentioning(token: str) -> list[int]:
    """Processes (other than this one) whose command line holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if token in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


# Python's own helper, started once per interpreter by the first process pool (a Dask
# LocalCluster of an earlier test in the same pytest worker) and kept until it exits: not a
# process a run left behind.
RESOURCE_TRACKER = b"multiprocessing.resource_tracker"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and \
                    (entry / "stat").read_text().split(") ")[-1].split()[1] == str(pid) and \
                    RESOURCE_TRACKER not in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


def wait_until_gone(token: str, seconds: float = 10.0) -> list[int]:
    """The processes still holding `token` after waiting up to `seconds` for them to end."""
    ends = time.monotonic() + seconds
    while (left := processes_mentioning(token)) and time.monotonic() < ends:
        time.sleep(0.05)
    return left


def sig2osm(*args: str | Path, strace: list[str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`sig2osm ARGS` in its own process; under `strace -f` with these options, if given (its
    trace to /dev/null unless they say `-o FILE`)."""
    command = [sys.executable, "-m", "pipeline.cli", *map(str, args)]
    if strace is not None:
        output = [] if "-o" in strace else ["-o", "/dev/null"]
        command = [strace_path(), "-f", "-qq", *output, *strace, *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[1])


def strace_path() -> str:
    path = shutil.which("strace")
    assert path, "strace is missing: `make test` installs it (Debian package strace)"
    return path


NAME = "grenoble-parking-meters"


def earlier_run(folder: Path) -> tuple[Path, Path, Path]:
    """`folder` with the Grenoble profile, its changed twin (`new_profile`), and `out/` after
    one run of the first."""
    profile = grenoble_profile(folder)
    done = sig2osm("-q", "run", profile, "--out", folder / "out")
    assert done.returncode == 0, done.stderr
    return folder, profile, new_profile(profile)


def new_profile(old: Path) -> Path:
    """The same run with other outputs (another changeset comment)."""
    new = old.with_name("new.yml")
    new.write_text(old.read_text().replace("Import des horodateurs", "Import (2) des horodateurs"))
    return new


def copy_out(earlier: tuple[Path, Path, Path], to: Path) -> Path:
    shutil.copytree(earlier[0] / "out", to, symlinks=True)
    return to / NAME


def is_complete_new_set(run_dir: Path, names: set[str]) -> bool:
    """Every visible file comes from one generation holding the whole new set."""
    one_generation(run_dir)
    seen = visible_digests(run_dir)
    if set(seen) != names:
        return False
    tags = json.loads((run_dir / "changeset-tags.json").read_text())
    assert sum(1 for _ in osmium.FileProcessor(str(run_dir / "changes.osc"))) > 0  # reads back
    json.loads((run_dir / "report.json").read_text())
    return "Import (2)" in tags["comment"]


