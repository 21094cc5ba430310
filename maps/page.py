"""The page every map shares: a Folium map with inlined assets, a header and embedded data.

Nothing is loaded from a CDN: Folium's default links (Leaflet, jQuery, Bootstrap, fonts) are
replaced by the vendored copies in `maps/assets`, inlined. Data travels as JSON inside a
`<script type="application/json">` block and is drawn by `sig2osm/map.js`, which puts data text
into the page with `textContent` only. The one request that may leave the machine is the
optional OpenStreetMap tile layer.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import folium
from branca.element import Element, Figure, MacroElement
from jinja2 import Template

from exports.review import finite_json
from maps.assets import script_tag, style_tag

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_COPYRIGHT = "https://www.openstreetmap.org/copyright"
DATA_ID = "s2o-data"
OSM_ID = "s2o-osm"  # OSM objects, the area they cover and the background (maps/reviewer.py)
MAP_ID = "sig2osm"  # fixed Folium ids: the same input gives the same page, byte for byte
COORD_DIGITS = 7  # about 1 cm: keeps pages small without moving anything visibly


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' can close or open a tag."""
    return script_safe(finite_json(value, separators=(",", ":")))


def script_safe(text: str) -> str:
    """JSON text made safe inside a <script> element (the same JSON once parsed)."""
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def osm_attribution(label: str) -> str:
    """The OpenStreetMap notice as HTML; `label` is our own UI text, escaped all the same."""
    return f'<a href="{OSM_COPYRIGHT}" target="_blank" rel="noopener">{html.escape(label)}</a>'


@dataclass(frozen=True)
class Page:
    """What a map page shows; `header_html` is built by the caller with data text escaped."""

    title: str
    locale: str
    kind: str  # entry point of sig2osm/map.js: "reviewer" or "council"
    config: dict[str, Any]
    data: Any
    header_html: str = ""
    tiles: bool = True
    tile_attribution: str = ""  # HTML, built from constants
    data_text: str | None = None  # `data` already written as JSON (review.geojson): embedded as is
    # Further JSON blocks by element id (OSM objects, the background), read by the map script.
    blocks: dict[str, Any] = field(default_factory=dict)


class _Launch(MacroElement):
    """Calls sig2osm.<kind>(map, config) right after the map exists, before the tile layer."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        window.sig2osm.{{ this.kind }}({{ this._parent.get_name() }}, {{ this.config }});
        {% endmacro %}
    """)

    def __init__(self, kind: str, config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "Sig2osmLaunch"
        self._id = MAP_ID
        self.kind = kind
        self.config = script_json(config)


def _data_json(page: Page) -> str:
    if page.data_text is not None:
        return script_safe(page.data_text)
    return script_json(page.data)


def _block(name: str, value: Any) -> str:
    ident = html.escape(name, quote=True)
    return f'\n<script type="application/json" id="{ident}">{script_json(value)}</script>'


def rounded(geometry: Mapping[str, Any], digits: int = COORD_DIGITS) -> dict[str, Any]:
    """A GeoJSON geometry with its coordinates rounded (7 digits: about 1 cm)."""
    def walk(c: Any) -> Any:
        if isinstance(c, (int, float)):
            return round(c, digits)
        return [walk(part) for part in c]

    if geometry.get("type") == "GeometryCollection":
        return {"type": "GeometryCollection",
                "geometries": [rounded(g, digits) for g in geometry.get("geometries", [])]}
    return {"type": geometry["type"], "coordinates": walk(geometry["coordinates"])}


def render_page(page: Page) -> str:
    """The complete, self-contained HTML page."""
    fmap = folium.Map(location=(46.6, 2.4), zoom_start=5, tiles=None, control_scale=False,
                      prefer_canvas=True)
    fmap._id = MAP_ID
    fmap.default_js = []  # Folium's CDN links: replaced by the inlined assets
    fmap.default_css = []
    figure = fmap.get_root()
    assert isinstance(figure, Figure)
    # Our text goes in after rendering, through slots: Jinja would compile megabytes of data
    # and scripts as a template (slow) and read "{{" in a tag value as template code.
    slots = {
        "<!--sig2osm:assets-->": (f'<meta charset="utf-8">\n<title>{html.escape(page.title)}'
                                  f"</title>\n{style_tag()}\n{script_tag()}"),
        "<!--sig2osm:header-->": (f'{page.header_html}\n<script type="application/json" '
                                  f'id="{DATA_ID}">{_data_json(page)}</script>'
                                  + "".join(_block(name, value)
                                            for name, value in page.blocks.items())),
    }
    figure.header.add_child(Element("<!--sig2osm:assets-->"), name="sig2osm_assets")
    figure.html.add_child(Element("<!--sig2osm:header-->"), name="sig2osm_header")
    config = {**page.config, "data_id": DATA_ID, "locale": page.locale}
    _Launch(page.kind, config).add_to(fmap)
    if page.tiles:
        tiles = folium.TileLayer(OSM_TILES, attr=page.tile_attribution or " ", name="OSM",
                                 max_zoom=19)
        tiles._id = MAP_ID
        tiles.add_to(fmap)
    text: str = figure.render()
    for slot, content in slots.items():
        before, found, after = text.partition(slot)
        assert found, slot
        text = before + content + after
    lang = html.escape(page.locale, quote=True)
    return text.replace("<html>", f'<html lang="{lang}">', 1).replace(
        "<body>", '<body class="s2o">', 1)
