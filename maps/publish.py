"""A run's maps: the reviewer page, and the council page with its data and uMap file.
`map_files` builds the pages' contents; the runner writes them."""

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
              layer: Mapping[str, Any] | None,
              background: Mapping[str, Any] | None = None) -> dict[str, str]:
    """map.html for the review FeatureCollection (`review_text`: as review.geojson holds it);
    with a `map:` section also council-map.html, council-map.geojson and map.umap for the
    source layer (`SourceLayer.to_json()`), over `background` (the `map.background` layer as
    GeoJSON, read by the runner)."""
    config = profile.map or MapConfig()
    files = {REVIEWER_PAGE: reviewer_map_html(review, title=f"sig2osm — {profile.name}",
                                              locale=config.locale, tiles=config.tiles,
                                              collection_text=review_text)}
    if profile.map is not None:
        assert layer is not None, "a council map needs the source layer"
        council = council_map(layer, profile, dict(background) if background else None)
        files[COUNCIL_PAGE] = council_map_html(council, umap_file=UMAP_FILE)
        files[COUNCIL_DATA] = json.dumps(council.collection, ensure_ascii=False) + "\n"
        files[UMAP_FILE] = umap_json(umap_document(council))
        log.info("map: council map of %d features in %d categories: %s",
                 sum(e.count for e in council.entries), len(council.entries), COUNCIL_PAGE)
    return files
