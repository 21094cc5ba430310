"""Work done in a second process while this one goes on: a run has two cores. The layer can be
read while the OSM extract is, and the review file and maps need only the decisions, not the
change files being built and checked meanwhile (see `pipeline.runner`).

The second process is forked, so it starts at once with the data in memory (nothing is pickled
on the way in), and what comes back is small: the layer read, or nothing when the work wrote
its files into a new generation of the run folder that this process makes current once
everything succeeded.
Without `fork` (Windows), or with SIG2OSM_SERIAL set, the work simply runs in this process when
its result is asked for.

The second process never outlives this one: on Linux the kernel kills it when its parent dies
(PR_SET_PDEATHSIG), elsewhere a thread of it watches for its parent to be gone; and it holds no
copy of the reading end of its result pipe, so a parent that dies also breaks the pipe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Generic, TypeVar

from pipeline.kernel.errors import Sig2osmError

log = logging.getLogger(__name__)
T = TypeVar("T")


class BackgroundError(Sig2osmError, RuntimeError):
    """The second process ended without a result (killed, or crashed in native code)."""

    exit_code = 70  # as an internal error: nothing the user's data did


class Background(Generic[T]):
    """`work()` running in a forked process; `result()` waits for it (and raises what it
    raised), `cancel()` stops it."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._work, self.name = work, name
        self._process: multiprocessing.process.BaseProcess | None = None
        self._receiver: Connection | None = None
        if "fork" in multiprocessing.get_all_start_methods() and not os.environ.get(
                "SIG2OSM_SERIAL"):
            context = multiprocessing.get_context("fork")
            self._receiver, sender = context.Pipe(duplex=False)
            self._process = context.Process(target=_serve, name=name, daemon=True,
                                            args=(work, sender, self._receiver, os.getpid()))
            self._process.start()
            sender.close()  # the child holds its own end; EOF then means it is gone

    def result(self) -> T:
        if self._process is None or self._receiver is None:
            return self._work()
        try:
            outcome, value = self._receiver.recv()  # before join: a big result fills the pipe
        except EOFError:
            self._process.join()
            raise BackgroundError(f"the {self.name} process ended without a result (exit code "
                                  f"{self._process.exitcode}); nothing of it was written") from None
        finally:
            self._receiver.close()
        self._process.join()
        if outcome == "error":
            raise value
        return value

    def cancel(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join()


def _serve(work: Callable[[], object], sender: Connection, receiver: Connection,
           parent: int) -> None:
    receiver.close()  # the parent's end: were it open here too, a dead parent would not break it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # `cancel` ends this process, nothing to clean
    _die_with(parent)
    try:
        result: tuple[str, object] = ("ok", work())
    except BaseException as exc:  # sent back and raised by result(), where it can be reported
        log.debug("%s failed", multiprocessing.current_process().name, exc_info=True)
        result = ("error", exc)
    try:
        sender.send(result)
    except Exception as exc:  # a result or an error that cannot be pickled
        sender.send(("error", BackgroundError(f"the {multiprocessing.current_process().name} "
                                              f"process could not send back its result: {exc}")))
    sender.close()


_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """End this process when `parent` ends (killed included)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # it died before the request took effect
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
