"""A run folder's outputs change as one set: each set is a generation folder, and one rename
switches which generation is current.

    out/<name>/.generations/<id>/     a complete set of outputs, written in full
    out/<name>/.current               symbolic link to the current generation
    out/<name>/changes.osc            symbolic link to .current/changes.osc (one per output)

A new set is written into a new generation folder beside the current one (by one process or
several: a run builds its review file and maps in a second process). `commit` then makes it
current by renaming a new `.current` link over the old one: a reader opening
`out/<name>/changes.osc` gets the old file before that instant and the new one after it, and a
process killed at any instruction leaves the old set or the new set, never a mix. What a killed
run left (a half-written generation, links of names the set no longer has) is removed by the
next run, under the run folder's lock (`clean_stale`).

A run folder written by an older sig2osm (plain files) is converted at the first commit: its
files are hard-linked into a first generation and replaced by links with the same content.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pipeline.kernel.atomic import STAGING_PREFIX, write_new

log = logging.getLogger(__name__)

GENERATIONS = ".generations"
CURRENT = ".current"


def current_generation(folder: Path) -> Path | None:
    """The generation folder the outputs of `folder` resolve to, if any."""
    link = folder / CURRENT
    if not link.is_symlink():
        return None
    target = folder / os.readlink(link)
    return target if target.is_dir() else None


class Generation:
    """The next set of outputs of `folder`, written beside the current one until `commit`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        root = folder / GENERATIONS
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.path = Path(tempfile.mkdtemp(prefix=f"{stamp}-{os.getpid()}-", dir=root))

    def write(self, files: Mapping[str, str | bytes]) -> None:
        """Write files (relative paths) into the generation; each is complete and synced."""
        for name, content in files.items():
            write_new(self.path / name, content)

    def carry_over(self, keep: Callable[[str], bool]) -> None:
        """Hard-link into this generation the current files that it does not have yet and that
        `keep(relative path)` accepts (a stage run alone replaces only its own files)."""
        current = current_generation(self.folder)
        if current is None:
            return
        for old in sorted(p for p in current.rglob("*") if p.is_file()):
            name = old.relative_to(current).as_posix()
            new = self.path / name
            if keep(name) and not new.exists():
                new.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(old, new)

    def commit(self) -> list[Path]:
        """Make this generation the current one; returns the output paths as users see them."""
        _adopt_plain_outputs(self.folder, _top_names(self.path))
        names = _top_names(self.path)
        for name in names:
            _ensure_link(self.folder, name)  # dangling (so: absent) until the switch below
        _sync_tree(self.path)
        _switch(self.folder, self.path)
        _drop_dangling_links(self.folder)
        _remove_other_generations(self.folder)
        return sorted(self.folder / p.relative_to(self.path)
                      for p in self.path.rglob("*") if p.is_file())

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def commit_files(folder: Path, files: Mapping[str, str | bytes],
                 keep: Callable[[str], bool] = lambda name: False) -> list[Path]:
    """A new set of outputs for `folder`: `files`, plus the current files `keep` accepts."""
    generation = Generation(folder)
    try:
        generation.write(files)
        generation.carry_over(keep)
    except BaseException:
        generation.discard()
        raise
    return generation.commit()


def clean_stale(folder: Path) -> None:
    """Remove what a killed run left in `folder`: generations other than the current one,
    links to names the current set lacks, staging folders and temporary files of older
    versions. Call it only while holding the run folder's lock."""
    if not folder.is_dir():
        return
    _remove_other_generations(folder)
    _drop_dangling_links(folder)
    for stale in folder.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    for tmp in [*folder.glob(".*.tmp"), *folder.glob("work/.*.tmp")]:
        if tmp.is_dir() and not tmp.is_symlink():  # a folder being replaced by a link
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


# --- the steps of a commit -------------------------------------------------------------------


def _top_names(generation: Path) -> list[str]:
    return sorted(p.name for p in generation.iterdir())


def _link_target(name: str) -> str:
    return f"{CURRENT}/{name}"


def _ensure_link(folder: Path, name: str) -> None:
    """`folder/name` as a link through `.current`."""
    path = folder / name
    if path.is_symlink() and os.readlink(path) == _link_target(name):
        return
    if path.is_symlink():  # a link of another kind (made by hand): replaced in one rename
        _replace_with_link(path, _link_target(name))
    elif not path.exists():
        os.symlink(_link_target(name), path)


def _switch(folder: Path, generation: Path) -> None:
    """The one instant the outputs change: a new `.current` renamed over the old one."""
    link = folder / CURRENT
    target = os.path.relpath(generation, folder)
    if link.is_dir() and not link.is_symlink():  # a copy made through the links (cp -rL)
        _exchange_with_link(link, target)
    else:
        _replace_with_link(link, target)
    _sync_folder(folder)


def _replace_with_link(path: Path, target: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _drop_dangling_links(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_symlink() and path.name != CURRENT and not path.exists() and \
                os.readlink(path).startswith(CURRENT + "/"):
            path.unlink()


def _remove_other_generations(folder: Path) -> None:
    root = folder / GENERATIONS
    if not root.is_dir():
        return
    current = current_generation(folder)
    for path in root.iterdir():
        if current is None or path.resolve() != current.resolve():
            shutil.rmtree(path, ignore_errors=True)


def _adopt_plain_outputs(folder: Path, names: list[str]) -> None:
    """Plain files and folders of an older sig2osm where this set puts links: hard-linked into
    a first generation made current, then each replaced by a link to the same content."""
    plain = [n for n in names if (folder / n).exists() and not (folder / n).is_symlink()]
    if not plain:
        return
    first = current_generation(folder)
    if first is None:
        first = Generation(folder).path
        for name in plain:
            _link_tree(folder / name, first / name)
        _sync_tree(first)
        _switch(folder, first)
    for name in plain:
        path = folder / name
        if not (first / name).exists():
            _link_tree(path, first / name)
        if path.is_dir():
            _exchange_with_link(path, _link_target(name))
        else:
            _replace_with_link(path, _link_target(name))
    log.info("%s: outputs of an older sig2osm moved into %s", folder, first)


def _link_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for child in source.iterdir():
            _link_tree(child, target / child.name)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(source, target)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copy2(source, target)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange_with_link(path: Path, target: str) -> None:
    """Replace the folder `path` by a link in one step (Linux renameat2 RENAME_EXCHANGE); where
    that is missing, in two renames."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None or renameat2(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD,
                                      os.fsencode(path), _RENAME_EXCHANGE) != 0:
        old = path.with_name(f".{path.name}.{os.getpid()}.old.tmp")
        os.replace(path, old)
        os.replace(tmp, path)
        tmp = old
    shutil.rmtree(tmp, ignore_errors=True)


def _sync_tree(root: Path) -> None:
    """The generation's folders reach the disk before it becomes current (its files were
    synced as they were written)."""
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
