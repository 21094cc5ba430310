"""The reviewer map (`map.html`): what a run proposes, one layer per decision.

Built from the run's `review.geojson`. Each decision is a layer with its count in the legend;
a popup shows the tag diff (new, changed, kept), the distance, the reason, the candidates, and
links to openstreetmap.org and to JOSM remote control.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping
from typing import Any

from maps.i18n import texts
from maps.page import Page, osm_attribution, render_page

DECISION_COLOURS = {
    "create": "#2ca02c",
    "modify": "#1f77b4",
    "review": "#ff7f0e",
    "missing": "#d62728",
    "unchanged": "#7f7f7f",
    "skip": "#9467bd",
}


def reviewer_map_html(collection: Mapping[str, Any], title: str, *, locale: str = "fr",
                      tiles: bool = True, collection_text: str | None = None) -> str:
    """The self-contained reviewer page for a review FeatureCollection; `collection_text`: the
    same collection as JSON text when already written (review.geojson), embedded as is."""
    t = texts(locale)
    features = list(collection.get("features") or [])
    counts = Counter(str((f.get("properties") or {}).get("decision")) for f in features)
    drawn = Counter(str((f.get("properties") or {}).get("decision")) for f in features
                    if f.get("geometry"))
    entries = [{"key": d, "label": t[d], "colour": c, "shape": "circle", "count": counts[d]}
               for d, c in DECISION_COLOURS.items()]
    unknown = sorted(set(counts) - set(DECISION_COLOURS))
    entries += [{"key": d, "label": d, "colour": "#000000", "shape": "circle", "count": counts[d]}
                for d in unknown]  # never hide a feature, even with a decision we do not know
    attribution = osm_attribution(t["osm_data"])
    page = Page(
        title=title,
        locale=locale,
        kind="reviewer",
        config={"entries": entries, "texts": dict(t), "attributions": [attribution]},
        data={"type": "FeatureCollection", "features": features},
        header_html=_header(title, t, sum(counts.values()) - sum(drawn.values())),
        tiles=tiles,
        tile_attribution=attribution,
        data_text=collection_text,
    )
    return render_page(page)


def _header(title: str, t: Mapping[str, str], without_geometry: int) -> str:
    note = (f'<p class="s2o-meta s2o-note">{html.escape(t["no_geometry"].format(n=without_geometry))}'
            "</p>" if without_geometry else "")
    return (f'<header class="s2o-header"><h1>{html.escape(title)}</h1>'
            f'<p class="s2o-meta">{html.escape(t["reviewer_note"])}</p>{note}</header>')
