"""A PNG picture of extracted layers, drawn with PyMuPDF (no plotting library needed)."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import shapely
from shapely.geometry.base import BaseGeometry

from pipeline.pdf.extract import Extraction


def _rgb(hex_colour: str | None) -> tuple[float, float, float] | None:
    if not hex_colour:
        return None
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16) / 255, int(value[2:4], 16) / 255, int(value[4:6], 16) / 255)


def render_preview(extraction: Extraction, target: Path, size: float = 1200.0) -> Path:
    """Draw every feature in its PDF colours, symbols as dots, labels in blue."""
    geoms = [f.geometry for f in extraction.features]
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    scale = size / max(x1 - x0, y1 - y0, 1e-9)
    margin = 10.0
    doc = pymupdf.open()
    page = doc.new_page(width=(x1 - x0) * scale + 2 * margin, height=(y1 - y0) * scale + 2 * margin)

    def to_page(geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda xy: (xy - [x0, y1]) * [scale, -scale] + margin)

    for feature in extraction.features:
        style = feature.shape.style
        geom = to_page(feature.geometry)
        stroke, fill = _rgb(style.stroke), _rgb(style.fill)
        if feature.shape.kind == "point":
            page.draw_circle((geom.x, geom.y), 3, color=stroke or fill, fill=fill or stroke)
            continue
        for part in shapely.get_parts(shapely.get_parts(geom)):
            rings = [part.exterior] if part.geom_type == "Polygon" else [part]
            for ring in rings:
                page.draw_polyline([tuple(c) for c in ring.coords], color=stroke or (0, 0, 0),
                                   fill=fill if part.geom_type == "Polygon" else None,
                                   width=0.6, fill_opacity=0.5)
    for label, point, _owner in extraction.labels:
        p = to_page(point)
        page.insert_text((p.x, p.y), label.text, fontsize=7, color=(0, 0, 0.8))
    target.parent.mkdir(parents=True, exist_ok=True)
    page.get_pixmap(dpi=96).save(target)
    return target
