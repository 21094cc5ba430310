"""What every fault-injection test checks: a clear error (its exit code, and a message naming
what failed), no process left behind, and the outputs of an earlier run intact (sha256 of
every file a user sees, before and after)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and \
                    (entry / "stat").read_text().split(") ")[-1].split()[1] == str(pid):
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
    """`sig2osm ARGS` in its own process (under strace with these options, if given)."""
    command = [sys.executable, "-m", "pipeline.cli", *map(str, args)]
    if strace is not None:
        command = [strace_path(), "-f", "-qq", "-o", "/dev/null", *strace, *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[1])


def strace_path() -> str:
    path = shutil.which("strace")
    assert path, "strace is missing: `make test` installs it (Debian package strace)"
    return path
