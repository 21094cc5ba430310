"""Overpass through the stages and the CLI: same decisions as the local file, cache, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pipeline.overpass as overpass
from pipeline.cli import main
from pipeline.http import HttpSettings
from pipeline.overpass import query_bbox
from pipeline.profile import load_profile
from pipeline.runner import run_stages
from pipeline.stages import RunContext
from tests.loopback import Loopback, Reply, overpass_server

PATH = "/api/interpreter"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def server() -> Any:
    with overpass_server() as loopback:
        yield loopback


def grenoble_profile(tmp_path: Path, data: Path, osm_lines: str, name: str) -> Path:
    source = data / "grenoble-horodateurs" / "INPUT" / "data-grenoble.json"
    path = tmp_path / f"{name}.yml"
    path.write_text(f"""
name: {name}
source: {{path: {source}, id: HOROD_ID}}
osm:
  match: {{amenity: vending_machine, vending: parking_tickets}}
{osm_lines}
tags:
  amenity: vending_machine
  vending: parking_tickets
  ref:FR:Grenoble:horodateur: "{{HOROD_ID}}"
match: {{distance: 30, ref: "ref:FR:Grenoble:horodateur"}}
""", encoding="utf-8")
    return path


def test_loopback_overpass_and_local_file_give_identical_decisions(
        tmp_path: Path, data: Path, server: Loopback) -> None:
    answer = data / "grenoble-horodateurs" / "INPUT" / "osm-raw-data.json"
    server.script(PATH, [Reply(body=answer.read_bytes())])
    live = RunContext(load_profile(grenoble_profile(
        tmp_path, data, f"  overpass_url: {server.url(PATH)}", "live")), tmp_path / "out")
    layer = run_stages(live, ["ingest"])["ingest"]
    live_osm = run_stages(live, ["fetch"])["fetch"]
    box = query_bbox(layer, 30)
    assert box is not None
    local = RunContext(load_profile(grenoble_profile(
        tmp_path, data, f"  file: {answer}\n  bounds: {list(box)}", "local")), tmp_path / "out")
    local_osm = run_stages(local, ["fetch"])["fetch"]

    assert [e.to_json() for e in live_osm.elements] == [e.to_json() for e in local_osm.elements]
    assert live_osm.coverage is not None and local_osm.coverage is not None
    assert live_osm.coverage.equals(local_osm.coverage)
    live_decisions = [d.to_json() for d in run_stages(live, ["conflate"])["conflate"]]
    local_decisions = [d.to_json() for d in run_stages(local, ["conflate"])["conflate"]]
    assert live_decisions == local_decisions
    kinds = {d["decision"] for d in live_decisions}
    assert len(live_decisions) == 851
    assert "create" in kinds and kinds & {"modify", "unchanged"}  # both paths matched meters


def test_second_run_with_the_cache_makes_no_request(tmp_path: Path, data: Path,
                                                    server: Loopback) -> None:
    answer = data / "grenoble-horodateurs" / "INPUT" / "osm-raw-data.json"
    server.script(PATH, [Reply(body=answer.read_bytes())])
    profile = grenoble_profile(tmp_path, data, f"  overpass_url: {server.url(PATH)}", "cached")
    out = tmp_path / "out"
    assert main(["-q", "run", str(profile), "--out", str(out)]) == 0
    first = server.count()
    assert server.count(PATH) == 1 and first >= 1
    assert main(["-q", "run", str(profile), "--out", str(out)]) == 0
    assert server.count() == first  # neither the interpreter nor /api/status was asked
    assert main(["-q", "run", str(profile), "--out", str(out), "--refresh"]) == 0
    assert server.count(PATH) == 2
    report = (out / "cached" / "report.json").read_text(encoding="utf-8")
    assert '"server": "' + server.url(PATH) in report
    assert '"osm_base": "2019-02-06T09:03:02Z"' in report
    assert '"query": "[out:json]' in report


@pytest.mark.parametrize("fault", ["remark", "504", "empty"])
def test_failed_fetch_exits_non_zero_and_writes_no_change_file(
        tmp_path: Path, data: Path, server: Loopback, monkeypatch: pytest.MonkeyPatch,
        fault: str) -> None:
    monkeypatch.setattr(overpass, "DEFAULT_SETTINGS",
                        HttpSettings(timeout=0.5, retries=2, backoff=0.01, max_wait=0.02))
    base = '{"version": 0.6, "osm3s": {"timestamp_osm_base": "2024-05-01T10:00:00Z"}, '
    replies = {
        "remark": Reply(body=base + '"elements": [], "remark": "runtime error: Query run out '
                        'of memory using about 2048 MB of RAM."}'),
        "504": Reply(504, "Gateway Timeout", "text/html"),
        "empty": Reply(body=base + '"elements": []}'),
    }
    server.script(PATH, [replies[fault]])
    profile = grenoble_profile(tmp_path, data, f"  overpass_url: {server.url(PATH)}", "failing")
    out = tmp_path / "out"
    code = main(["-q", "run", str(profile), "--out", str(out)])
    assert code == 4  # OsmDataError / FetchError
    run_dir = out / "failing"
    assert not (run_dir / "changes.osc").exists()
    assert not (run_dir / "changes.osm").exists()
    assert not (run_dir / "review.geojson").exists()


def test_failed_refresh_leaves_the_earlier_outputs_intact(tmp_path: Path, data: Path,
                                                          server: Loopback) -> None:
    answer = data / "grenoble-horodateurs" / "INPUT" / "osm-raw-data.json"
    server.script(PATH, [Reply(body=answer.read_bytes()),
                         Reply(body='{"elements": [], "remark": "runtime error: timed out"}')])
    profile = grenoble_profile(tmp_path, data, f"  overpass_url: {server.url(PATH)}", "kept")
    out = tmp_path / "out"
    assert main(["-q", "run", str(profile), "--out", str(out)]) == 0
    before = (out / "kept" / "changes.osc").read_bytes()
    assert main(["-q", "run", str(profile), "--out", str(out), "--refresh"]) == 4
    assert (out / "kept" / "changes.osc").read_bytes() == before


@pytest.mark.parametrize("profile", sorted((EXAMPLES / "brest").glob("*.yml")),
                         ids=lambda p: p.stem)
def test_brest_profiles_pass_check_offline(profile: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    assert main(["check", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "would download https://www.data.gouv.fr/" in out
    assert "would query Overpass at https://overpass-api.de/api/interpreter" in out


def test_there_are_brest_profiles_for_every_theme() -> None:
    names = {load_profile(p).name for p in (EXAMPLES / "brest").glob("*.yml")}
    assert {"brest-bicycle-parking", "brest-free-expression-boards", "brest-recycling-glass",
            "brest-waste-containers", "brest-playgrounds", "brest-public-wifi",
            "brest-public-internet-access"} <= names
