"""The real council map of Bondy/Pantin (not georeferenced): styles, parcels, the access symbol,
house-number labels, and a picture of the extracted layers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pymupdf
import pytest
from click.testing import CliRunner

from pipeline.pdf.classify import load_legend
from pipeline.pdf.cli import pdf
from pipeline.pdf.extract import Extraction, ExtractOptions, extract_pdf
from pipeline.pdf.preview import render_preview
from pipeline.pdf.writer import write_geopackage

BONDY = "bondy/pdf/20231124_Adressage_168bisJaures.pdf"
LEGEND = """
others: keep
categories:
  - name: parcels
    stroke: "#231f20"
    geometry: polygon
    width: 0.5
  - name: access
    fill: "#eb1e29"
    tolerance: 30
    geometry: point
    shape: triangle
    tags: {entrance: main}
"""


@pytest.fixture(scope="module")
def bondy(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Extraction:
    legend = tmp_path_factory.mktemp("bondy") / "legend.yml"
    legend.write_text(LEGEND, encoding="utf-8")
    return extract_pdf(data / BONDY, ExtractOptions(legend=load_legend(legend)))


def test_styles_are_listed(data: Path) -> None:
    result = CliRunner().invoke(pdf, ["styles", str(data / BONDY)])
    assert result.exit_code == 0, result.output
    assert "text labels" in result.output.splitlines()[0]
    assert "point triangle   fill #eb1e29" in result.output
    assert "stroke #231f20 0.5pt  [stroke_231f20_0_5pt_polygon]" in result.output


def test_map_frame_excludes_title_block_and_legend(bondy: Extraction) -> None:
    assert bondy.georef.method == "none"
    assert bondy.frame is not None
    x0, _y0, x1, y1 = bondy.frame.bounds  # page points, y negative downwards
    assert (x0, x1) == pytest.approx((58.6, 937.9), abs=1) and y1 == pytest.approx(-120.8, abs=1)
    texts = {label.text for label, _, _ in bondy.labels}
    assert "Légende" not in texts and "Accès" not in texts  # legend box is outside the frame


def test_parcels_are_polygons(bondy: Extraction) -> None:
    parcels = [f for f in bondy.features if f.category == "parcels"]
    assert len(parcels) >= 40
    assert {f.geometry.geom_type for f in parcels} <= {"Polygon", "MultiPolygon"}
    areas = sorted(f.geometry.area for f in parcels)  # square page points
    assert areas[len(areas) // 2] > 500  # enclosed areas, not thin outlines
    assert sum(a > 20 for a in areas) >= 0.9 * len(areas)  # a few slivers cut by the frame


def test_red_access_symbol_is_one_point(bondy: Extraction) -> None:
    access = [f for f in bondy.features if f.category == "access"]
    assert len(access) == 1  # the legend's copy lies outside the map frame
    assert access[0].geometry.geom_type == "Point"
    assert access[0].shape.symbol == "triangle" and access[0].tags == {"entrance": "main"}
    assert access[0].geometry.x == pytest.approx(334, abs=2)


def test_house_numbers_are_attached_to_parcels(bondy: Extraction) -> None:
    numbers = {"166", "166bis", "168", "170"}
    owners = {}
    for feature in bondy.features:
        for text in (feature.label or "").split("; "):
            if text in numbers:
                owners[text] = feature
    assert set(owners) == numbers
    assert all(f.shape.kind == "polygon" for f in owners.values())
    assert owners["168"].category == owners["170"].category == "parcels"
    assert owners["168"].pdf_id != owners["170"].pdf_id  # each number on its own parcel


def test_geopackage_and_picture(bondy: Extraction, tmp_path: Path) -> None:
    out = tmp_path / "bondy.gpkg"
    counts = write_geopackage(bondy, out)
    assert counts["parcels"] == len([f for f in bondy.features if f.category == "parcels"])
    parcels = gpd.read_file(out, layer="parcels")
    assert parcels.crs is None and {"pdf_file", "page", "style", "label"} <= set(parcels.columns)
    assert (parcels["transform"] == "none/none").all() and parcels["rms_m"].isna().all()
    assert gpd.read_file(out, layer="pdf_labels").pdf_id.notna().any()
    png = render_preview(bondy, Path("/tmp/sig2osm-bondy-pdf-layers.png"))
    picture = pymupdf.Pixmap(str(png))
    assert picture.width > 600 and picture.height > 400
