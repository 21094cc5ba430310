"""Every drawn symbol is a feature; shades of one colour are one layer; the count check."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pymupdf
import pytest

from pipeline.cli import main
from pipeline.pdf.extract import extract_pdf, page_shapes

BENCH = (0.2, 0.4, 0.8)  # blue benches
BIN = (0.5, 0.3, 0.1)  # brown bins
TREE = (0.1, 0.6, 0.2)  # green rings and dots


def _square(page: pymupdf.Page, x: float, y: float, fill: tuple[float, ...], size: float = 6.0,
            oc: int = 0) -> None:
    page.draw_rect(pymupdf.Rect(x, y, x + size, y + size), color=None, fill=fill, oc=oc)


@pytest.fixture()
def benches_pdf(tmp_path: Path) -> Path:
    """Ten benches of one style: four alone, a pair side by side (touching), a pair overlapping
    by two thirds, a pair exactly on top of each other; a bin overlapping a bench by chance;
    three composite symbols (white disc, green ring, green dot drawn as three paths); a copy
    of each in the legend, outside the map frame (a clip path)."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    for x, y in ((40, 40), (120, 40), (200, 40), (280, 40)):
        _square(page, x, y, BENCH)
    _square(page, 40, 120, BENCH)
    _square(page, 46, 120, BENCH)  # touching the previous one
    _square(page, 120, 120, BENCH)
    _square(page, 122, 120, BENCH)  # overlapping it by two thirds
    _square(page, 200, 120, BENCH)
    _square(page, 200, 120, BENCH)  # twice at one position
    _square(page, 283, 122, BIN)  # a bin that happens to overlap the next bench
    _square(page, 280, 120, BENCH)
    for x in (60, 160, 260):
        page.draw_circle((x, 200), 5, color=None, fill=(1, 1, 1))
        page.draw_circle((x, 200), 5, color=TREE, fill=None, width=1.2)
        page.draw_circle((x, 200), 1.5, color=None, fill=TREE)
    xref = page.get_contents()[0]
    doc.update_stream(xref, b"q 20 20 330 240 re W n\n" + doc.xref_stream(xref) + b"\nQ\n")
    _square(page, 370, 40, BENCH)  # the legend, outside the map frame
    _square(page, 370, 60, BIN)
    path = tmp_path / "benches.pdf"
    doc.save(path)
    return path


def test_touching_and_overlapping_symbols_of_one_style_stay_separate(benches_pdf: Path) -> None:
    result = extract_pdf(benches_pdf)
    benches = [f for f in result.features if f.shape.style.fill == "#3366cc"]
    assert len(benches) == 11  # every bench drawn in the map frame, the one twice too
    assert all(f.geometry.geom_type == "Point" for f in benches)
    bins = [f for f in result.features if f.shape.style.fill == "#804d1a"]
    assert len(bins) == 1  # the bin over a bench is a bin, not part of the bench
    rings = [f for f in result.features if f.shape.style.stroke == "#1a9933"]
    assert len(rings) == 3 and all(f.shape.kind == "point" for f in rings)
    assert not [f for f in result.features if f.shape.style.fill == "#1a9933"]  # the dots
    counts = {(c.style, c.kind): c for c in result.counts_by_style}
    bench = counts[("fill #3366cc", "point")]
    assert (bench.drawn, bench.features, bench.outside, bench.lost) == (12, 11, 1, 0)
    dot = counts[("fill #1a9933", "point")]
    assert (dot.drawn, dot.parts, dot.features, dot.outside) == (3, 3, 0, 0)


def test_the_count_check_is_in_the_output_and_the_geopackage(benches_pdf: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    out = tmp_path / "benches.gpkg"
    assert main(["pdf", "extract", str(benches_pdf), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("symbols: 20 drawn in 4 styles → 15 features, 3 parts of composite symbols, "
            "2 outside the frame, 0 dropped by the legend, 0 lost") in printed
    table = gpd.read_file(out, layer="pdf_counts")
    assert set(table.columns) >= {"layer", "style", "kind", "drawn", "outside", "parts",
                                  "dropped", "features"}
    assert (table.drawn == table.outside + table.parts + table.dropped + table.features).all()


def test_shades_of_one_layer_share_a_layer_and_keep_their_colour(tmp_path: Path) -> None:
    """A hill-shaded icon (40 greens, each a step from the next) in one OCG layer and red
    squares in it too: two layers, not 41; each feature keeps its fill."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    icons = doc.add_ocg("POI", on=True)
    for i in range(40):
        green = (0.1 + i * 0.012, 0.3 + i * 0.01, 0.1)
        _square(page, 20 + 8 * (i % 20), 20 + 8 * (i // 20), green, size=4, oc=icons)
        _square(page, 20 + 8 * (i % 20), 120 + 8 * (i // 20), green, size=4, oc=icons)
    for x in (40, 80, 120):
        _square(page, x, 220, (0.9, 0.1, 0.1), size=4, oc=icons)
    path = tmp_path / "shades.pdf"
    doc.save(path)
    result = extract_pdf(path)
    assert result.counts == {"poi_fill_point": 80, "poi_fill_e51a1a_point": 3}
    fills = {f.shape.style.fill for f in result.features if f.category == "poi_fill_point"}
    assert len(fills) == 40
    assert len({s.style for s in page_shapes(path).shapes}) == 41  # styles stay distinct
