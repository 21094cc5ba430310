"""A run's maps: the reviewer page, and the council page with its data and uMap file.
`map_files` builds the pages' contents; the runner writes them."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maps.council import council_map, council_map_html
from maps.reviewer import ReviewSetup, reviewer_map_html
from maps.umap import umap_document, umap_json
from pipeline.kernel.osm import OsmData
from pipeline.kernel.settings import MapConfig, Profile

log = logging.getLogger(__name__)

REVIEWER_PAGE = "map.html"
COUNCIL_PAGE = "council-map.html"
COUNCIL_DATA = "council-map.geojson"
UMAP_FILE = "map.umap"


@dataclass(frozen=True)
class MapInputs:
    """What a run's maps show."""

    review: Mapping[str, Any]  # the review FeatureCollection
    review_text: str  # the same, as review.geojson holds it
    osm: OsmData | None = None  # the OSM data it was compared with
    context: Mapping[str, Any] | None = None  # the background (`MapContext.to_json()`)
    layer: Mapping[str, Any] | None = None  # the source layer (`SourceLayer.to_json()`)
    background: Mapping[str, Any] | None = None  # the `map.background` layer, GeoJSON
    # The reviewer decisions of `match.decisions` (by source id: action, osm_key, date, note).
    earlier: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def map_files(profile: Profile, inputs: MapInputs) -> dict[str, str]:
    """map.html; with a `map:` section also council-map.html, council-map.geojson and map.umap
    for the source layer, over `background`."""
    config = profile.map or MapConfig()
    decisions = profile.match.decisions
    setup = ReviewSetup(profile.name, decisions.name if decisions else
                        f"{profile.name}-decisions.yml", inputs.earlier)
    files = {REVIEWER_PAGE: reviewer_map_html(
        inputs.review, title=f"sig2osm — {profile.name}", locale=config.locale,
        tiles=config.tiles, collection_text=inputs.review_text, osm=inputs.osm,
        context=inputs.context, review=setup)}
    if profile.map is not None:
        assert inputs.layer is not None, "a council map needs the source layer"
        council = council_map(inputs.layer, profile,
                              dict(inputs.background) if inputs.background else None)
        files[COUNCIL_PAGE] = council_map_html(council, umap_file=UMAP_FILE,
                                               context=inputs.context)
        files[COUNCIL_DATA] = json.dumps(council.collection, ensure_ascii=False) + "\n"
        files[UMAP_FILE] = umap_json(umap_document(council))
        log.info("map: council map of %d features in %d categories: %s",
                 sum(e.count for e in council.entries), len(council.entries), COUNCIL_PAGE)
    return files
