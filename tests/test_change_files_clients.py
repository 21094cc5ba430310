"""Every example's change files and chunks as reviewers' tools read them: Debian's osmium-tool
(`fileinfo`, `check-refs`, `apply-changes`, `diff`) and JOSM's validator (`josm validate`,
headless, with the OSM input as context). Also the way and relation cases: buildings, streets,
a multipolygon with a hole; and invariant 5 on them (apply changes.osc, run again: nothing to
create or modify).

The examples run once per module into a temporary folder; JOSM validates them all in one run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import shapely

from exports.bundle import build_exports
from pipeline.apply import read_state
from pipeline.cli import main
from pipeline.kernel.decisions import count_decisions
from pipeline.kernel.osm import OsmData
from pipeline.kernel.settings import Profile
from pipeline.osm_files import read_osm_file
from pipeline.profile import load_profile
from pipeline.runner import run_command
from pipeline.stages import RunContext
from tests.conftest import DATA, EXAMPLES
from tests.osm_tools import (
    Validation,
    apply_changes,
    fileinfo,
    josm_validate,
    missing_references,
    new_hints,
    new_warnings,
    same_data,
    write_osm,
)
from tests.test_exports import BENCH, _decisions, _profile

MAP_OSM = DATA / "bondy" / "osm" / "map.osm"
PDF = DATA / "geopdf" / "iso32000" / "grenoble_horodateurs_ISO32000_L93.pdf"
COURTYARD = 1259491  # map.osm: building=yes multipolygon, an outer and an inner way

# The demo's examples and the way and relation cases, by run name.
WAY_CASES = ("bondy-addresses-on-buildings", "rennes-breton-street-names", "bondy-courtyard")
UPLOADS = ("grenoble-parking-meters", "bondy-parking-meters", "bondy-horodateurs-zones",
           *WAY_CASES, "inline-park-with-hole")

# New JOSM warnings that the data explains, by run: each must show up, and no other.
EXPECTED_WARNINGS = {
    # OSM already has "20 Rue Henri Mouly" as a node 8 m away; the address goes onto the
    # building that holds the BAN point, since only buildings are candidates (osm.match).
    "bondy-addresses-on-buildings": [
        "Warnings: Addresses: Duplicate house numbers (node/1457037882, way/84192797)"],
}


@dataclass
class Run:
    name: str
    profile: Profile
    run_dir: Path
    osm_input: Path  # the OSM data as an .osm file osmium and JOSM read
    report: dict[str, Any]


def _example(path: Path, **sections: dict[str, Any]) -> Profile:
    """A profile of examples/, with some sections' fields replaced (derived inputs)."""
    profile = load_profile(path)
    changes = {name: replace(getattr(profile, name), **fields) for name, fields in sections.items()}
    return replace(profile, **changes)


def _rennes(folder: Path) -> Profile:
    """The Rennes street example on inputs derived into `folder`, as `make demo` does."""
    script = EXAMPLES / "rennes" / "make_inputs.py"
    subprocess.run([sys.executable, str(script), str(folder)], check=True, capture_output=True)
    return _example(EXAMPLES / "rennes" / "breton-street-names.yml",
                    source={"path": folder / "kerofis-roazhon.csv"},
                    osm={"file": [folder / "rennes-streets-2013.osm"]})


def _courtyard(folder: Path) -> Profile:
    """A building with a courtyard: a source polygon drawn as relation 1259491's area, to
    give the relation a ref; the relation's untagged member ways are not candidates."""
    osm = read_osm_file(MAP_OSM, {"building": "*"}, None)
    area = next(e.geometry for e in osm.elements if e.key == f"relation/{COURTYARD}")
    assert len(area.interiors) == 1
    source = folder / "courtyard.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "B1"}, "geometry": shapely.geometry.mapping(area)},
    ]}), encoding="utf-8")
    profile = folder / "courtyard.yml"
    profile.write_text(f"""name: bondy-courtyard
source: {{path: {source}, id: id, crs: "EPSG:4326"}}
osm: {{match: {{building: "*"}}, file: {MAP_OSM}}}
tags: {{building: "yes", "ref:FR:Bondy:batiment": "{{id}}"}}
match: {{distance: 3, ref: "ref:FR:Bondy:batiment"}}
""", encoding="utf-8")
    return load_profile(profile)


def _profiles(tmp: Path) -> dict[str, Profile]:
    pdf = tmp / "pdf" / "grenoble-horodateurs.gpkg"
    legend = EXAMPLES / "grenoble" / "pdf-legend.yml"
    assert main(["-q", "pdf", "extract", str(PDF), "--legend", str(legend), "--out", str(pdf)]) == 0
    profiles = [load_profile(EXAMPLES / p) for p in (
        "grenoble/parking-meters.yml", "bondy/parking-meters.yml", "bondy/council-map.yml",
        "bondy/addresses-on-buildings.yml")]
    profiles += [_example(EXAMPLES / "grenoble" / "parking-meters-from-pdf.yml",
                          source={"path": pdf}),
                 _rennes(tmp / "rennes"), _courtyard(tmp)]
    return {p.name: p for p in profiles}


