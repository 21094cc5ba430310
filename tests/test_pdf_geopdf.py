"""GeoPDFs with real ground truth: the ISO 32000 Grenoble meters, control points, TerraGo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from pipeline.cli import main
from pipeline.kernel.errors import PdfError
from pipeline.pdf.classify import Category, Legend
from pipeline.pdf.extract import Extraction, ExtractOptions, extract_pdf, layer_extents

GRENOBLE_PDF = "geopdf/iso32000/grenoble_horodateurs_ISO32000_L93.pdf"
METERS = "grenoble-horodateurs/INPUT/data-grenoble.json"
METER_LAYER = "horodateurs_fill_008000_stroke_008000_1pt_point"


@pytest.fixture(scope="module")
def meters(data: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(data / METERS).to_crs("EPSG:2154")


@pytest.fixture(scope="module")
def grenoble(data: Path) -> Extraction:
    return extract_pdf(data / GRENOBLE_PDF)


def _mean_distance(meters: gpd.GeoDataFrame, points: list[shapely.Point]) -> float:
    tree = shapely.STRtree(points)
    _, dist = tree.query_nearest(meters.geometry.values, return_distance=True, all_matches=False)
    return float(np.mean(dist))


def test_iso32000_keeps_all_851_meters_with_their_attributes(grenoble: Extraction,
                                                              meters: gpd.GeoDataFrame) -> None:
    """GDAL wrote each meter as a structure element with its fields and one drawing; meter 202
    (a MultiPoint of one repeated position in the source) got an empty drawing. All 851 are
    kept: 850 placed within centimetres of the source meter of the same HOROD_ID, and 202 with
    its attributes and no geometry."""
    assert grenoble.georef.method == "iso32000" and grenoble.georef.crs == "EPSG:2154"
    found = [f for f in grenoble.features if f.category == METER_LAYER]
    assert len(meters) == 851 and len(found) == 851
    by_id = {int(f.attributes["HOROD_ID"]): f for f in found}
    assert set(by_id) == {int(i) for i in meters.HOROD_ID}
    empty = [i for i, f in by_id.items() if f.geometry.is_empty]
    assert empty == [202] and by_id[202].attributes["HOROD_TARIF_NOM"] == "orange"
    source = dict(zip(meters.HOROD_ID.astype(int), meters.geometry, strict=True))
    gaps = [source[i].distance(f.geometry) for i, f in by_id.items() if i != 202]
    assert np.mean(gaps) < 0.1 and max(gaps) < 0.5  # measured 0.03 m mean, 0.06 m max
    counts = {c.style: c for c in grenoble.counts_by_style}
    meter_style = counts["horodateurs · fill #008000 · stroke #008000 1pt"]
    assert (meter_style.drawn, meter_style.features, meter_style.lost) == (850, 850, 0)


def _points_file(path: Path, grenoble: Extraction, meters: gpd.GeoDataFrame,
                 page: dict[str, tuple[float, float]], wrong: str | None = None) -> list[str]:
    """Six control points: known meters (L93) and the positions of their symbols on the page."""
    located = {f.pdf_id: f.geometry for f in grenoble.features if not f.geometry.is_empty}
    tree = shapely.STRtree(meters.geometry.values)
    chosen = [fid for fid in sorted(located, key=lambda k: (located[k].x + located[k].y))]
    picks = [chosen[0], chosen[-1], chosen[len(chosen) // 2],
             *sorted(located, key=lambda k: located[k].x - located[k].y)[::len(located) // 3][:3]]
    lines = ["#CRS: EPSG:2154", "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual"]
    for fid in picks:
        meter = meters.geometry.values[tree.nearest(located[fid])]
        x, y = meter.x + (250.0 if fid == wrong else 0.0), meter.y
        lines.append(f"{x:.3f},{y:.3f},{page[fid][0]:.4f},{page[fid][1]:.4f},1,0,0,0")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return picks


@pytest.fixture(scope="module")
def page_positions(data: Path) -> dict[str, tuple[float, float]]:
    plain = extract_pdf(data / GRENOBLE_PDF, ExtractOptions(ignore_georef=True))
    assert plain.georef.method == "none"
    return {f.pdf_id: (f.geometry.x, f.geometry.y) for f in plain.features
            if not f.geometry.is_empty}


def test_six_control_points_give_the_same_accuracy(
        data: Path, tmp_path: Path, grenoble: Extraction, meters: gpd.GeoDataFrame,
        page_positions: dict[str, tuple[float, float]]) -> None:
    gcps = tmp_path / "grenoble.points"
    _points_file(gcps, grenoble, meters, page_positions)
    result = extract_pdf(data / GRENOBLE_PDF, ExtractOptions(gcps=gcps))
    assert result.georef.method == "gcps" and result.georef.transform_name == "affine"
    assert len(result.georef.control_points) == 6
    assert result.georef.rms_m is not None and result.georef.rms_m < 1.0
    points = [f.geometry for f in result.features
              if f.category == METER_LAYER and not f.geometry.is_empty]
    assert _mean_distance(meters, points) < 1.0


def test_a_wrong_control_point_is_flagged_by_its_residual(
        data: Path, tmp_path: Path, grenoble: Extraction, meters: gpd.GeoDataFrame,
        page_positions: dict[str, tuple[float, float]]) -> None:
    gcps = tmp_path / "wrong.points"
    clean = _points_file(gcps, grenoble, meters, page_positions)
    _points_file(gcps, grenoble, meters, page_positions, wrong=clean[2])
    with pytest.raises(PdfError, match=r"RMS error of .* above the 5 m limit; largest "
                                       r"residuals: gcp3"):
        extract_pdf(data / GRENOBLE_PDF, ExtractOptions(gcps=gcps))
    forced = extract_pdf(data / GRENOBLE_PDF, ExtractOptions(gcps=gcps, force=True))
    assert forced.georef.transform is not None
    assert int(np.argmax(forced.georef.transform.residuals)) == 2
    out = tmp_path / "forced.gpkg"
    code = main(["pdf", "extract", str(data / GRENOBLE_PDF), "--out", str(out), "--gcps",
                 str(gcps)])
    assert code == 6 and not out.exists()


def test_extract_command_writes_provenance(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "grenoble.gpkg"
    assert main(["pdf", "extract", str(data / GRENOBLE_PDF), "--out", str(out)]) == 0
    layer = gpd.read_file(out, layer=METER_LAYER)
    assert len(layer) == 851 and layer.crs.to_epsg() == 2154
    assert layer.geometry.isna().sum() == 1 and {"HOROD_ID", "HOROD_ZONE"} <= set(layer.columns)
    assert layer[layer.geometry.isna()].note.iloc[0] == "drawn empty in the PDF: no geometry"
    counts = gpd.read_file(out, layer="pdf_counts")
    assert counts.drawn.sum() == counts.features.sum() == 850
    row = layer.iloc[0]
    assert row.pdf_file == Path(GRENOBLE_PDF).name and row.page == 1
    assert row["transform"] == "iso32000/affine" and row.rms_m == pytest.approx(0.0, abs=0.01)
    assert row.style.startswith("horodateurs · fill #008000")
    residuals = gpd.read_file(out, layer="pdf_control_points")
    assert len(residuals) == 4 and residuals.residual_m.max() < 0.01
    assert main(["pdf", "extract", str(data / GRENOBLE_PDF), "--out", str(out),
                 "--page", "3"]) == 6


def test_pdf_layer_as_profile_source_goes_to_review(data: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    gpkg = tmp_path / "grenoble.gpkg"
    assert main(["pdf", "extract", str(data / GRENOBLE_PDF), "--out", str(gpkg)]) == 0
    profile = tmp_path / "pdf-meters.yml"
    osm = data / "grenoble-horodateurs/INPUT/osm-raw-data.json"
    profile.write_text(f"""name: grenoble-pdf-meters
