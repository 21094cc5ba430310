"""End to end through the CLI on real data, and every bad input as a clear error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import osmium
import pytest

from pipeline.cli import main
from pipeline.profile import load_profile
from tests.conftest import EXAMPLES

GRENOBLE = EXAMPLES / "grenoble" / "parking-meters.yml"
BONDY = EXAMPLES / "bondy" / "parking-meters.yml"
CONTRACT = {"source_id", "decision", "osm_id", "distance_m", "reason", "tags"}
DECISIONS = {"create", "modify", "unchanged", "review", "skip", "missing"}


@pytest.fixture(scope="module")
def grenoble_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    assert main(["-q", "run", str(GRENOBLE), "--out", str(out)]) == 0
    return out / "grenoble-parking-meters"


def test_grenoble_every_meter_has_one_decision(grenoble_run: Path) -> None:
    review = json.loads((grenoble_run / "review.geojson").read_text())
    features = review["features"]
    assert len(features) == 851
    ids = [f["properties"]["source_id"] for f in features]
    assert len(set(ids)) == 851
    for feature in features:
        assert set(feature["properties"]) >= CONTRACT
        assert feature["properties"]["decision"] in DECISIONS
    report = json.loads((grenoble_run / "report.json").read_text())
    assert sum(report["counts"].values()) == 851
    assert report["counts"]["create"] == 842
    assert report["inputs"]["source"]["sha256"]
    assert report["osm"]["osm_base"] == "2019-02-06T09:03:02Z"
    assert "osm.bounds" in report["osm"]["area"]


def test_grenoble_matches_agree_with_the_2019_import(grenoble_run: Path, data: Path) -> None:
    """The 2019 script excluded the meters within 30 m of an OSM meter (its `ref` is the
    plate number HOROD_NUMPLASTRON) and kept the others: we decide the same split."""
    source = json.loads((data / "grenoble-horodateurs/INPUT/data-grenoble.json").read_text())
    plate = {str(f["properties"]["HOROD_ID"]): f["properties"]["HOROD_NUMPLASTRON"]
             for f in source["features"]}
    out_2019 = data / "grenoble-horodateurs/OUT"
    excluded = {f["properties"]["ref"]
                for f in json.loads((out_2019 / "exclude.geojson").read_text())["features"]}
    kept = json.loads((out_2019 / "keep.geojson").read_text())["features"]
    review = json.loads((grenoble_run / "review.geojson").read_text())
    near_osm = {plate[f["properties"]["source_id"]] for f in review["features"]
                if f["properties"]["decision"] != "create"}
    created = [f for f in review["features"] if f["properties"]["decision"] == "create"]
    assert near_osm == excluded
    assert len(created) == len(kept) == 842


def test_grenoble_change_file_reads_back(grenoble_run: Path) -> None:
    created, modified = 0, 0
    for obj in osmium.FileProcessor(str(grenoble_run / "changes.osc")):
        if obj.id < 0:
            created += 1
            assert obj.version == 1
        else:
            modified += 1
            assert obj.version >= 1
    assert created == 842
    text = (grenoble_run / "changes.osc").read_text()
    assert text.count("<modify>") == 1 and modified == 7
    josm = (grenoble_run / "changes.osm").read_text()
    assert 'upload="false"' in josm and 'action="modify"' in josm and "<bounds " in josm


def test_grenoble_map_is_written(grenoble_run: Path) -> None:
    page = (grenoble_run / "map.html").read_text()
    assert "OpenStreetMap" in page


def test_bondy_skips_what_the_extract_does_not_cover(tmp_path: Path) -> None:
    assert main(["-q", "run", str(BONDY), "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bondy-parking-meters" / "report.json").read_text())
    counts = report["counts"]
    assert sum(counts.values()) == 108
    assert counts["skip"] > 0 and counts["create"] > 0  # the export covers a part of Bondy
    review = json.loads((tmp_path / "bondy-parking-meters" / "review.geojson").read_text())
    skipped = [f for f in review["features"] if f["properties"]["decision"] == "skip"]
    assert all("outside the area the OSM data covers" in f["properties"]["reason"]
               for f in skipped)


def test_stages_run_alone_write_what_run_writes(tmp_path: Path, grenoble_run: Path) -> None:
    """`run` builds review.geojson and the map in a second process; the stages one by one
    (each loading what the one before kept in work/) give the same bytes."""
    out = str(tmp_path)
    for stage in ("ingest", "fetch", "conflate", "export", "map"):
        assert main(["-q", stage, str(GRENOBLE), "--out", out]) == 0
    alone = tmp_path / "grenoble-parking-meters"
    for name in ("review.geojson", "map.html", "changes.osc", "maproulette.geojsonl"):
        assert (alone / name).read_bytes() == (grenoble_run / name).read_bytes(), name
    table = json.loads((alone / "work" / "conflate.json").read_text())  # conflate's result
    assert len(table) == 851 and {d["decision"] for d in table} == {"create", "modify", "review"}
    # A whole run keeps the same table for the next stage run alone.
    assert (grenoble_run / "work" / "conflate.json").read_bytes() == (
        alone / "work" / "conflate.json").read_bytes()


def test_check_describes_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(GRENOBLE)]) == 0
    text = capsys.readouterr().out
    assert "851 features, 851 usable" in text and "17 candidates" in text
    # each proposed key under the policy it follows, described from the policy registry
    assert ("tag policy add-if-missing: amenity, vending, ref:FR:Grenoble:horodateur (add when "
            "OSM lacks the key; a different OSM value is kept and shown to reviewers)") in text


def test_check_groups_keys_by_their_policy(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    profile = GRENOBLE.read_text(encoding="utf-8").replace(
        "  authoritative: []", "  authoritative: [vending]\n  policies: {amenity: keep-osm}")
    profile = profile.replace("../../../shared", str(GRENOBLE.parents[3] / "shared"))
    (tmp_path / "p.yml").write_text(profile, encoding="utf-8")
    assert main(["check", str(tmp_path / "p.yml")]) == 0
    text = capsys.readouterr().out
    policies = [line.removeprefix("tag policy ") for line in text.splitlines()
                if line.startswith("tag policy ")]
    assert {line.split(" (")[0] for line in policies} == {
        "keep-osm: amenity", "authoritative: vending",
        "add-if-missing: ref:FR:Grenoble:horodateur"}
    assert "keep-osm: amenity (add when OSM lacks the key; a different OSM value is kept " \
           "silently)" in policies


OFFLINE_EXAMPLES = ["grenoble/parking-meters.yml", "bondy/parking-meters.yml",
                    "bondy/council-map.yml"]


@pytest.mark.parametrize("example", OFFLINE_EXAMPLES)
def test_check_and_run_agree(example: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    profile = EXAMPLES / example
    assert main(["check", str(profile)]) == 0
    text = capsys.readouterr().out
    said = re.search(r"a run would decide: (.*)", text)
    assert said is not None
    assert main(["-q", "run", str(profile), "--out", str(tmp_path)]) == 0
    ran = json.loads((tmp_path / load_profile(profile).name / "report.json").read_text())
    assert said.group(1) == ", ".join(f"{n} {k}" for k, n in ran["counts"].items() if n)
    skipped = ran["counts"]["skip"]
    assert not skipped or f"skip {skipped}: outside the area the OSM data covers" in text


# --- bad inputs: a clear error, a non-zero exit, no partial output ---------------------------


def profile_copy(tmp_path: Path, data: Path, edit: tuple[str, str] | None = None) -> Path:
    text = BONDY.read_text(encoding="utf-8")
    text = text.replace("../../../shared/data", str(data))
    if edit:
        assert edit[0] in text
        text = text.replace(*edit)
    path = tmp_path / "profile.yml"
    path.write_text(text, encoding="utf-8")
    return path


BAD = {
    "missing file": (("bondy_layers.gpkg", "nope.gpkg"), 3, "no such file"),
    "unknown layer": (("layer: horodateur2025", "layer: horodateurs"), 3, "no layer 'horodateurs'"),
    "missing id field": (("id: identifiant", "id: ident"), 3, "id field 'ident'"),
    "duplicate ids": (("id: identifiant", "id: zone"), 3, "duplicate ids in field 'zone'"),
    "unknown key": (("  distance: 30", "  distanse: 30"), 2, "did you mean 'distance'"),
    "malformed yaml": (("name: bondy-parking-meters", "name: [bondy"), 2, "malformed YAML"),
    "not osm": (("bondy/osm/map.osm", "bondy/municipal/ban_adresses_bondy.csv"), 4,
                "not an OSM file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_clear_error(case: str, tmp_path: Path, data: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    edit, code, message = BAD[case]
    profile = profile_copy(tmp_path, data, edit)
    out = tmp_path / "out"
    assert main(["-q", "run", str(profile), "--out", str(out)]) == code
    err = capsys.readouterr().err
    assert message in " ".join(err.split())
    assert err.startswith("sig2osm: error: ")
    assert not list(out.glob("*/changes.osc"))


def test_empty_layer_and_no_crs(tmp_path: Path, data: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    import geopandas as gpd

    frame = gpd.read_file(data / "bondy/municipal/bondy_layers.gpkg", layer="horodateur2025")
    frame.iloc[0:0].to_file(tmp_path / "empty.gpkg", layer="horodateur2025")
    shp = tmp_path / "meters.shp"
    frame.rename(columns={"identifiant": "ident"}).to_file(shp)
    shp.with_suffix(".prj").unlink()
    cases = [
        ((str(data / "bondy/municipal/bondy_layers.gpkg"), str(tmp_path / "empty.gpkg")), "empty"),
        ((f"{data}/bondy/municipal/bondy_layers.gpkg\n  layer: horodateur2025\n  id: identifiant",
          f"{shp}\n  id: ident"), "declares no CRS"),
    ]
    for edit, message in cases:
        text = profile_copy(tmp_path, data).read_text().replace(*edit)
        (tmp_path / "profile.yml").write_text(text)
        assert main(["-q", "run", str(tmp_path / "profile.yml"), "--out", str(tmp_path)]) == 3
        assert message in capsys.readouterr().err


def test_failed_run_leaves_earlier_outputs_intact(tmp_path: Path, data: Path) -> None:
    good = profile_copy(tmp_path, data)
    out = tmp_path / "out"
    assert main(["-q", "run", str(good), "--out", str(out)]) == 0
    run_dir = out / "bondy-parking-meters"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    shutil.copy(good, tmp_path / "good.yml")
    bad = profile_copy(tmp_path, data, ("bondy/osm/map.osm", "bondy/osm/rue2023.geojson"))
    assert main(["-q", "run", str(bad), "--out", str(out)]) != 0
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert after == before


@pytest.mark.parametrize("failing", ["build_exports", "review_features"])
def test_a_failure_in_either_process_writes_nothing(failing: str, tmp_path: Path, data: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The change files (this process) and the review file and maps (the second process) are
    written only when both have succeeded."""
    import pipeline.stages
    from pipeline.kernel.errors import ExportError

    good = profile_copy(tmp_path, data)
    out = tmp_path / "out"
    assert main(["-q", "run", str(good), "--out", str(out)]) == 0
    run_dir = out / "bondy-parking-meters"
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()
              if p.is_file() and not p.name.startswith(".")}

    def broken(*args: object, **kwargs: object) -> None:
        raise ExportError("validation failed on purpose")

    monkeypatch.setattr(pipeline.stages, failing, broken)
    assert main(["-q", "run", str(good), "--out", str(out)]) == 5
    after = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()
             if p.is_file() and not p.name.startswith(".")}
    assert after == before
    assert len(list((run_dir / ".generations").iterdir())) == 1  # what was written is gone


