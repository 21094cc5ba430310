"""The error a map builder raises (bad map settings or unusable map input)."""

from __future__ import annotations

from pipeline.kernel.errors import Sig2osmError


class MapError(Sig2osmError, ValueError):
    """A map cannot be built: unknown locale or symbol, bad colour, unreadable map input."""

    exit_code = 1
