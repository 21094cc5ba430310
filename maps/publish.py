"""A run's maps: the reviewer page (or, for a big run, its overview and parts), and the council
page with its data and uMap file. `map_files` says how to make the pages; the runner writes
them, one at a time."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from maps.council import council_map, council_map_html
from maps.parts import PART_FOLDER, PART_SIZE, PartedMap, split
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


class LazyFiles(Mapping[str, str]):
    """File contents made when read, each time: the runner writes each page before the next is
    made, so a big run's pages (tens of megabytes each) are never all in memory at once."""

    def __init__(self, makers: Mapping[str, Callable[[], str]]) -> None:
        self._makers = dict(makers)

    def __getitem__(self, name: str) -> str:
        return self._makers[name]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


def map_files(profile: Profile, inputs: MapInputs, part_size: int | None = None) -> LazyFiles:
    """map.html (with more than `part_size` features, an overview of the parts maps/NNN.html);
    with a `map:` section also council-map.html, council-map.geojson and map.umap for the
    source layer, over `background`."""
    config = profile.map or MapConfig()
    decisions = profile.match.decisions
    setup = ReviewSetup(profile.name, decisions.name if decisions else
                        f"{profile.name}-decisions.yml", inputs.earlier)
    title = f"sig2osm — {profile.name}"
    part_size = part_size or PART_SIZE
    features = inputs.review.get("features") or []
    parts = split(features, part_size)
    makers: dict[str, Callable[[], str]] = {}
    if parts:
        log.info("map: %d features in %d parts (at most %d a page): %s and %s/", len(features),
                 len(parts), part_size, REVIEWER_PAGE, PART_FOLDER)
        makers.update(PartedMap(inputs.review, title, parts, profile.match.distance,
                                locale=config.locale, tiles=config.tiles, osm=inputs.osm,
                                context=inputs.context, review=setup).pages(REVIEWER_PAGE))
    else:
        makers[REVIEWER_PAGE] = lambda: reviewer_map_html(
            inputs.review, title=title, locale=config.locale, tiles=config.tiles,
            collection_text=inputs.review_text, osm=inputs.osm, context=inputs.context,
            review=setup)
    if profile.map is not None:
        assert inputs.layer is not None, "a council map needs the source layer"
        council = council_map(inputs.layer, profile,
                              dict(inputs.background) if inputs.background else None)
        makers[COUNCIL_PAGE] = lambda: council_map_html(council, umap_file=UMAP_FILE,
                                                        context=inputs.context)
        makers[COUNCIL_DATA] = lambda: json.dumps(council.collection, ensure_ascii=False) + "\n"
        makers[UMAP_FILE] = lambda: umap_json(umap_document(council))
        log.info("map: council map of %d features in %d categories: %s",
                 sum(e.count for e in council.entries), len(council.entries), COUNCIL_PAGE)
    return LazyFiles(makers)
