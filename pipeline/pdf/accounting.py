"""The count check of an extraction: for each drawing style, what was drawn and where each
drawing went (a feature, a part of a composite symbol, outside the map frame, dropped by the
legend). Logged per symbol style and written to the GeoPackage (`pdf_counts`), so a symbol lost
on the way would show as a difference, not go unseen."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shapely.geometry.base import BaseGeometry

from pipeline.pdf.shapes import Shape, Style

if TYPE_CHECKING:
    from pipeline.pdf.extract import Feature, PageContent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StyleCount:
    layer: str  # the output layer (category) of the style's features, or "-" when none
    style: str  # style label: OCG · fill · stroke
    kind: str  # point, line or polygon
    drawn: int  # drawings of the style on the page (symbols counted before merging parts)
    outside: int  # outside the map frame
    parts: int  # parts of composite symbols of other styles (a ring's dot)
    dropped: int  # matched no legend category (legend `others: drop`)
    features: int  # features written

    @property
    def lost(self) -> int:
        """Drawings that are none of the above: always 0 unless something went wrong."""
        return self.drawn - self.outside - self.parts - self.dropped - self.features


def count_by_style(content: PageContent, clipped: list[tuple[Shape, BaseGeometry]],
                   features: list[Feature], where: str) -> list[StyleCount]:
    """Drawings against features, per style; one log line per symbol style, a warning for any
    loss."""
    def key(shape: Shape) -> tuple[Style, str]:
        return shape.style, shape.kind

    parts = Counter(key(part) for part, _host in content.parts)
    drawn = Counter(key(s) for s in content.shapes) + parts
    inside = Counter(key(s) for s, _ in clipped)
    written = Counter(key(f.shape) for f in features if f.shape.seqno >= 0)
    layer = {key(f.shape): f.category for f in features}
    rows = []
    for style_kind, count in sorted(drawn.items(), key=lambda kv: (-kv[1], kv[0][0].label)):
        style, kind = style_kind
        rows.append(StyleCount(
            layer.get(style_kind, "-"), style.label, kind, count,
            outside=count - parts[style_kind] - inside[style_kind], parts=parts[style_kind],
            dropped=inside[style_kind] - written[style_kind], features=written[style_kind]))
    for row in rows:
        if row.kind == "point":
            log.info("%s: symbols %s: %d drawn → %d features (%d outside the frame, %d parts of "
                     "composite symbols, %d dropped)", where, row.style, row.drawn, row.features,
                     row.outside, row.parts, row.dropped)
        if row.lost:
            log.warning("%s: %s %s: %d drawings unaccounted for", where, row.kind, row.style,
                        row.lost)
    return rows
