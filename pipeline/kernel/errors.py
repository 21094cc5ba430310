"""One root exception for everything sig2osm reports to its users.

Each subclass also inherits the matching built-in so callers may catch either. Messages say
what went wrong, where (file, layer, feature, field, profile key and line) and what was expected.
"""

from __future__ import annotations


class Sig2osmError(Exception):
    """Root of every error sig2osm raises on purpose; the CLI turns it into exit code 1."""

    exit_code = 1

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if issubclass(cls, OSError) and cls.__new__ is not OSError.__new__:
            # Its instances are OSErrors, but `cls.__new__` finds ValueError's first, which
            # refuses to make one. Unpickling calls it so once Dask has installed tblib's
            # pickling of exceptions: an error of a run's second process would come back as
            # a crash.
            cls.__new__ = OSError.__new__  # type: ignore[method-assign]


class ProfileError(Sig2osmError, ValueError):
    """The profile YAML is malformed, has unknown or missing keys, or values of the wrong type."""

    exit_code = 2


class InputError(Sig2osmError, ValueError):
    """A source layer cannot be used: unknown layer, missing field, duplicate ids, no CRS, …"""

    exit_code = 3


class InputNotFoundError(InputError, FileNotFoundError):
    """A file named by the profile or the command line does not exist."""


class SourceDownloadError(InputError, ConnectionError):
    """`source.url` could not be downloaded (after the allowed retries): a source error."""


class OsmDataError(Sig2osmError, ValueError):
    """OSM data is unreadable, not OSM, partial or suspiciously empty."""

    exit_code = 4


class FetchError(OsmDataError, ConnectionError):
    """A remote service (Overpass, a download) failed after the allowed retries."""


class ExportError(Sig2osmError, RuntimeError):
    """A change file failed validation before being written."""

    exit_code = 5


class PdfError(Sig2osmError, ValueError):
    """A PDF map cannot be georeferenced or extracted."""

    exit_code = 6


class OutputError(Sig2osmError, OSError):
    """An output cannot be written: disk full, quota, read-only or missing folder."""

    exit_code = 73  # sysexits EX_CANTCREAT


class RunFolderBusy(Sig2osmError, BlockingIOError):
    """Another sig2osm run is writing the same run folder."""

    exit_code = 75  # sysexits EX_TEMPFAIL: try again later
