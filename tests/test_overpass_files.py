"""Local OSM inputs: recorded Overpass XML and JSON answers, several files, .osc diffs on top."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.http import HttpResponse
from pipeline.kernel.errors import OsmDataError
from pipeline.osm_files import read_osm_file, read_osm_files_with_diffs
from pipeline.overpass import parse_answer

FIXTURES = Path(__file__).parent / "fixtures" / "overpass"
BONDY_BOX = [2.47, 48.90, 2.50, 48.92]


@pytest.mark.parametrize("name, match, expected", [
    ("grenoble_bicycle_parking", {"amenity": "bicycle_parking"}, 15),
    ("bondy_leisure", {"leisure": ["playground", "pitch", "sports_centre"]}, 4),
])
def test_overpass_xml_and_json_answers_give_the_same_elements(
        name: str, match: dict, expected: int) -> None:
    from_json = read_osm_file(FIXTURES / f"{name}.json", match, None, BONDY_BOX)
    from_xml = read_osm_file(FIXTURES / f"{name}.xml", match, None, BONDY_BOX)
    assert len(from_json.elements) == expected
    assert [e.to_json() for e in from_xml.elements] == [e.to_json() for e in from_json.elements]
    assert from_xml.meta["osm_base"] == from_json.meta["osm_base"]


def test_recorded_answer_matches_the_extract_it_came_from(data: Path) -> None:
    extract = data / "bondy" / "osm" / "map.osm"
    match = {"leisure": ["playground", "pitch", "sports_centre"]}
    recorded = read_osm_file(FIXTURES / "bondy_leisure.xml", match, None, BONDY_BOX)
    direct = read_osm_file(extract, match, None)
    assert [(e.key, e.version, dict(e.tags)) for e in recorded.elements] == \
        [(e.key, e.version, dict(e.tags)) for e in direct.elements]
    for a, b in zip(recorded.elements, direct.elements, strict=True):
        assert a.geometry.geom_type == b.geometry.geom_type
        assert a.geometry.equals_exact(b.geometry, 1e-6)


def test_xml_answer_from_the_server_parses_like_json() -> None:
    xml = (FIXTURES / "grenoble_bicycle_parking.xml").read_bytes()
    js = json.loads((FIXTURES / "grenoble_bicycle_parking.json").read_bytes())
    payload = parse_answer(HttpResponse("http://x", 200, "application/osm3s+xml", xml), "x")
    assert payload["osm3s"]["timestamp_osm_base"] == js["osm3s"]["timestamp_osm_base"]
    assert len(payload["elements"]) == len(js["elements"])


def test_recorded_answer_with_a_runtime_error_is_refused(tmp_path: Path) -> None:
    text = (FIXTURES / "grenoble_bicycle_parking.xml").read_text(encoding="utf-8")
    broken = tmp_path / "partial.xml"
    broken.write_text(text.replace("</osm>", "<remark> runtime error: Query timed out "
                                   "</remark>\n</osm>"), encoding="utf-8")
    with pytest.raises(OsmDataError, match=r"partial.xml.*runtime error"):
        read_osm_file(broken, {"amenity": "bicycle_parking"}, None, BONDY_BOX)


def test_several_answers_are_merged_without_duplicates() -> None:
    files = [FIXTURES / "grenoble_bicycle_parking.json", FIXTURES / "grenoble_bicycle_parking.xml"]
    data = read_osm_files_with_diffs(files, [], {"amenity": "bicycle_parking"}, None, BONDY_BOX)
    assert len(data.elements) == 15
    assert data.meta["files"] == [str(f) for f in files]


def test_diff_applied_on_top_of_a_base_extract(data: Path) -> None:
    base = data / "osm" / "saint_barthelemy.osm.pbf"
    diff = data / "osm" / "saint_barthelemy.osc.gz"
    match = {"boundary": "protected_area"}
    before = read_osm_file(base, match, None)
    after = read_osm_files_with_diffs([base], [diff], match, None, None)
    assert "relation/1106302" in {e.key for e in before.elements}
    assert "relation/1106302" not in {e.key for e in after.elements}  # deleted by the diff
    streets = read_osm_files_with_diffs([base], [diff], {"highway": "residential"}, None, None)
    created = {e.key: e for e in streets.elements}["way/780"]  # created by the diff
    assert list(created.geometry.coords) == [(-63.1, 18.1), (-63.2, 18.2)]
    assert "way/24552826" not in {e.key for e in streets.elements}
    assert after.coverage is not None and after.coverage.equals(before.coverage)
    assert after.meta["osm_base"] == "2015-03-25T19:05:08Z"  # from the diff's state file
    assert after.meta["diffs"] == [str(diff)]


def test_two_extracts_read_as_one(data: Path) -> None:
    files = [data / "osm" / "saint_barthelemy.osm.pbf", data / "osm" / "monaco-latest.osm.pbf"]
    match = {"amenity": "bench"}
    both = read_osm_files_with_diffs(files, [], match, None, None)
    single = [read_osm_file(f, match, None) for f in files]
    assert len(both.elements) == sum(len(s.elements) for s in single)
    assert both.coverage is not None
    for one in single:
        assert one.coverage is not None and both.coverage.contains(one.coverage)


def test_diffs_on_recorded_answers_are_refused(data: Path) -> None:
    with pytest.raises(OsmDataError, match=r"diffs apply to OSM extracts"):
        read_osm_files_with_diffs([FIXTURES / "bondy_leisure.json"],
                                  [data / "osm" / "saint_barthelemy.osc.gz"], {"leisure": "*"},
                                  None, BONDY_BOX)
