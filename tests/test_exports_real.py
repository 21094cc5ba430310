"""On the real examples: applying changes.osc, or all chunks in order, to the OSM input gives
exactly the proposed objects; the MapRoulette tasks cover exactly the creates and modifies."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from exports.maproulette import read_tasks, task_change
from pipeline.apply import State, apply_changes, difference, read_state
from pipeline.kernel.decisions import CREATE, MODIFY, Decision
from pipeline.profile import load_profile
from pipeline.runner import run_command
from pipeline.stages import RunContext
from tests.conftest import EXAMPLES


@dataclass
class Run:
    run_dir: Path
    osm_input: Path
    decisions: list[Decision]
    report: dict


def _run(profile_path: Path, out: Path, chunk_size: int) -> Run:
    profile = load_profile(profile_path)
    profile = replace(profile, changeset=replace(profile.changeset, chunk_size=chunk_size))
    ctx = RunContext(profile, out)
    report = run_command(ctx, "export")["export"].report
    assert profile.osm.file
    stored = json.loads((ctx.work / "conflate.json").read_text(encoding="utf-8"))
    final = [Decision.from_json(f) for f in stored]  # as the conflate stage keeps them
    return Run(ctx.run_dir, profile.osm.file[0], final, report)


@pytest.fixture(scope="module", params=["grenoble", "bondy"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        data: Path) -> Run:
    # Small chunks so the real runs are split into several changesets.
    return _run(EXAMPLES / request.param / "parking-meters.yml",
                tmp_path_factory.mktemp(request.param), chunk_size=100)


def _review_decisions(run: Run) -> dict[str, str]:
    features = json.loads((run.run_dir / "review.geojson").read_text())["features"]
    return {f["properties"]["source_id"]: f["properties"]["decision"] for f in features
            if f["properties"]["source_id"] is not None}


def _check_applied(run: Run, before: State, after: State) -> None:
    created, modified = difference(before, after)
    final = _review_decisions(run)  # after export refused unwritable changes, if any
    decisions = [d for d in run.decisions if final.get(d.source_id or "") == d.decision]
    creates = [d for d in decisions if d.decision == CREATE]
    modifies = {d.osm.key: d for d in decisions if d.decision == MODIFY and d.osm}
    # Every create is exactly one new node with the proposed tags at the proposed place.
    proposed = sorted((tuple(sorted(d.tags.items())), round(d.geometry.x, 7), round(d.geometry.y, 7))
                      for d in creates if d.geometry is not None)
    got = sorted((tuple(sorted(o.tags.items())), round(o.lon or 0, 7), round(o.lat or 0, 7))
                 for o in created.values())
    assert got == proposed
    # Every modify has the proposed tags, the next version, and did not move.
    assert {f"{k[0]}/{k[1]}" for k in modified} == set(modifies)
    for key, obj in modified.items():
        decision = modifies[f"{key[0]}/{key[1]}"]
        assert obj.tags == decision.tags
        assert obj.version == before[key].version + 1  # type: ignore[operator]
        assert (obj.lon, obj.lat) == pytest.approx((before[key].lon, before[key].lat), abs=1e-7)


def test_applying_changes_osc_gives_exactly_the_proposed_objects(run: Run) -> None:
    before = read_state(run.osm_input)
    after = apply_changes(before, [run.run_dir / "changes.osc"])
    _check_applied(run, before, after)
    assert run.report["osm_objects"]["created"] == len(difference(before, after)[0])


def test_applying_every_chunk_in_order_gives_the_same_objects(run: Run) -> None:
    index = json.loads((run.run_dir / "chunks" / "index.json").read_text())
    files = [run.run_dir / "chunks" / entry["osc"] for entry in index["index"]]
    assert sorted(p.name for p in (run.run_dir / "chunks").glob("*.osc")) == [p.name for p in files]
    before = read_state(run.osm_input)
    whole = apply_changes(before, [run.run_dir / "changes.osc"])
    assert apply_changes(before, files) == whole
    for entry in index["index"]:
        assert entry["elements"] <= 100
        assert entry["changeset_tags"]["import"] == "yes"
        west, south, east, north = entry["bbox"]
        assert west <= east and south <= north
    _check_applied(run, before, apply_changes(before, files))


def test_maproulette_tasks_cover_exactly_the_creates_and_modifies(run: Run, tmp_path: Path) -> None:
    text = (run.run_dir / "maproulette.geojsonl").read_text(encoding="utf-8")
    before = read_state(run.osm_input)
    expected = apply_changes(before, [run.run_dir / "changes.osc"])
    state = before
    ids = []
    for number, task in enumerate(read_tasks(text)):
        assert task["cooperativeWork"]["meta"] == {"version": 2, "type": 2}
        osc = tmp_path / f"task{number}.osc"
        osc.write_text(task_change(task), encoding="utf-8")
        state = apply_changes(state, [osc])  # each task's change is valid on its own
        ids.append(task["features"][0]["properties"]["source_id"])
    assert state == expected
    counts = run.report["counts"]
    assert len(ids) == len(set(ids)) == counts["create"] + counts["modify"]


def test_grenoble_import_plan_states_licence_tags_and_figures(run: Run) -> None:
    plan = (run.run_dir / "import-plan.md").read_text(encoding="utf-8")
    wiki = (run.run_dir / "import-plan.wiki").read_text(encoding="utf-8")
    for title in ("Goals", "Schedule", "Import data", "Data preparation", "Tagging plans",
                  "Changeset tags", "Data merge workflow", "QA"):
        assert f"## {title}" in plan or f"### {title}" in plan
        assert f"== {title} ==" in wiki
    counts = run.report["counts"]
    assert f"| create | {counts['create']} |" in plan
    assert "{| class=\"wikitable\"" in wiki
    if "grenoble" in run.run_dir.name:
        assert "ODbL is OSM's own licence" in plan
    else:  # Bondy states no licence: the plan must say there is no permission yet
        assert "NOT ESTABLISHED" in plan
