"""Atomic writes: a file is either its old content or its complete new content, never half.
(The files of a run folder change together: see `pipeline.kernel.generations`.)"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipeline.kernel.errors import OutputError

STAGING_PREFIX = ".staging-"  # staging folders of sig2osm before generations, removed


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write `content` to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        _write_synced(fd, tmp, content, path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_synced(fd: int, path: str, content: str | bytes, shown: Path) -> None:
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        # mkstemp creates 0600; outputs are meant to be shared, so use the usual umask mode.
        os.chmod(path, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:  # a full disk, a quota, a read-only file system
        raise OutputError(f"{shown}: cannot be written ({exc.strerror or exc}); earlier outputs "
                          "are intact. Free some space or choose another --out.") from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_new(path: Path, content: str | bytes) -> None:
    """Write a file that must not exist yet (in a folder no reader sees: a generation being
    written, see `pipeline.kernel.generations`), complete and synced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    _write_synced(fd, str(path), content, path)
