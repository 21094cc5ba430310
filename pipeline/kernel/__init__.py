"""The kernel: what every part of sig2osm shares, importing nothing else of ours.

- `osm`: the one OSM element type (`OsmElement`), the OSM data of a run (`OsmData`), what
  counts as the same kind (`osm.match`) and the closure of referred objects;
- `decisions`: one `Decision` per source feature, the tag merge it carries (`TagMerge`);
- `settings`: the profile as frozen dataclasses (one settings object, built by
  `pipeline.profile` and read by every stage);
- `templates`, `tag_rules`: how tags are filled from a layer, and what OSM can hold;
- `errors`: the one root exception and its family (with exit codes);
- `atomic`, `generations`: files written whole, and a run folder's outputs as one set.

`conflation`, `exports` and `maps` use the kernel; `pipeline` (the CLI, the runner and the
readers) is the only package that imports them (see ARCHITECTURE.md).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sig2osm")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
