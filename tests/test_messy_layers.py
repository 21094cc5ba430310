"""Real municipal layers as they are published, end to end through `sig2osm run` and `check`:
nothing lost silently, nothing created in the wrong place. Each test spoils a real layer of
../shared/data the way published data is spoiled (written to tmp_path, never to the repo)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely

from pipeline.cli import main

GRENOBLE = "grenoble-horodateurs/INPUT/data-grenoble.json"
GRENOBLE_OSM = "grenoble-horodateurs/INPUT/osm-raw-data.json"
GRENOBLE_BOUNDS = [5.6776, 45.1541, 5.7531, 45.2140]
METERS = {"amenity": "vending_machine", "vending": "parking_tickets"}


def _profile(tmp_path: Path, source: dict[str, Any], osm: dict[str, Any],
             tags: dict[str, str] | None = None, match: dict[str, Any] | None = None,
             name: str = "messy") -> Path:
    profile = {"name": name, "source": source, "osm": {"match": METERS, **osm},
               "tags": tags or {**METERS, "ref:FR:Grenoble:horodateur": "{HOROD_ID}"},
               "match": {"distance": 30, "ref": "ref:FR:Grenoble:horodateur", **(match or {})}}
    path = tmp_path / f"{name}.yml"
    path.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    return path


def _grenoble(data: Path, tmp_path: Path, spoil: Any = None, name: str = "layer") -> Path:
    frame = gpd.read_file(data / GRENOBLE)
    if spoil is not None:
        frame = spoil(frame)
    path = tmp_path / f"{name}.geojson"
    frame.to_file(path, driver="GeoJSON")
    return path


def _run(profile: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["-q", "run", str(profile), "--out", str(out)])
    return code, capsys.readouterr().err


def _review(out: Path, name: str = "messy") -> list[dict[str, Any]]:
    lines = (out / name / "review.geojson").read_text(encoding="utf-8").splitlines()
    return [json.loads(line.rstrip(","))["properties"] for line in lines
            if line.lstrip().startswith('{"type": "Feature"') or line.startswith('{"type":"Feature"')]


def _counts(out: Path, name: str = "messy") -> dict[str, int]:
    report = json.loads((out / name / "report.json").read_text(encoding="utf-8"))
    return {k: v for k, v in report["counts"].items() if v}


def _local(data: Path) -> dict[str, Any]:
    return {"file": str(data / GRENOBLE_OSM), "bounds": GRENOBLE_BOUNDS}


def _swap(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.set_geometry(shapely.transform(frame.geometry.values, lambda c: c[:, ::-1]))


def test_swapped_axes_stop_the_run_and_name_the_fix(data: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    layer = _grenoble(data, tmp_path, _swap)
    code, err = _run(_profile(tmp_path, {"path": str(layer), "id": "HOROD_ID"}, _local(data)),
                     tmp_path / "out", capsys)
    assert code == 3 and "set source.swap_axes: true" in err
    assert not (tmp_path / "out" / "messy" / "changes.osc").exists()
    assert main(["-q", "check", str(tmp_path / "messy.yml")]) == 3  # check says it too
    fixed = _profile(tmp_path, {"path": str(layer), "id": "HOROD_ID", "swap_axes": True},
                     _local(data))
    code, _ = _run(fixed, tmp_path / "out", capsys)
    assert code == 0 and _counts(tmp_path / "out") == {"create": 842, "modify": 7, "review": 2}


def test_an_outlier_is_skipped_and_never_widens_the_area(data: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    def far(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        frame.loc[frame.index[5], "geometry"] = shapely.Point(40.0, 40.0)  # ~3 000 km away
        return frame

    layer = _grenoble(data, tmp_path, far)
    code, _ = _run(_profile(tmp_path, {"path": str(layer), "id": "HOROD_ID"}, _local(data)),
                   tmp_path / "out", capsys)
    assert code == 0
    outlier = [p for p in _review(tmp_path / "out") if p["reason"].startswith("outlier")]
    assert len(outlier) == 1 and outlier[0]["decision"] == "skip"
    assert re.match(r"outlier: 2,\d{3} km from the rest of the layer \(alone\)",
                    outlier[0]["reason"])
    assert sum(_counts(tmp_path / "out").values()) == 851  # every feature accounted for


def test_an_empty_field_drops_its_tag_not_its_feature(data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def emptied(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        frame.loc[frame.index[::3], "HOROD_ZONE"] = None  # a third of the rows
        return frame

    layer = _grenoble(data, tmp_path, emptied)
    tags = {**METERS, "ref:FR:Grenoble:horodateur": "{HOROD_ID}", "zone": "{HOROD_ZONE}"}
    profile = _profile(tmp_path, {"path": str(layer), "id": "HOROD_ID"}, _local(data), tags)
    code, _ = _run(profile, tmp_path / "out", capsys)
    assert code == 0
    counts = _counts(tmp_path / "out")
    assert counts.get("skip", 0) == 0 and sum(counts.values()) == 851
    empty = int(gpd.read_file(layer)["HOROD_ZONE"].isna().sum())  # 284 emptied, 92 already
    assert empty == 376
    report = json.loads((tmp_path / "out" / "messy" / "report.json").read_text())
    assert report["inputs"]["source"]["tags_left_out"] == {
        "zone": {"features": empty, "fields": ["HOROD_ZONE"]}}
    assert main(["check", str(profile)]) == 0
    assert f"tag zone left out of {empty} feature(s): field HOROD_ZONE" in capsys.readouterr().out


def test_duplicates_in_the_source_go_to_review_together(data: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    def doubled(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        copy = frame.iloc[[100]].copy()
        copy["HOROD_ID"] = "copy-of-" + str(frame.iloc[100]["HOROD_ID"])
        copy = copy.set_geometry(copy.geometry.translate(0.00002, 0))  # 1.6 m east
        return gpd.GeoDataFrame(
            __import__("pandas").concat([frame, copy], ignore_index=True), crs=frame.crs)

    layer = _grenoble(data, tmp_path, doubled)
    code, _ = _run(_profile(tmp_path, {"path": str(layer), "id": "HOROD_ID"}, _local(data)),
                   tmp_path / "out", capsys)
    assert code == 0
    pair = [p for p in _review(tmp_path / "out") if "listed twice" in p["reason"]]
    assert len(pair) == 2 and {p["decision"] for p in pair} == {"review"}
    original = next(p["source_id"] for p in pair if not p["source_id"].startswith("copy-of-"))
    assert f"copy-of-{original}" in pair[0]["reason"] and original in pair[1]["reason"]


def test_attributes_as_published_are_usable(tmp_path: Path, data: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A list-valued property, double-encoded UTF-8 and a near-duplicate: no crash, text
    repaired with a warning, nothing lost."""
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, 45.19]},
                 "properties": {"id": i, "types": ["payant", "horodateur"],
                                "rue": "Rue de la VillÃ©giature" if i % 2 else "Allée dâ€™Aulnay"}}
                for i, x in enumerate((5.720, 5.722, 5.724, 5.726))]
    layer = tmp_path / "layer.geojson"
    layer.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                                ensure_ascii=False), encoding="utf-8")
    tags = {**METERS, "note": "{types}", "addr:street": "{rue}"}
    profile = _profile(tmp_path, {"path": str(layer), "id": "id"}, _local(data), tags,
                       {"ref": None})
    code, _ = _run(profile, tmp_path / "out", capsys)
    assert code == 0
    report = json.loads((tmp_path / "out" / "messy" / "report.json").read_text())
    assert report["inputs"]["source"]["text_repaired"] == {"rue": {
        "values": 4, "example": ["Allée dâ€™Aulnay", "Allée d’Aulnay"]}}
    tags_out = [p["tags"] for p in _review(tmp_path / "out")]
    assert {t["addr:street"] for t in tags_out} == {"Rue de la Villégiature", "Allée d’Aulnay"}
    assert {t["note"] for t in tags_out} == {"payant;horodateur"}


