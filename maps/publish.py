"""A run's maps: the reviewer page, the council page with its data and uMap file, and the index
of the output folder. `map_files` builds the pages' contents; the writers here write them."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from maps.council import council_map, council_map_html
from maps.reviewer import reviewer_map_html
from maps.umap import umap_document, umap_json
from pipeline.kernel.settings import MapConfig, Profile

log = logging.getLogger(__name__)

REVIEWER_PAGE = "map.html"
COUNCIL_PAGE = "council-map.html"
COUNCIL_DATA = "council-map.geojson"
UMAP_FILE = "map.umap"


def map_files(profile: Profile, review: Mapping[str, Any], review_text: str,
              layer: Mapping[str, Any] | None) -> dict[str, str]:
    """map.html for the review FeatureCollection (`review_text`: as review.geojson holds it);
    with a `map:` section also council-map.html, council-map.geojson and map.umap for the
    source layer (`SourceLayer.to_json()`)."""
    config = profile.map or MapConfig()
    files = {REVIEWER_PAGE: reviewer_map_html(review, title=f"sig2osm — {profile.name}",
                                              locale=config.locale, tiles=config.tiles,
                                              collection_text=review_text)}
    if profile.map is not None:
        assert layer is not None, "a council map needs the source layer"
        council = council_map(layer, profile, load_background(profile))
        files[COUNCIL_PAGE] = council_map_html(council, umap_file=UMAP_FILE)
        files[COUNCIL_DATA] = json.dumps(council.collection, ensure_ascii=False) + "\n"
        files[UMAP_FILE] = umap_json(umap_document(council))
        log.info("map: council map of %d features in %d categories: %s",
                 sum(e.count for e in council.entries), len(council.entries), COUNCIL_PAGE)
    return files


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
