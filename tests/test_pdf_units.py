"""Unit tests of the PDF map reader on tiny inline PDFs and exact control points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymupdf
import pytest

from pipeline.kernel.errors import PdfError
from pipeline.pdf.classify import Legend, load_legend
from pipeline.pdf.extract import ExtractOptions, extract_pdf, page_shapes
from pipeline.pdf.transforms import fit_transform

PAGE_XY = np.array([[0, 0], [100, 0], [100, -80], [0, -80], [50, -40], [20, -70], [80, -10]],
                   dtype=float)


def _affine(xy: np.ndarray) -> np.ndarray:
    return np.column_stack([700000 + 2.0 * xy[:, 0] - 0.3 * xy[:, 1],
                            6400000 + 0.2 * xy[:, 0] + 1.9 * xy[:, 1]])


@pytest.mark.parametrize("name", ["affine", "projective", "polynomial"])
def test_transforms_recover_an_exact_affine(name: str) -> None:
    fitted = fit_transform(name, PAGE_XY, _affine(PAGE_XY), "test")
    assert fitted.rms < 1e-6
    probe = np.array([[33.0, -21.0]])
    assert np.allclose(fitted.apply(probe), _affine(probe), atol=1e-6)


def test_helmert_is_a_rotation_and_scale() -> None:
    angle, scale = np.radians(30), 3.0
    rot = scale * np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    fitted = fit_transform(None, PAGE_XY[:2], PAGE_XY[:2] @ rot + [1000, 2000], "test")
    assert fitted.name == "helmert"
    assert np.allclose(fitted.apply([[10, 10]]), np.array([[10, 10]]) @ rot + [1000, 2000])


def test_a_wrong_point_has_the_largest_residual() -> None:
    target = _affine(PAGE_XY)
    target[4] += [60.0, -40.0]
    fitted = fit_transform(None, PAGE_XY, target, "test")
    assert fitted.name == "affine"
    assert int(np.argmax(fitted.residuals)) == 4
    assert fitted.rms > 5


def test_too_few_points_for_a_transform_is_a_pdf_error() -> None:
    with pytest.raises(PdfError, match="polynomial transform needs at least 6"):
        fit_transform("polynomial", PAGE_XY[:4], _affine(PAGE_XY[:4]), "gcps.points")


@pytest.fixture()
def layered_pdf(tmp_path: Path) -> Path:
    """A page with two OCG layers (one hidden), a filled and stroked rectangle, a line, three
    small red squares and a label next to the rectangle."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    parcels = doc.add_ocg("Parcels", on=True)
    roads = doc.add_ocg("Roads", on=False)
    page.draw_rect(pymupdf.Rect(50, 50, 150, 120), color=(0, 0, 0), fill=(0.9, 0.9, 0.9),
                   oc=parcels)
    page.draw_polyline([(200, 200), (250, 220), (300, 200)], color=(1, 0.5, 0), width=2, oc=roads)
    for x in (200, 260, 320):
        page.draw_rect(pymupdf.Rect(x, 60, x + 4, 64), color=None, fill=(1, 0, 0))
    page.insert_text((90, 90), "12bis", fontsize=9)
    path = tmp_path / "layered.pdf"
    doc.save(path)
    return path


def test_shapes_keep_styles_layers_and_symbols(layered_pdf: Path) -> None:
    shapes = page_shapes(layered_pdf).shapes
    by_layer = {s.style.layer: s for s in shapes if s.style.layer}
    assert by_layer["Parcels"].kind == "polygon"
    assert by_layer["Parcels"].style.fill in ("#e5e5e5", "#e6e6e6") and by_layer["Parcels"].style.stroke
    assert by_layer["Roads"].kind == "line"  # drawn although the layer is hidden by default
    red = [s for s in shapes if s.style.fill == "#ff0000"]
    assert [s.kind for s in red] == ["point"] * 3
    assert red[0].symbol == "square"


def test_extraction_without_georeference_keeps_page_coordinates(layered_pdf: Path) -> None:
    result = extract_pdf(layered_pdf)
    assert result.georef.method == "none" and result.georef.crs is None
    parcel = next(f for f in result.features if f.shape.style.layer == "Parcels")
    assert parcel.label == "12bis"
    assert parcel.geometry.bounds == pytest.approx((50, -120, 150, -50))


def test_legend_classifies_and_drops_the_rest(layered_pdf: Path, tmp_path: Path) -> None:
    legend = tmp_path / "legend.yml"
    legend.write_text("others: drop\ncategories:\n"
                      "  - {name: meters, fill: '#fe0101', geometry: point, shape: square,"
                      " tags: {amenity: vending_machine}}\n"
                      "  - {name: roads, layer: Roads}\n", encoding="utf-8")
    result = extract_pdf(layered_pdf, ExtractOptions(legend=load_legend(legend)))
    assert result.counts == {"meters": 3, "roads": 1}
    assert next(f for f in result.features if f.category == "meters").tags == {
        "amenity": "vending_machine"}


def test_legend_errors_name_the_file_and_key(tmp_path: Path) -> None:
    legend = tmp_path / "legend.yml"
    legend.write_text("categories:\n  - {name: parks, colour: '#00ff00'}\n", encoding="utf-8")
    with pytest.raises(PdfError, match=r"legend.yml, category 'parks': unknown key\(s\) colour"):
        load_legend(legend)
    assert Legend().keep_others
