"""Work done in a second process while this one goes on: a run has two cores. The layer can be
read while the OSM extract is, and the review file and maps need only the decisions, not the
change files being built and checked meanwhile (see `pipeline.stages.run_all`).

The second process is forked, so it starts at once with the data in memory (nothing is pickled
on the way in), and what comes back is small: the layer read, or nothing when the work wrote
its files into a staging folder that this process moves into place once everything succeeded.
Without `fork` (Windows), or with SIG2OSM_SERIAL set, the work simply runs in this process when
its result is asked for.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Generic, TypeVar

from pipeline.errors import Sig2osmError

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
            self._process = context.Process(target=_serve, args=(work, sender), name=name,
                                            daemon=True)
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


def _serve(work: Callable[[], object], sender: Connection) -> None:
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