# --- invariant 5 on the real examples: run, apply changes.osc, run again → nothing to do -------


def _state_as_overpass_json(state: dict, path: Path) -> None:
    """The applied OSM state as a recorded Overpass answer (the examples change nodes only)."""
    assert {kind for kind, _ in state} <= {"node"}
    elements = [{"type": "node", "id": o.id, "lat": o.lat, "lon": o.lon,
                 "version": o.version or 1, "tags": o.tags} for o in state.values()]
    answer = {"version": 0.6, "osm3s": {"timestamp_osm_base": "2019-02-06T09:03:02Z"},
              "elements": elements}
    path.write_text(json.dumps(answer), encoding="utf-8")


def test_grenoble_applied_then_run_again_gives_no_create_and_no_modify(
        grenoble_run: Path, data: Path, tmp_path: Path) -> None:
    from pipeline.apply import apply_changes, read_state

    osm_input = data / "grenoble-horodateurs/INPUT/osm-raw-data.json"
    after = apply_changes(read_state(osm_input), [grenoble_run / "changes.osc"])
    _state_as_overpass_json(after, tmp_path / "after.json")
    text = GRENOBLE.read_text(encoding="utf-8").replace("../../../shared/data", str(data))
    text = text.replace(str(osm_input), str(tmp_path / "after.json"))
    (tmp_path / "again.yml").write_text(text, encoding="utf-8")
    assert main(["-q", "run", str(tmp_path / "again.yml"), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out/grenoble-parking-meters/report.json").read_text())
    assert report["counts"]["create"] == 0 and report["counts"]["modify"] == 0
    assert report["counts"]["unchanged"] == 849  # the 842 created and the 7 modified
    assert report["counts"]["review"] == 2  # the two doubtful meters stay doubtful


def test_bondy_applied_as_a_diff_then_run_again_gives_nothing_to_do(
        tmp_path: Path, data: Path) -> None:
    first = profile_copy(tmp_path, data)
    assert main(["-q", "run", str(first), "--out", str(tmp_path / "one")]) == 0
    osc = tmp_path / "one/bondy-parking-meters/changes.osc"
    text = first.read_text(encoding="utf-8").replace(
        "  file: ", f"  diff: {osc}\n  file: ")
    (tmp_path / "again.yml").write_text(text, encoding="utf-8")
    assert main(["-q", "run", str(tmp_path / "again.yml"), "--out", str(tmp_path / "two")]) == 0
    report = json.loads((tmp_path / "two/bondy-parking-meters/report.json").read_text())
    assert report["counts"]["create"] == 0 and report["counts"]["modify"] == 0
    assert report["counts"]["unchanged"] == 3