def _osm_input(profile: Profile, folder: Path) -> Path:
    """The profile's OSM file, as .osm (an Overpass JSON answer is written out)."""
    assert profile.osm.file
    path = profile.osm.file[0]
    if path.suffix != ".json":
        return path
    assert profile.osm.bounds
    west, south, east, north = profile.osm.bounds
    return write_osm(read_state(path).values(), folder / f"{profile.name}.osm",
                     (west, south, east, north))


def _inline_park(folder: Path) -> Run:
    """From the golden files' inline case, a new park with a hole, a new path and a modified
    bench, written as a run folder, with the bench node as the OSM input. (Left out: the pitch
    drawn on the park's outline, whose nodes JOSM rightly calls duplicates, and the bench whose
    name holds control characters on purpose.)"""
    run_dir = folder / "inline-park-with-hole"
    osm = OsmData((BENCH,), shapely.box(-2, 48, -1, 49), "test box")
    decisions = [d for d in _decisions() if d.source_id in ("B2", "P1", "L1")]
    result = build_exports(_profile(chunk_size=8), {}, osm, decisions)
    for name, text in result.files.items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text(text, encoding="utf-8")
    osm_input = write_osm([BENCH], folder / "bench.osm", (-2.0, 48.0, -1.0, 49.0))
    report = {"exports": result.summary(), "counts": count_decisions(result.decisions)}
    return Run("inline-park-with-hole", _profile(), run_dir, osm_input, report)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data: Path) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("clients")
    result = {}
    for name, profile in _profiles(tmp).items():
        report = run_command(RunContext(profile, tmp / "out"), "run")["export"].report
        result[name] = Run(name, profile, tmp / "out" / name, _osm_input(profile, tmp), report)
    result["inline-park-with-hole"] = _inline_park(tmp)
    return result


def _change_files(run: Run) -> Iterator[Path]:
    yield run.run_dir / "changes.osc"
    yield run.run_dir / "changes.osm"
    yield from sorted((run.run_dir / "chunks").glob("*.os[cm]"))


