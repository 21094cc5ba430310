"""The reviewer map (`map.html`): what a run proposes, one layer per decision."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping
from typing import Any

import folium

DECISION_COLOURS = {
    "create": "#2ca02c",
    "modify": "#1f77b4",
    "unchanged": "#7f7f7f",
    "review": "#ff7f0e",
    "skip": "#9467bd",
    "missing": "#d62728",
}
OSM_ATTRIBUTION = ('&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                   "contributors (ODbL)")


def _popup_html(props: Mapping[str, Any]) -> str:
    """Every value from data is escaped: a layer's text never becomes markup."""
    e = html.escape
    rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>"
                   for k, v in sorted((props.get("tags") or {}).items()))
    osm = props.get("osm_id")
    link = (f'<a href="https://www.openstreetmap.org/{e(osm)}" target="_blank">{e(osm)}</a>'
            if osm else "")
    distance = props.get("distance_m")
    return (f"<b>{e(str(props.get('decision')))}</b> {e(str(props.get('source_id') or ''))} "
            f"{link}<br><i>{e(str(props.get('reason') or ''))}</i>"
            + (f"<br>distance: {distance} m" if distance is not None else "")
            + f"<table>{rows}</table>")


def reviewer_map_html(collection: Mapping[str, Any], title: str) -> str:
    features = [f for f in collection["features"] if f.get("geometry")]
    counts = Counter(f["properties"]["decision"] for f in collection["features"])
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    folium.TileLayer("OpenStreetMap", attr=OSM_ATTRIBUTION, name="OpenStreetMap").add_to(fmap)
    for decision, colour in DECISION_COLOURS.items():
        group = folium.FeatureGroup(name=f"{decision} ({counts.get(decision, 0)})")
        for feature in features:
            if feature["properties"]["decision"] != decision:
                continue
            geometry = feature["geometry"]
            popup = folium.Popup(_popup_html(feature["properties"]), max_width=400)
            if geometry["type"] == "Point":
                lon, lat = geometry["coordinates"][:2]
                folium.CircleMarker((lat, lon), radius=6, color=colour, fill=True,
                                    fill_opacity=0.8, popup=popup).add_to(group)
            else:
                folium.GeoJson(geometry, style_function=lambda _f, c=colour: {"color": c},
                               popup=popup).add_to(group)
        group.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    if features:
        lons, lats = [], []
        for f in features:
            for lon, lat in _coords(f["geometry"]):
                lons.append(lon)
                lats.append(lat)
        fmap.fit_bounds([(min(lats), min(lons)), (max(lats), max(lons))])
    fmap.get_root().html.add_child(folium.Element(f"<title>{html.escape(title)}</title>"))
    return fmap.get_root().render()


def _coords(geometry: Mapping[str, Any]) -> list[tuple[float, float]]:
    coords = geometry["coordinates"]
    out: list[tuple[float, float]] = []

    def walk(c: Any) -> None:
        if isinstance(c[0], (int, float)):
            out.append((c[0], c[1]))
        else:
            for part in c:
                walk(part)

    walk(coords)
    return out