source: {{path: {gpkg}, layer: {METER_LAYER}, id: pdf_id}}
osm:
  match: {{amenity: vending_machine, vending: parking_tickets}}
  file: {osm}
  bounds: [5.6776, 45.1541, 5.7531, 45.2140]
tags: {{amenity: vending_machine, vending: parking_tickets}}
match: {{distance: 30}}
map: {{title: Horodateurs (plan PDF), category: category, tiles: false}}
""", encoding="utf-8")
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["run", str(profile), "--out", str(out)]) == 0
    assert "nothing to upload: no create or modify" in capsys.readouterr().out
    run = out / "grenoble-pdf-meters"
    review = json.loads((run / "review.geojson").read_text(encoding="utf-8"))
    decisions = [f["properties"]["decision"] for f in review["features"]]
    assert len([d for d in decisions if d != "missing"]) == 851
    assert "create" not in decisions and "modify" not in decisions
    assert decisions.count("review") >= 800
    skipped = [f["properties"] for f in review["features"]
               if f["properties"]["decision"] == "skip"]
    assert [p["source_id"] for p in skipped] == ["1-m000542"]  # meter 202, drawn empty
    assert "empty geometry" in skipped[0]["reason"]
    assert "low-precision" in review["features"][0]["properties"]["reason"]
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert report["parameters"]["low_precision"] is True
    assert report["inputs"]["source"]["pdf_derived"] is True
    counts = report["inputs"]["source"]["pdf_counts"]  # 850 drawn, one meter drawn empty
    assert (counts["drawn"], counts["features"], counts["lost"]) == (850, 850, 0)
    assert report["exports"]["nothing_to_upload"] is True  # every proposal is in review
    assert not (run / "changes.osc").exists() and not (run / "maproulette.geojsonl").exists()
    assert (run / "map.html").is_file() and (run / "council-map.html").is_file()


TERRAGO = "geopdf/terrago"


def test_terrago_roads_layer_matches_the_shapefile(data: Path) -> None:
    folder = data / TERRAGO / "Add_Layer_Shapefile"
    legend = Legend((Category("roads", layer="Road Shapefile"),), keep_others=False)
    result = extract_pdf(folder / "12SUE9711082815_geo_OUT.pdf", ExtractOptions(legend=legend))
    assert result.georef.method == "lgidict" and result.georef.crs == "EPSG:32612"
    assert result.counts == {"roads": 58}  # the roads crossing this tile's neatline
    assert {f.geometry.geom_type for f in result.features} == {"LineString"}
    frame = shapely.transform(result.frame, result.georef.to_map)
    # The TerraGo tool placed the NAD 27 shapefile without a datum shift (NAD 27 longitudes and
    # latitudes taken as WGS 84): compare the same way. With a datum shift (PROJ without the
    # NADCON grid) the same comparison gives about 36 m mean, 113 m max.
    roads = gpd.read_file(folder / "Roads.shp").to_crs("EPSG:4267")
    roads = roads.set_crs("EPSG:4326", allow_override=True).to_crs(result.georef.crs).clip(frame)
    reference = shapely.union_all(roads.geometry.values)
    vertices = shapely.points(shapely.get_coordinates(shapely.segmentize(
        shapely.union_all([f.geometry for f in result.features]), 5)))
    distance = shapely.distance(vertices, reference)
    assert distance.mean() < 0.5 and distance.max() < 1.0  # measured 0.06 m mean, 0.25 m max


def _footprints(data: Path) -> dict[str, np.ndarray]:
    kml = (data / TERRAGO / "Build_GRID/00_GeoPDF_Index.kml").read_text(encoding="utf-8")
    out = {}
    for mark in re.findall(r"<Placemark>(.*?)</Placemark>", kml, re.S):
        name = re.search(r"<name>(\w+)</name>", mark).group(1)  # type: ignore[union-attr]
        coords = re.search(r"<coordinates>(.*?)</coordinates>", mark, re.S).group(1)  # type: ignore[union-attr]
        out[name] = np.array([[float(v) for v in c.split(",")[:2]] for c in coords.split()])
    return out


def _footprint(ring: np.ndarray, crs: str) -> shapely.Polygon:
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return shapely.Polygon(np.column_stack(tr.transform(ring[:, 0], ring[:, 1])))


def test_every_build_grid_tile_neatline_matches_its_footprint(data: Path) -> None:
    import pymupdf
    import pypdf

    from pipeline.pdf.georef import georeference

    footprints = _footprints(data)
    assert len(footprints) == 6
    for name, ring in footprints.items():
        path = data / TERRAGO / "Build_GRID" / f"{name}.pdf"
        georef = georeference(pypdf.PdfReader(path), pymupdf.open(path)[0], 0, str(path))
        assert georef.method == "lgidict" and georef.rms_m is not None and georef.rms_m < 1
        neatline = shapely.transform(georef.frame, georef.to_map)
        footprint = _footprint(ring, georef.crs or "")
        assert neatline.symmetric_difference(footprint).area < 0.001 * footprint.area, name


@pytest.mark.parametrize("tile", ["12SUE9988879317", "12SUE9996786249"])
def test_build_grid_ocg_layers_fall_inside_the_footprint(data: Path, tile: str) -> None:
    georef, extents = layer_extents(data / TERRAGO / "Build_GRID" / f"{tile}.pdf")
    footprint = _footprint(_footprints(data)[tile], georef.crs or "").buffer(1.0)
    assert {"Contours", "Water", "Detailed Streets", "Grids"} <= set(extents)
    for layer, extent in extents.items():
        assert footprint.contains(extent), layer