def test_csv_decimal_commas(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    comma = tmp_path / "comma.csv"
    comma.write_text("id,lon,lat\n1,5,7200,45,1880\n2,5.7210,45.1880\n", encoding="utf-8")
    profile = _profile(tmp_path, {"path": str(comma), "id": "id"}, _local(data), dict(METERS),
                       {"ref": None})
    code, err = _run(profile, tmp_path / "out", capsys)
    assert code == 3 and "line 2 (5 fields)" in err and "decimal comma" in err
    semicolon = tmp_path / "semicolon.csv"
    semicolon.write_text("id;lon;lat\n1;5,720134;45,188021\n2;5,721157;45,188093\n",
                         encoding="utf-8")
    profile = _profile(tmp_path, {"path": str(semicolon), "id": "id"}, _local(data), dict(METERS),
                       {"ref": None}, name="semi")
    code, _ = _run(profile, tmp_path / "out", capsys)
    assert code == 0 and _counts(tmp_path / "out", "semi") == {"create": 2}
    report = json.loads((tmp_path / "out" / "semi" / "report.json").read_text())
    assert report["inputs"]["source"]["decimal_commas"] == ["lon", "lat"]


def test_a_wrong_crs_is_diagnosed_with_the_right_one(data: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Bondy's bornes are in Lambert-93; declared as the CC49 zone they land 100 km away."""
    source = {"path": str(data / "bondy/municipal/bondy_layers.gpkg"), "layer": "bornes",
              "id": "id", "crs": "EPSG:3949"}
    profile = _profile(tmp_path, source, {"file": str(data / "bondy/osm/map.osm")},
                       {"amenity": "charging_station"}, {"ref": None})
    code, err = _run(profile, tmp_path / "out", capsys)
    assert code == 3 and "set source.crs: EPSG:2154" in err


def _clipped_extract(source: Path, keep: tuple[float, float, float, float],
                     declared: tuple[float, float, float, float], target: Path) -> Path:
    """The objects of `source` inside `keep` (as `osmium extract` cuts by a polygon), under a
    header that declares the larger box `declared`."""
    import osmium

    west, south, east, north = keep
    kept: set[int] = set()
    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(osmium.osm.Location(declared[0], declared[1]),
                                  osmium.osm.Location(declared[2], declared[3])))
    with osmium.SimpleWriter(str(target), header=header) as writer:
        for obj in osmium.FileProcessor(str(source)):
            if obj.is_node():
                if west <= obj.location.lon <= east and south <= obj.location.lat <= north:
                    kept.add(obj.id)
                    writer.add_node(obj)
            elif obj.is_way() and all(n.ref in kept for n in obj.nodes):
                writer.add_way(obj)
    return target


def test_extract_bounds_larger_than_its_data_do_not_make_creates(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """Central Bondy cut from map.osm under a header declaring the whole commune: meters
    outside the mapped core are skipped, not created as probable duplicates."""
    core = (2.4779, 48.9068, 2.4911, 48.9128)  # the <bounds> of map.osm
    extract = _clipped_extract(data / "bondy/osm/map.osm", core, (2.46, 48.88, 2.50, 48.92),
                               tmp_path / "clipped.osm.pbf")
    source = {"path": str(data / "bondy/municipal/bondy_layers.gpkg"), "layer": "horodateur2025",
              "id": "identifiant"}
    profile = _profile(tmp_path, source, {"file": str(extract)}, dict(METERS), {"ref": None})
    code, _ = _run(profile, tmp_path / "out", capsys)
    assert code == 0 and "of the declared area holds no OSM data" in caplog.text
    counts = _counts(tmp_path / "out")
    # 3 lie in the core; a few more within a grid cell (150 m) of its last tagged nodes, not
    # the 52 of the declared box
    assert counts["create"] <= 8 and counts["create"] + counts["skip"] == 108


def test_rounded_coordinates_make_the_layer_low_precision(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def rounded(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        return frame.set_geometry(shapely.transform(frame.geometry.values,
                                                    lambda c: c.round(3)))

    layer = _grenoble(data, tmp_path, rounded)
    code, _ = _run(_profile(tmp_path, {"path": str(layer), "id": "HOROD_ID"}, _local(data)),
                   tmp_path / "out", capsys)
    assert code == 0
    counts = _counts(tmp_path / "out")
    assert "create" not in counts and "modify" not in counts  # every proposal reviewed
    reasons = [p["reason"] for p in _review(tmp_path / "out") if p["decision"] == "review"]
    assert any("low-precision source (coordinates rounded to 111 m)" in r for r in reasons)
    assert any("listed twice" in r for r in reasons)  # stacked on one spot
