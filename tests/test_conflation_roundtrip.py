"""Invariant 5 end to end: run, apply changes.osc to the OSM data, run again → nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

from exports.osmchange import build_changes, osmchange_xml
from pipeline.kernel.decisions import count_decisions
from pipeline.profile import load_profile
from pipeline.runner import run_stages
from pipeline.stages import RunContext

OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <bounds minlat="45.17" minlon="5.71" maxlat="45.19" maxlon="5.73"/>
  <node id="1" version="2" lat="45.1800" lon="5.7200">
    <tag k="amenity" v="vending_machine"/><tag k="vending" v="parking_tickets"/>
  </node>
  <node id="2" version="1" lat="45.1850" lon="5.7250">
    <tag k="amenity" v="vending_machine"/><tag k="vending" v="parking_tickets"/>
  </node>
</osm>
"""
SOURCE = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"ID": "A"},
     "geometry": {"type": "Point", "coordinates": [5.72003, 45.18002]}},  # node 1, ~3 m
    {"type": "Feature", "properties": {"ID": "B"},
     "geometry": {"type": "Point", "coordinates": [5.7150, 45.1750]}},
    {"type": "Feature", "properties": {"ID": "C"},
     "geometry": {"type": "Point", "coordinates": [5.7280, 45.1880]}},
]}
PROFILE = """name: roundtrip
source: {{path: source.geojson, id: ID}}
osm:
  match: {{amenity: vending_machine, vending: parking_tickets}}
  file: map.osm
{diff}tags:
  amenity: vending_machine
  vending: parking_tickets
  ref:test: "{{ID}}"
match: {{ref: "ref:test"}}
"""


def _counts(folder: Path, profile_name: str) -> tuple[dict[str, int], str]:
    ctx = RunContext(load_profile(folder / profile_name), folder / "out")
    decisions = run_stages(ctx, ["conflate"])["conflate"]
    return count_decisions(decisions), osmchange_xml(build_changes(decisions))


def test_run_apply_changes_run_again_gives_nothing_to_do(tmp_path: Path) -> None:
    (tmp_path / "map.osm").write_text(OSM, encoding="utf-8")
    (tmp_path / "source.geojson").write_text(json.dumps(SOURCE), encoding="utf-8")
    (tmp_path / "first.yml").write_text(PROFILE.format(diff=""), encoding="utf-8")
    (tmp_path / "again.yml").write_text(PROFILE.format(diff="  diff: changes.osc\n"),
                                        encoding="utf-8")
    counts, osc = _counts(tmp_path, "first.yml")
    assert (counts["create"], counts["modify"]) == (2, 1)
    (tmp_path / "changes.osc").write_text(osc, encoding="utf-8")
    again, osc_again = _counts(tmp_path, "again.yml")
    assert (again["create"], again["modify"], again["unchanged"]) == (0, 0, 3)
    assert "<create" not in osc_again and "<modify" not in osc_again