# --- osmium ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", UPLOADS)
def test_osmium_reads_every_change_file_sorted_and_counts_the_changes(
        runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    objects = run.report["exports"]["objects"]
    for path in _change_files(run):
        info = fileinfo(path)
        assert info["ordered"] and not info["multiple_versions"], path.name
    kinds = ("node", "way", "relation")
    osc, josm = fileinfo(run.run_dir / "changes.osc"), fileinfo(run.run_dir / "changes.osm")
    for kind in kinds:
        assert osc[f"{kind}s"] == objects["create"][kind] + objects["modify"][kind]
    context = run.report["exports"]["unmodified_objects_in_josm_files"]
    assert sum(josm[f"{k}s"] for k in kinds) == sum(osc[f"{k}s"] for k in kinds) + context


@pytest.mark.parametrize("name", UPLOADS)
def test_josm_files_hold_every_object_they_refer_to(runs: dict[str, Run], name: str) -> None:
    """No incomplete object in JOSM: every way node and relation member is in the file."""
    run = runs[name]
    assert run.report["exports"]["objects_absent_from_osm_data"] == 0
    for path in _change_files(run):
        if path.suffix == ".osm":
            assert set(missing_references(path).values()) == {0}, path.name


@pytest.mark.parametrize("name", UPLOADS)
def test_changes_applied_by_osmium_keep_references_whole(runs: dict[str, Run], name: str,
                                                        tmp_path: Path) -> None:
    run = runs[name]
    before = missing_references(run.osm_input)  # an extract's edge cuts relations already
    after = missing_references(apply_changes(run.osm_input, [run.run_dir / "changes.osc"],
                                             tmp_path / "applied.osm"))
    assert after["nodes in ways"] == 0
    assert all(after[k] <= before[k] for k in after), (before, after)


@pytest.mark.parametrize("name", UPLOADS)
def test_chunks_applied_in_order_give_what_changes_osc_gives(runs: dict[str, Run], name: str,
                                                            tmp_path: Path) -> None:
    run = runs[name]
    index = json.loads((run.run_dir / "chunks" / "index.json").read_text(encoding="utf-8"))
    chunks = [run.run_dir / "chunks" / entry["osc"] for entry in index["index"]]
    whole = apply_changes(run.osm_input, [run.run_dir / "changes.osc"], tmp_path / "whole.osm")
    in_order = apply_changes(run.osm_input, chunks, tmp_path / "chunks.osm")
    assert same_data(whole, in_order)
    assert not same_data(whole, run.osm_input)


# --- JOSM ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def josm_outputs(runs: dict[str, Run], tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, tuple[Path, Path, Path]]:
    """For each run, JOSM's issues on its OSM input alone, on it with changes.osc applied, and
    on changes.osm as a reviewer opens it, from one `josm validate` (each input validated once
    without changes)."""
    tmp = tmp_path_factory.mktemp("josm")
    jobs: list[Validation] = []
    baselines: dict[Path, Path] = {}
    outputs = {}
    for number, name in enumerate(UPLOADS):
        run = runs[name]
        if run.osm_input not in baselines:
            data = shutil.copy(run.osm_input, tmp / f"base{len(baselines)}.osm")
            baselines[run.osm_input] = tmp / f"base{len(baselines)}.geojson"
            jobs.append(Validation(Path(data), baselines[run.osm_input]))
        data = shutil.copy(run.osm_input, tmp / f"run{number}.osm")
        applied = Validation(Path(data), tmp / f"run{number}.geojson", [run.run_dir / "changes.osc"])
        josm_file = shutil.copy(run.run_dir / "changes.osm", tmp / f"changes{number}.osm")
        opened = Validation(Path(josm_file), tmp / f"changes{number}.geojson")
        jobs += [applied, opened]
        outputs[name] = (baselines[run.osm_input], applied.output, opened.output)
    josm_validate(jobs)  # fails if JOSM cannot read an input (a JOSM file it would refuse)
    return outputs


@pytest.mark.parametrize("name", UPLOADS)
def test_josm_validator_finds_no_new_warning(
        josm_outputs: dict[str, tuple[Path, Path, Path]], name: str) -> None:
    before, after, _ = josm_outputs[name]
    found = [str(issue) for issue in new_warnings(before, after)]
    assert found == EXPECTED_WARNINGS.get(name, [])


def test_josm_sees_the_breton_names_as_names(
        josm_outputs: dict[str, tuple[Path, Path, Path]]) -> None:
    """JOSM's hint for name:br without name:fr ("Missing name:* translation") is the one new
    hint of the street import: the ways were read and checked with their new tags."""
    before, after, opened = josm_outputs["rennes-breton-street-names"]
    hints = new_hints(before, after)
    assert set(hints) == {"Missing name:* translation"} and hints.total() > 300
    # Opened alone, the JOSM file's modified ways are complete: JOSM checks them all too.
    assert new_hints(before, opened)["Missing name:* translation"] == hints.total()


# --- ways and relations ----------------------------------------------------------------------


def test_courtyard_relation_is_modified_whole(runs: dict[str, Run]) -> None:
    run = runs["bondy-courtyard"]
    assert run.report["counts"]["modify"] == 1
    josm = (run.run_dir / "changes.osm").read_text(encoding="utf-8")
    assert f'<relation id="{COURTYARD}" action="modify" version="2">' in josm
    for way in (84182329, 84189102):  # the outer and the inner way, unmodified
        assert f'<way id="{way}" version=' in josm
    osc = (run.run_dir / "changes.osc").read_text(encoding="utf-8")
    assert "<way" not in osc and "<node" not in osc  # only the relation's tags change


def test_nothing_to_upload_writes_no_change_file(runs: dict[str, Run]) -> None:
    run = runs["grenoble-parking-meters-from-pdf"]  # every proposal from a PDF map is reviewed
    assert run.report["exports"]["nothing_to_upload"] is True
    assert run.report["counts"]["review"] > 800
    for name in ("changes.osc", "changes.osm", "maproulette.geojsonl",
                 "maproulette-challenge.json", "changeset-tags.json", "chunks"):
        assert not (run.run_dir / name).exists(), name
    assert (run.run_dir / "review.geojson").is_file() and (run.run_dir / "map.html").is_file()
    plan = (run.run_dir / "import-plan.md").read_text(encoding="utf-8")
    assert "Nothing to upload from this run" in plan and "0 changeset(s)" not in plan


@pytest.mark.parametrize("name", WAY_CASES)
def test_applying_changes_then_running_again_gives_nothing_to_do(
        runs: dict[str, Run], name: str, tmp_path: Path) -> None:
    run = runs[name]
    out = tmp_path / "out"
    shutil.copytree(run.run_dir, out / name)  # the same run folder, with this run's files
    osc = run.run_dir / "changes.osc"
    profile = replace(run.profile, osm=replace(run.profile.osm, diff=[osc]))
    report = run_command(RunContext(profile, out), "run")["export"].report
    assert (report["counts"]["create"], report["counts"]["modify"]) == (0, 0)
    assert report["exports"]["nothing_to_upload"] is True
    assert not (out / name / "changes.osc").exists()  # the earlier run's, removed
    assert not list((out / name).glob("chunks/*.os[cm]"))
