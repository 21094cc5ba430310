"""`sig2osm pdf georef`: control points found for plain PDF maps drawn from real OSM streets and
the Bondy cadastre (tests/pdf_maps.py), through a local extract and a loopback Overpass server;
what it refuses and why; the plain-PDF workflow to a council map."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs

import geopandas as gpd
import numpy as np
import osmium
import osmium.filter
import pyogrio
import pytest
import shapely

from pipeline.cli import main
from pipeline.kernel.osm import OsmElement
from pipeline.pdf.georef import read_points_file
from pipeline.pdf.label_matching import street_candidates
from pipeline.pdf.osm_streets import Street, place_area
from pipeline.pdf.symbols import Label
from pipeline.pdf.transforms import fit_to_lines
from tests.loopback import Reply, overpass_server
from tests.pdf_maps import DrawnMap, MapSpec, PlanSpec, draw_parcel_plan, draw_plain_map

BONDY_OSM = "bondy/osm/map.osm"
CADASTRE = "bondy/municipal/cadastre2024.geojson.gz"
CENTRE = (2.4845, 48.9097)
PATH = "/api/interpreter"


@pytest.fixture(scope="module")
def noisy_map(data: Path, tmp_path_factory: pytest.TempPathFactory) -> DrawnMap:
    """Bondy at 1:3 400, turned 23°, streets simplified (2 m) and moved (up to 4 m) as if drawn
    from other data, two labels naming no OSM street and two naming the wrong street."""
    spec = MapSpec(data / BONDY_OSM, CENTRE, 1.2, 23.0, "plain", simplify_m=2.0, warp_m=4.0,
                   unknown_labels=2, wrong_labels=2)
    return draw_plain_map(spec, tmp_path_factory.mktemp("plain") / "plan.pdf")


def _symbol_errors(drawn: DrawnMap, gpkg: Path) -> np.ndarray:
    """Distance from each symbol drawn to the nearest point extracted (metres)."""
    layers = [name for name, kind in pyogrio.list_layers(gpkg)
              if kind == "Point" and not name.startswith("pdf_")]
    points = np.vstack([gpd.read_file(gpkg, layer=n).to_crs(drawn.crs).get_coordinates().values
                        for n in layers])
    truth = np.array([xy for positions in drawn.symbols.values() for xy in positions])
    gaps = np.hypot(*(truth[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    return gaps.min(axis=1)


def test_labels_place_a_plain_map_and_name_the_wrong_labels(
        data: Path, noisy_map: DrawnMap, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    points = tmp_path / "plan.points"
    capsys.readouterr()
    assert main(["pdf", "georef", str(noisy_map.path), "--osm", str(data / BONDY_OSM),
                 "--out", str(points)]) == 0
    printed = capsys.readouterr().out
    assert "control points by street labels" in printed
    wrong = [name for name in noisy_map.labels if name in noisy_map.wrong]
    assert len(wrong) == 2 and all(f"outlier: label {name!r}" in printed for name in wrong)
    lines = points.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#CRS: EPSG:326") and lines[1].startswith(
        "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual")
    found, crs = read_points_file(points)
    assert len(found) >= 12 and crs.startswith("EPSG:326")  # the UTM zone of Bondy
    gpkg = tmp_path / "plan.gpkg"
    assert main(["pdf", "extract", str(noisy_map.path), "--gcps", str(points),
                 "--out", str(gpkg)]) == 0
    errors = _symbol_errors(noisy_map, gpkg)
    assert len(errors) == 14 and errors.mean() < 5.0  # measured 1.6 m mean, 3.0 m max


def test_casing_style_on_a_turned_page_in_lambert_93(data: Path, tmp_path: Path) -> None:
    spec = MapSpec(data / BONDY_OSM, (2.4830, 48.9100), 0.9, -38.0, "casing")
    drawn = draw_plain_map(spec, tmp_path / "casing.pdf")
    points = tmp_path / "casing.points"
    assert main(["pdf", "georef", str(drawn.path), "--osm", str(data / BONDY_OSM),
                 "--crs", "EPSG:2154", "--out", str(points)]) == 0
    assert points.read_text(encoding="utf-8").startswith("#CRS: EPSG:2154\n")
    gpkg = tmp_path / "casing.gpkg"
    assert main(["pdf", "extract", str(drawn.path), "--gcps", str(points), "--out",
                 str(gpkg)]) == 0
    errors = _symbol_errors(drawn, gpkg)
    assert errors.mean() < 1.0  # drawn from OSM itself: measured 0.1 m


def _overpass_json(elements: list[dict[str, object]]) -> str:
    return json.dumps({"version": 0.6, "generator": "Overpass API (loopback)",
                       "osm3s": {"timestamp_osm_base": "2024-01-01T00:00:00Z"},
                       "elements": elements})


def _street_answer(path: Path) -> str:
    """The highway ways of an extract and their nodes as Overpass sends them (`(._;>;); out
    meta;`)."""
    ways, nodes = [], {}
    for way in (osmium.FileProcessor(str(path)).with_locations()
                .with_filter(osmium.filter.KeyFilter("highway"))):
        if isinstance(way, osmium.osm.Way):
            ways.append({"type": "way", "id": way.id, "version": way.version,
                         "tags": dict(way.tags), "nodes": [n.ref for n in way.nodes]})
            nodes.update({n.ref: {"type": "node", "id": n.ref, "version": 1, "lat": n.lat,
                                  "lon": n.lon} for n in way.nodes})
    return _overpass_json([*nodes.values(), *ways])


def test_overpass_finds_the_place_and_its_streets(data: Path, noisy_map: DrawnMap,
                                                  tmp_path: Path) -> None:
    streets = _street_answer(data / BONDY_OSM)
    bondy = _overpass_json([{"type": "node", "id": 1, "version": 3, "lat": 48.9022,
                             "lon": 2.4828, "tags": {"place": "town", "name": "Bondy"}}])

    def respond(request: bytes) -> str:
        query = parse_qs(request.decode())["data"][0]
        return bondy if '["place"]' in query else streets

    with overpass_server() as server:
        server.script(PATH, [Reply(respond=respond)])
        points = tmp_path / "plan.points"
        args = ["pdf", "georef", str(noisy_map.path), "--near", "Bondy", "--out", str(points),
                "--overpass-url", server.url(PATH)]
        assert main(args) == 0
        queries = [parse_qs(r.body.decode())["data"][0] for r in server.requests
                   if r.path == PATH]
        assert len(queries) == 2
        assert 'node["place"]["name"="Bondy"]' in queries[0]
        assert 'way["highway"](48.8662' in queries[1]  # 4 km around the town
        assert len(read_points_file(points)[0]) >= 12
        assert main(args) == 0  # again: answered from the cache next to the output
        assert server.count(PATH) == 2
    assert (tmp_path / ".cache").is_dir()


def test_what_georef_refuses(data: Path, noisy_map: DrawnMap, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x.points")
    plan, osm = str(noisy_map.path), str(data / BONDY_OSM)
    cases = [
        (["--osm", osm, "--bbox", "5.70,45.18,5.71,45.19"], 4, "no named OSM street in map.osm"),
        (["--osm", osm, "--min-matches", "40"], 6, "at least 40 are needed"),
        (["--osm", osm, "--max-rms", "0.05"], 6, "above the 0.05 m limit (--max-rms)"),
        (["--osm", osm, "--near", "Brest"], 6, "no place or administrative boundary"),
        (["--osm", osm, "--bbox", "2.5,48.9,2.4,48.95"], 6, "expected west < east"),
        ([], 6, "needs a search area: give --near PLACE or --bbox"),
        (["--osm", osm, "--crs", "EPSG:4326"], 6, "is not projected"),
    ]
    for args, code, message in cases:
        capsys.readouterr()
        assert main(["pdf", "georef", plan, "--out", out, *args]) == code, args
        # the error paragraph may wrap anywhere, at a hyphen of "--max-rms" too
        assert "".join(message.split()) in "".join(capsys.readouterr().err.split()), args
    assert not Path(out).exists()


def test_parcels_place_a_plan_drawn_from_the_cadastre(data: Path, tmp_path: Path) -> None:
    """Parcels as one outlined network (strokes converted to outlines, as on Bondy's plans),
    turned 115°, at 1:1 400, matched by shape and neighbourhood to the 7 120 parcels."""
    spec = PlanSpec(data / CADASTRE, (2.4790, 48.9150), 0.5, -115.0, outlined=True)
    drawn = draw_parcel_plan(spec, tmp_path / "parcels.pdf")
    points = tmp_path / "parcels.points"
    assert main(["pdf", "georef", str(drawn.path), "--parcels", str(data / CADASTRE),
                 "--crs", "EPSG:2154", "--out", str(points)]) == 0
    found, _ = read_points_file(points)
    assert len(found) >= 20
    names = [row.split(",", 8)[8] for row in points.read_text().splitlines()[2:]]
    assert all(name.startswith("outline ") and "→ parcel 93010" in name for name in names)
    gpkg = tmp_path / "parcels.gpkg"
    assert main(["pdf", "extract", str(drawn.path), "--gcps", str(points), "--out",
                 str(gpkg)]) == 0
    assert _symbol_errors(drawn, gpkg).mean() < 1.0  # measured 0.1 m


def test_the_real_plan_is_refused_against_the_bondy_cadastre(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real plan `20231124_Adressage_168bisJaures.pdf` is of Pantin (168 bis avenue Jean
    Jaurès, Aubervilliers across the avenue, "Ville de Pantin" in its footer); the cadastre of
    ../shared/data holds Bondy's parcels only (commune 93010). Its 60 parcel outlines find no
    consistent match there, and no placement is written rather than a wrong one."""
    out = tmp_path / "real.points"
    assert main(["pdf", "georef", str(data / "bondy/pdf/20231124_Adressage_168bisJaures.pdf"),
                 "--parcels", str(data / CADASTRE), "--out", str(out)]) == 6
    error = " ".join(capsys.readouterr().err.split())
    assert "match no cadastre parcels of cadastre2024.geojson.gz consistently" in error
    assert re.search(r"only [0-3] independent matches by parcels \(stroke #231f20 0\.5pt\)",
                     error)  # a few coincidences among 7 120 parcels, never 4
    assert not out.exists()


def test_profile_gives_the_extract_and_the_area(data: Path, noisy_map: DrawnMap,
                                                tmp_path: Path) -> None:
    profile = tmp_path / "council.yml"
    profile.write_text(f"""name: bondy-projects
source: {{path: plan.gpkg, layer: projects, id: pdf_id}}
osm:
  match: {{leisure: picnic_table}}
  file: {data / BONDY_OSM}
  bounds: [2.4779, 48.9067, 2.4911, 48.9128]
tags: {{leisure: picnic_table}}
""", encoding="utf-8")
    points = tmp_path / "plan.points"
    assert main(["pdf", "georef", str(noisy_map.path), "--profile", str(profile),
                 "--out", str(points)]) == 0
    assert len(read_points_file(points)[0]) >= 12


def test_from_plain_pdf_to_council_map_and_change_files(data: Path, noisy_map: DrawnMap,
                                                       tmp_path: Path) -> None:
    """The README workflow: georef, extract with a legend, a profile, a run: every proposal
    from the plan is held for review (low precision) and the council map shows the layer."""
    points, gpkg = tmp_path / "plan.points", tmp_path / "plan.gpkg"
    legend = tmp_path / "legend.yml"
    legend.write_text("others: drop\ncategories:\n"
                      "  - {name: projects, fill: '#e51a1a', geometry: point,"
                      " tags: {leisure: picnic_table}}\n", encoding="utf-8")
    assert main(["pdf", "georef", str(noisy_map.path), "--osm", str(data / BONDY_OSM),
                 "--out", str(points)]) == 0
    assert main(["pdf", "extract", str(noisy_map.path), "--gcps", str(points), "--legend",
                 str(legend), "--out", str(gpkg)]) == 0
    profile = tmp_path / "council.yml"
    profile.write_text(f"""name: bondy-projects
source: {{path: {gpkg}, layer: projects, id: pdf_id}}
osm:
  match: {{leisure: picnic_table}}
  file: {data / BONDY_OSM}
  expect_empty: true
tags: {{leisure: picnic_table}}
map: {{title: Projets du conseil de quartier, tiles: false}}
""", encoding="utf-8")
    assert main(["run", str(profile), "--out", str(tmp_path / "out")]) == 0
    run = tmp_path / "out" / "bondy-projects"
    review = json.loads((run / "review.geojson").read_text(encoding="utf-8"))["features"]
    decisions = {f["properties"]["decision"] for f in review}
    assert len(review) == len(noisy_map.symbols["triangle"]) and decisions <= {"review", "skip"}
    assert (run / "council-map.html").is_file() and (run / "map.html").is_file()
    counts = json.loads((run / "report.json").read_text(encoding="utf-8"))["inputs"]["source"]
    counts = counts["pdf_counts"]  # the count check of the extraction, for this layer
    assert counts["features"] == len(review) and counts["lost"] == 0


# --- units ------------------------------------------------------------------------------------


def test_fit_to_lines_recovers_an_affine_from_lines_alone() -> None:
    """Points known only to lie on lines (streets) in four directions fix an affine."""
    rng = np.random.default_rng(3)
    page = rng.uniform(0, 500, size=(40, 2))
    truth = np.array([[1.7, -0.4], [0.5, 1.6]])
    world = page @ truth.T + [650000.0, 6860000.0]
    angles = rng.choice(np.radians([0, 45, 90, 135]), size=40)
    along = np.column_stack([np.cos(angles), np.sin(angles)])
    slid = world + along * rng.uniform(-30, 30, size=(40, 1))  # anywhere along the line
    fitted = fit_to_lines("affine", page, slid, np.column_stack([-along[:, 1], along[:, 0]]),
                          "test")
    assert fitted.rms < 1e-6
    assert np.allclose(fitted.apply(page), world, atol=1e-6)


def _street(name: str, *other: str) -> Street:
    return Street(name, (name, *other), shapely.LineString([(0, 0), (1, 1)]),
                  ("way/1",))


def test_labels_are_read_as_the_conflation_reads_names() -> None:
    streets = [_street("Avenue Jean Jaurès", "RD932 Avenue Jean Jaurès"),
               _street("Rue de la Paix"), _street("Allée des Dahlias")]
    labels = [Label(text, shapely.Point(0, 0), 8) for text in (
        "AV. JEAN JAURÈS", "RD932 AVENUE JEAN JAURÈS", "R. DE LA PAIX", "Allee des Dahlia",
        "AUBERVILLIERS", "168", "Rue du Projet")]
    assert street_candidates(labels, streets) == {0: [0], 1: [0], 2: [1], 3: [2]}


def test_near_prefers_a_boundary_and_refuses_two_equal_places() -> None:
    from shapely.geometry import Point, box

    town = OsmElement("node", 1, 1, {"place": "town", "name": "Bondy"}, Point(2.48, 48.90))
    hamlet = OsmElement("node", 2, 1, {"place": "hamlet", "name": "Bondy"}, Point(5.0, 45.0))
    commune = OsmElement("relation", 3, 1, {"boundary": "administrative", "admin_level": "8",
                                            "name": "Bondy"}, box(2.46, 48.89, 2.50, 48.92))
    assert place_area("bondy", [town, hamlet], "x").bbox == pytest.approx(  # 4 km around a town
        (2.4253, 48.8641, 2.5347, 48.9359), abs=1e-3)
    assert place_area("Bondy", [town, commune], "x").bbox == (2.46, 48.89, 2.5, 48.92)
    twin = OsmElement("node", 4, 1, {"place": "town", "name": "Bondy"}, Point(3.0, 47.0))
    with pytest.raises(Exception, match="names several places"):
        place_area("Bondy", [town, twin], "x")


def test_parcels_of_a_lambert_93_file_are_cut_to_the_area_in_degrees(data: Path,
                                                                     tmp_path: Path) -> None:
    from pipeline.pdf.parcel_matching import read_parcels

    cadastre = gpd.read_file(f"/vsigzip/{data / CADASTRE}").to_crs("EPSG:2154")
    path = tmp_path / "cadastre-l93.gpkg"
    cadastre.to_file(path)
    bbox = (2.478, 48.905, 2.486, 48.912)
    found, crs = read_parcels(path, bbox, None)
    inside = cadastre.to_crs("EPSG:4326").intersects(shapely.box(*bbox)).sum()
    assert len(found) > 20 and abs(len(found) - inside) <= 0.05 * inside
    assert crs.to_epsg() == 32631
    assert read_parcels(path, bbox, "EPSG:2154")[1].to_epsg() == 2154


def test_a_map_drawn_in_degrees_is_placed_and_a_stranger_one_refused(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A north-up map drawn in longitude and latitude (EPSG:4326 in a GIS: stretched 1.52
    east-west at Bondy) is placed as such (affine). The same stretch on a turned map, drawn
    from other data and with wrong labels, fits no similarity nor the degrees case: the best
    placement (six labels agree) leaves the drawn streets off OSM's, and is refused."""
    stretch = 1 / np.cos(np.radians(48.91))
    flat = draw_plain_map(MapSpec(data / BONDY_OSM, CENTRE, 1.2, 0.0, aspect=stretch,
                                  simplify_m=2.0, warp_m=4.0), tmp_path / "degrees.pdf")
    points = tmp_path / "degrees.points"
    capsys.readouterr()
    assert main(["pdf", "georef", str(flat.path), "--osm", str(data / BONDY_OSM),
                 "--out", str(points)]) == 0
    assert "affine transform" in capsys.readouterr().out
    gpkg = tmp_path / "degrees.gpkg"
    assert main(["pdf", "extract", str(flat.path), "--gcps", str(points), "--out",
                 str(gpkg)]) == 0
    assert _symbol_errors(flat, gpkg).mean() < 5.0  # measured 1.2–2.3 m
    turned = draw_plain_map(MapSpec(data / BONDY_OSM, CENTRE, 1.2, 23.0, aspect=stretch,
                                    simplify_m=2.0, warp_m=4.0, unknown_labels=2,
                                    wrong_labels=2), tmp_path / "turned.pdf")
    assert main(["pdf", "georef", str(turned.path), "--osm", str(data / BONDY_OSM),
                 "--out", str(tmp_path / "turned.points")]) == 6
    error = "".join(capsys.readouterr().err.split())
    assert "isnottrusted:onceplaced,thedrawnstreetsfollowOSMstreetsover" in error
    assert not (tmp_path / "turned.points").exists()
