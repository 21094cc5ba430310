"""`map.umap`: the council map as a uMap backup file, to re-host and edit on a uMap instance.

The format is the one uMap writes with "full backup" and reads with "Import": a map with its
properties and one data layer per legend entry (`_umap_options` gives each layer its name and
colour). Each feature keeps its attributes; `name` and `description` feed uMap's default popup.
uMap escapes text itself; note that it reads `{field}` in a description as a placeholder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from maps.council import CouncilMap
from maps.i18n import texts
from maps.legend import LegendEntry
from maps.page import OSM_TILES
from pipeline.kernel.decisions import geojson_bounds

UMAP_SHAPES = {"circle": "Circle", "square": "Drop", "triangle": "Drop", "diamond": "Drop"}


def umap_document(council: CouncilMap) -> dict[str, Any]:
    """A uMap map: one layer per legend entry, centred on the data."""
    layers = []
    features = council.collection["features"]
    for i, entry in enumerate(council.entries):
        members = [_feature(f, entry, council.popup_fields)
                   for f, c in zip(features, council.categories, strict=True) if c == i]
        layers.append({
            "type": "FeatureCollection",
            "features": members,
            "_umap_options": {"name": entry.label, "color": entry.colour, "displayOnLoad": True,
                              "browsable": True, "iconClass": UMAP_SHAPES[entry.shape]},
        })
    config = council.config
    west, south, east, north = _bounds(council.collection)
    description = [config.header, config.description, council.credit]
    return {
        "type": "umap",
        "uri": "",
        "properties": {
            "name": council.title,
            "description": "\n\n".join(p for p in description if p),
            "zoom": 15,
            "scaleControl": True,
            "datalayersControl": True,
            "displayPopupFooter": False,
            "tilelayer": {"url_template": OSM_TILES, "attribution": texts(config.locale)["osm_data"],
                          "minZoom": 0, "maxZoom": 19},
        },
        "geometry": {"type": "Point", "coordinates": [(west + east) / 2, (south + north) / 2]},
        "layers": layers,
    }


def _feature(feature: Mapping[str, Any], entry: LegendEntry,
             popup_fields: Sequence[str]) -> dict[str, Any]:
    props = dict(feature["properties"])
    lines = [f"{k}: {props[k]}" for k in popup_fields if props.get(k) not in (None, "")]
    props.update({"name": props.get("name") or entry.label, "description": "\n".join(lines)})
    return {"type": "Feature", "geometry": feature["geometry"], "properties": props}


def _bounds(collection: Mapping[str, Any]) -> tuple[float, float, float, float]:
    bounds = geojson_bounds(f.get("geometry") for f in collection["features"])
    return bounds or (2.4, 46.6, 2.4, 46.6)  # the middle of France, for an empty layer


def umap_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"
