"""Atomic writes: a file is either its old content or its complete new content, never half;
the files of a stage are all new or all old."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

STAGING_PREFIX = ".staging-"


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write `content` to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        _write_synced(fd, tmp, content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_synced(fd: int, path: str, content: str | bytes) -> None:
    data = content.encode("utf-8") if isinstance(content, str) else content
    # mkstemp creates 0600; outputs are meant to be shared, so use the usual umask mode.
    os.chmod(path, 0o666 & ~_umask())
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Staging:
    """Files written in full into a hidden folder inside `folder`, then moved into place
    together (renames within one file system: instant and atomic each). Until `commit`,
    the files of an earlier run stay as they were; `discard` drops everything staged.

    Several processes may write into one staging folder (a run builds its review file and
    maps in a second process); the one that created it commits or discards it."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(STAGING_PREFIX + "*"):  # left by a run that was killed
            shutil.rmtree(stale, ignore_errors=True)
        self.folder = folder
        self.path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))

    def write(self, files: Mapping[str, str | bytes]) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            _write_synced(fd, str(target), content)

    def commit(self) -> list[Path]:
        """Move every staged file to its place; returns the files written."""
        written = []
        for staged in sorted(p for p in self.path.rglob("*") if p.is_file()):
            target = self.folder / staged.relative_to(self.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            written.append(target)
        self.discard()
        return written

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def write_all_atomic(folder: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write every file of a stage, all at once: callers build all contents first, and a
    failure while writing (a full disk) leaves the earlier outputs untouched."""
    staging = Staging(folder)
    try:
        staging.write(files)
    except BaseException:
        staging.discard()
        raise
    return staging.commit()
