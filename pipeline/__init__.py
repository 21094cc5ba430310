"""sig2osm pipeline: CLI, profile, stage runner and inputs (SIG layers, PDF maps, OSM data)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sig2osm")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
