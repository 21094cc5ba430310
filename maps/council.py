"""The council map: a project layer styled by category, for neighbourhood councils.

Built from the ingested source layer and the profile's `map:` section: a header with the title,
header text and description; a legend with one entry per category (colour and symbol); popups
with the chosen fields; the producer, licence and date of the data and the OSM notice; a
download link for the layer's data (GeoJSON, embedded in the page so it works offline); and a
layout that prints on one A4 landscape page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maps.errors import MapError
from maps.i18n import texts
from maps.legend import LegendEntry, legend_entries, map_problems, missing_fields
from maps.page import OSM_ID, Page, osm_attribution, render_page, rounded
from pipeline.kernel.settings import MapConfig, Profile


def council_collection(layer: Mapping[str, Any]) -> dict[str, Any]:
    """The layer's data as plain GeoJSON (the source attributes as properties), for download."""
    features = []
    for feature in layer.get("features") or []:
        props = feature.get("properties") or {}
        geometry = feature.get("geometry")
        features.append({"type": "Feature",
                         "geometry": rounded(geometry) if geometry else None,
                         "properties": dict(props.get("attributes") or {})})
    return {"type": "FeatureCollection", "features": features}


def check_fields(collection: Mapping[str, Any], config: MapConfig, where: str) -> None:
    """The category and popup fields must exist in the layer; say which ones it has."""
    present: dict[str, None] = {}
    for feature in collection["features"]:
        present.update(dict.fromkeys(feature["properties"]))
    missing = missing_fields(config, present)
    if missing:
        raise MapError(f"{where}: {', '.join(missing)} not found in the layer; its fields are: "
                       f"{', '.join(present) or '(none)'}.")


@dataclass(frozen=True)
class CouncilMap:
    """Everything a council page and its uMap file show, validated and computed once."""

    name: str  # the profile's name (download file name)
    config: MapConfig
    title: str
    credit: str  # producer, licence and date, as plain text
    collection: dict[str, Any]  # the layer's data, also offered for download
    entries: list[LegendEntry]
    categories: list[int]  # each feature's legend entry (-1: no geometry, not drawn)
    popup_fields: list[str]
    background: Mapping[str, Any] | None = None


def council_map(layer: Mapping[str, Any], profile: Profile,
                background: Mapping[str, Any] | None = None) -> CouncilMap:
    """Check the `map:` section against an ingested layer (`SourceLayer.to_json()`)."""
    config = profile.map or MapConfig()
    problems = map_problems(config)
    if problems:
        raise MapError(f"Profile {profile.path}: {'; '.join(problems)}.")
    t = texts(config.locale)
    collection = council_collection(layer)
    check_fields(collection, config, f"Map of profile {profile.path or profile.name}")
    entries, categories = legend_entries(collection, config, t)
    return CouncilMap(
        name=profile.name, config=config,
        title=config.title or profile.description or profile.name,
        credit=credit_text(profile, t), collection=collection, entries=entries,
        categories=categories, popup_fields=config.popup_fields or _all_fields(collection),
        background=background)


def council_map_html(council: CouncilMap, umap_file: str | None = None,
                     context: Mapping[str, Any] | None = None) -> str:
    """The self-contained council page, over `context` (the streets, buildings and water of
    `MapContext.to_json()`) when given."""
    config = council.config
    t = texts(config.locale)
    fields = council.popup_fields
    attributions = ([osm_attribution(t["osm_data"])] if config.tiles else []) + [
        html.escape(council.credit)]
    page = Page(
        title=council.title,
        locale=config.locale,
        kind="council",
        config={
            "entries": [vars(e) for e in council.entries],
            "categories": council.categories,
            "popup_fields": fields,
            "tooltip_field": next((f for f in fields if f != config.category), None),
            "texts": dict(t),
            "attributions": attributions,
            "download_name": f"{council.name}.geojson",
            "background": council.background,
            "osm_id": OSM_ID,
        },
        data=council.collection,
        header_html=_header(council, t, umap_file),
        tiles=config.tiles,
        tile_attribution=osm_attribution(t["osm_data"]),
        blocks={OSM_ID: {"objects": [], "coverage": None,
                         "context": dict(context) if context else None}},
    )
    return render_page(page)


def _all_fields(collection: Mapping[str, Any]) -> list[str]:
    names: dict[str, None] = {}
    for feature in collection["features"]:
        names.update(dict.fromkeys(feature["properties"]))
    return list(names)


def credit_text(profile: Profile, t: Mapping[str, str]) -> str:
    """'Données : producteur — licence : … — date : …' (plain text; escaped where it lands)."""
    src = profile.source
    c = t["colon"]
    parts = [f"{t['data_by']}{c}{src.producer}" if src.producer else t["data_by"],
             f"{t['licence']}{c}{src.licence}" if src.licence else t["licence_unknown"]]
    if src.date:
        parts.append(f"{t['date']}{c}{src.date}")
    return " — ".join(parts)


def _header(council: CouncilMap, t: Mapping[str, str], umap_file: str | None) -> str:
    e = html.escape
    config = council.config
    actions = [f'<a id="s2o-download" href="#">{e(t["download"])}</a>']
    if umap_file:
        actions.append(f'<a href="{e(umap_file)}" download>{e(t["umap"])}</a>')
    actions.append(f'<button type="button" onclick="window.print()">{e(t["print"])}</button>')
    basemap = f" {e(t['basemap'])}." if config.tiles else ""
    missing = council.categories.count(-1)
    lines: Sequence[str] = [
        f'<header class="s2o-header"><div class="s2o-actions">{"".join(actions)}</div>',
        f"<h1>{e(council.title)}</h1>",
        f'<p class="s2o-subtitle-text">{e(config.header)}</p>' if config.header else "",
        f'<p class="s2o-description">{e(config.description)}</p>' if config.description else "",
        f'<p class="s2o-meta">{e(council.credit)}.{basemap}</p>',
        f'<p class="s2o-meta s2o-note">{e(t["no_geometry"].format(n=missing))}</p>'
        if missing else "",
        "</header>",
    ]
    return "".join(lines)
