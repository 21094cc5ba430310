"""One run folder, one writer: an advisory lock (flock) held while a command writes there.

The lock is the file `<folder>/.lock`; the holder writes who it is (pid, host, start time,
command) into it, so a second run can say who holds the folder. The kernel releases the lock
when the holder ends, however it ends (even killed), so a lock is never left behind; the next
holder then removes what the killed run left (`pipeline.kernel.generations.clean_stale`).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from pipeline.kernel.errors import RunFolderBusy

LOCK_FILE = ".lock"


class RunFolderLock:
    """`with RunFolderLock(folder, wait=0):` holds `folder` for this process. A second holder
    waits up to `wait` seconds, then fails with `RunFolderBusy` naming the holder."""

    def __init__(self, folder: Path, wait: float = 0.0, file_name: str = LOCK_FILE,
                 poll: float = 0.2) -> None:
        self.folder = folder
        self.path = folder / file_name
        self.wait = wait
        self.poll = poll
        self._fd: int | None = None

    def __enter__(self) -> RunFolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        ends = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= ends:
                    holder = _holder(fd)
                    os.close(fd)
                    raise RunFolderBusy(self._busy_message(holder)) from None
                time.sleep(self.poll)
        self._fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_me()).encode("utf-8"), 0)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _busy_message(self, holder: dict[str, object]) -> str:
        who = (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started "
               f"{holder.get('started', '?')} ({holder.get('command', '?')})" if holder
               else "a process that has not said who it is yet")
        waited = f" after waiting {self.wait:g} s" if self.wait else ""
        return (f"{self.folder} is being written by another sig2osm run: {who}. Nothing was "
                f"written{waited}; wait for that run to end, or give --wait SECONDS.")


def _me() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": " ".join(["sig2osm", *sys.argv[1:]])}


def _holder(fd: int) -> dict[str, object]:
    """What the holder wrote about itself (it may not have written yet: asked twice)."""
    for _ in range(2):
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "null")
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
        time.sleep(0.05)
    return {}
