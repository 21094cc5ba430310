"""Writes a run's maps: the reviewer page, the council page with its data and uMap file, and
the index of the output folder. The builders stay pure; this module reads and writes files."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exports.atomic import write_atomic
from maps.council import council_map, council_map_html
from maps.index import index_html
from maps.reviewer import reviewer_map_html
from maps.umap import umap_document, umap_json
from pipeline.profile import MapConfig, Profile

log = logging.getLogger(__name__)

REVIEWER_PAGE = "map.html"
COUNCIL_PAGE = "council-map.html"
COUNCIL_DATA = "council-map.geojson"
UMAP_FILE = "map.umap"


def write_reviewer_map(run_dir: Path, profile: Profile, collection: Mapping[str, Any]) -> Path:
    config = profile.map or MapConfig()
    page = reviewer_map_html(collection, title=f"sig2osm — {profile.name}",
                             locale=config.locale, tiles=config.tiles)
    target = run_dir / REVIEWER_PAGE
    write_atomic(target, page)
    return target


def write_council_map(run_dir: Path, profile: Profile, layer: Mapping[str, Any]) -> list[Path]:
    """council-map.html, council-map.geojson and map.umap, all built before any is written."""
    council = council_map(layer, profile, load_background(profile))
    files = {
        COUNCIL_PAGE: council_map_html(council, umap_file=UMAP_FILE),
        COUNCIL_DATA: json.dumps(council.collection, ensure_ascii=False) + "\n",
        UMAP_FILE: umap_json(umap_document(council)),
    }
    written = []
    for name, content in files.items():
        write_atomic(run_dir / name, content)
        written.append(run_dir / name)
    log.info("map: council map of %d features in %d categories: %s",
             sum(e.count for e in council.entries), len(council.entries), run_dir / COUNCIL_PAGE)
    return written


def load_background(profile: Profile) -> dict[str, Any] | None:
    """The optional `map.background` layer (e.g. the commune outline) as GeoJSON in EPSG:4326."""
    config = profile.map
    if config is None or config.background is None:
        return None
    from pipeline.sources import read_layer

    # read_layer raises InputError for a missing file, layer or CRS, naming them.
    frame, _info = read_layer(config.background, layer=config.background_layer)
    geometries = [g.simplify(0.00001) for g in frame.to_crs("EPSG:4326").geometry
                  if g is not None and not g.is_empty]
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": g.__geo_interface__}
                         for g in geometries]}


def write_index(out: Path, locale: str = "fr") -> Path:
    target = out / "index.html"
    write_atomic(target, index_html(out, locale))
    return target
