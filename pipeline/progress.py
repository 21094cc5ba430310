"""Progress bars on stderr for steps that can take more than a few seconds.

Shown only on a terminal, when logging is at INFO or more verbose (`-q` hides them), and by
the main process only (two bars drawn at once from two processes would garble each other).
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    quiet = (logging.getLogger().getEffectiveLevel() > logging.INFO or not sys.stderr.isatty()
             or multiprocessing.parent_process() is not None)
    yield from tqdm(items, desc=desc, total=total, unit=unit, disable=quiet, leave=False,
                    mininterval=0.5, file=sys.stderr)
