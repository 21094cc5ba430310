"""Ways and relations in change files: what the OSM readers keep of the objects candidates
refer to, how a modified way or relation is written whole for JOSM, and the export's guards
(new nodes at one position, nothing to upload). Real data: Bondy's `map.osm` and the recorded
Overpass answers made from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Point, mapping

from conflation.matching import conflate
from exports.bundle import UPLOAD_FILES
from exports.changeset import josm_changeset_tags
from exports.maproulette import flat_tags
from exports.osmchange import build_changes, josm_xml, osmchange_xml
from pipeline.ingest import SourceFeature
from pipeline.kernel.decisions import CREATE, MODIFY, REVIEW, Decision, TagMerge
from pipeline.kernel.generations import commit_files
from pipeline.kernel.osm import OsmData
from pipeline.osm_files import read_osm_file
from pipeline.profile import load_profile
from pipeline.runner import run_command
from pipeline.stages import RunContext
from tests.conftest import matching
from tests.loopback import Reply, overpass_server

FIXTURES = Path(__file__).parent / "fixtures" / "overpass"
COURTYARD = ("relation", 1259491)
OUTER, INNER = ("way", 84182329), ("way", 84189102)


@pytest.fixture(scope="module")
def buildings(data: Path) -> OsmData:
    return read_osm_file(data / "bondy" / "osm" / "map.osm", {"building": "*"}, None)


def test_a_multipolygon_keeps_its_type_members_and_their_nodes(buildings: OsmData) -> None:
    relation = next(e for e in buildings.elements if (e.type, e.id) == COURTYARD)
    # libosmium's assembled area drops `type`: a modify written from it would break the relation
    assert relation.tags == {"building": "yes", "type": "multipolygon"}
    assert relation.members == (("way", OUTER[1], "outer"), ("way", INNER[1], "inner"))
    assert {OUTER, INNER} <= set(buildings.context)  # untagged member ways: not candidates
    assert not {OUTER, INNER} & {(e.type, e.id) for e in buildings.elements}
    outer = buildings.context[OUTER]
    assert outer.version == 3 and outer.nodes[0] == outer.nodes[-1] == 979050094
    for ref in outer.nodes:
        node = buildings.context[("node", ref)]
        assert node.version >= 1 and node.lon is not None and 2.48 < node.lon < 2.49


def test_every_way_node_of_a_candidate_is_in_the_context(buildings: OsmData) -> None:
    ways = [e for e in buildings.elements if e.type == "way"]
    assert len(ways) > 1000
    assert all(("node", n) in buildings.context for w in ways for n in w.nodes)


def test_overpass_answers_and_the_extract_give_the_same_context(data: Path) -> None:
    match = {"leisure": ["playground", "pitch", "sports_centre"]}
    extract = read_osm_file(data / "bondy" / "osm" / "map.osm", match, None)
    for answer in ("bondy_leisure.json", "bondy_leisure.xml"):
        recorded = read_osm_file(FIXTURES / answer, match, None, [2.4779, 48.9067, 2.4912, 48.9128])
        assert recorded.context == extract.context
        assert len(recorded.context) == sum(len(e.nodes) for e in recorded.elements
                                            if e.type == "way") - 4  # 4 closed ways


def _modify(buildings: OsmData, key: tuple[str, int], source_id: str) -> Decision:
    element = next(e for e in buildings.elements if (e.type, e.id) == key)
    tags = {**element.tags, "ref:test": source_id}
    merge = TagMerge(tags=tags, new={"ref:test": source_id})
    return Decision(source_id, MODIFY, "matched", tags, element.geometry, osm=element,
                    merge=merge)


def test_a_modified_relation_is_written_whole_for_josm_and_alone_in_osmchange(
        buildings: OsmData) -> None:
    changes = build_changes([_modify(buildings, COURTYARD, "R1")], buildings.context)
    assert [o.ident for o in changes.objects] == [COURTYARD]
    context = {o.ident for o in changes.context}
    outer = buildings.context[OUTER]
    assert context == {OUTER, INNER} | {("node", n) for n in outer.nodes} | {
        ("node", n) for n in buildings.context[INNER].nodes}
    josm = josm_xml(changes)
    assert '<relation id="1259491" action="modify" version="2">' in josm
    assert '<tag k="type" v="multipolygon"/>' in josm
    assert f'<way id="{OUTER[1]}" version="3">' in josm  # unmodified: no action
    assert f'<node id="{outer.nodes[0]}" version=' in josm
    osc = osmchange_xml(changes)
    assert "<way" not in osc and "<node" not in osc


def test_objects_the_data_lacks_are_said_never_invented(buildings: OsmData) -> None:
    decision = _modify(buildings, COURTYARD, "R1")
    changes = build_changes([decision], {})  # no context: nothing to write beside it
    assert changes.context == [] and changes.absent() == [OUTER, INNER]


def test_a_node_shared_by_two_modified_ways_is_written_once_and_a_modified_one_not_as_context(
        buildings: OsmData) -> None:
    ways = [e for e in buildings.elements if e.type == "way"]
    first, second = next((a, b) for a in ways for b in ways
                         if a.id < b.id and set(a.nodes) & set(b.nodes))
    shared = (set(first.nodes) & set(second.nodes)).pop()
    changes = build_changes([_modify(buildings, ("way", first.id), "A"),
                             _modify(buildings, ("way", second.id), "B")], buildings.context)
    keys = [o.ident for o in changes.context]
    assert keys.count(("node", shared)) == 1 and len(keys) == len(set(keys))
    assert josm_xml(changes).count(f'<node id="{shared}" ') == 1


def test_osmchange_lists_nodes_then_ways_then_relations() -> None:
    square = shapely.Polygon([(0, 0), (0.001, 0), (0.001, 0.001), (0, 0)],
                             [[(0.0004, 0.0001), (0.0006, 0.0001), (0.0006, 0.0003)]])
    changes = build_changes([Decision("P", CREATE, "", {"leisure": "park"}, square),
                             Decision("N", CREATE, "", {"amenity": "bench"}, Point(1, 1))])
    osc = osmchange_xml(changes)
    last_node, first_way = osc.rindex("<node"), osc.index("<way")
    assert last_node < first_way < osc.rindex("<way") < osc.index("<relation")


def test_josm_files_leave_hashtags_to_the_comment() -> None:
    tags = {"comment": "Import #sig2osm", "hashtags": "#sig2osm", "import": "yes"}
    assert josm_changeset_tags(tags) == {"comment": "Import #sig2osm", "import": "yes"}


def test_maproulette_shows_each_tag_change_as_text() -> None:
    merge = TagMerge(tags={"name": "Rue A", "name:br": "Straed A", "operator": "Ville",
                           "ref": "1"},
                     new={"name:br": "Straed A"}, changed={"operator": ("Mairie", "Ville")},
                     kept={"ref": ("1", "2")}, removed={"fixme": "check"})
    decision = Decision("S", MODIFY, "", merge.tags, Point(0, 0), merge=merge)
    assert flat_tags(decision) == {
        "tag:fixme": "check → (removed)", "tag:name": "Rue A",
        "tag:name:br": "(none) → Straed A", "tag:operator": "Mairie → Ville",
        "tag:ref": "1 (kept; source: 2)"}


def test_features_at_one_position_go_to_review_together() -> None:
    """A placeholder position shared by addresses of an estate, "51" and "51 bis" on one point:
    whatever their tags, features at the very same position are held for review together."""
    spot = Point(2.480021, 48.909864)
    features = [SourceFeature("21", spot, {"addr:housenumber": "21"}, {}),
                SourceFeature("23", Point(spot.x, spot.y), {"addr:housenumber": "23"}, {}),
                SourceFeature("25", Point(2.48, 48.91), {"addr:housenumber": "25"}, {})]
    empty = OsmData((), shapely.box(2.47, 48.90, 2.49, 48.92), "test")
    got = {d.source_id: d for d in conflate(features, empty, "EPSG:32631", matching(
        labels=["addr:housenumber"]))}
    assert got["21"].decision == got["23"].decision == REVIEW
    assert got["21"].proposed == CREATE and "at the very same position" in got["21"].reason
    assert "(see 23)" in got["21"].reason and got["25"].decision == CREATE


def test_a_run_with_nothing_to_upload_removes_the_change_files_of_an_earlier_run(
        tmp_path: Path) -> None:
    earlier = {name: "earlier run" for name in
               [*UPLOAD_FILES, "chunks/001.osc", "chunks/001.osm", "review.geojson"]}
    commit_files(tmp_path, earlier)
    commit_files(tmp_path, {"review.geojson": "", "report.json": ""})
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert visible == ["report.json", "review.geojson"]


PITCH = 309622875  # "Terrain But en or", leisure=pitch, a closed way of 5 nodes


def _pitch_profile(folder: Path, osm_lines: str, name: str) -> Path:
    """A source polygon drawn as the pitch's outline, to give the way a ref."""
    recorded = read_osm_file(FIXTURES / "bondy_leisure.json", {"leisure": "pitch"}, None)
    outline = next(e.geometry for e in recorded.elements if e.id == PITCH)
    source = folder / "pitch.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "T1"}, "geometry": mapping(outline)}]}),
        encoding="utf-8")
    profile = folder / f"{name}.yml"
    profile.write_text(f"""name: {name}
source: {{path: {source}, id: id, crs: "EPSG:4326"}}
osm:
  match: {{leisure: pitch}}
{osm_lines}
tags: {{leisure: pitch, "ref:FR:Bondy:terrain": "{{id}}"}}
match: {{distance: 5, ref: "ref:FR:Bondy:terrain"}}
""", encoding="utf-8")
    return profile


def test_a_way_from_overpass_is_written_as_from_the_extract(tmp_path: Path, data: Path) -> None:
    """Through the loopback Overpass server (the recorded answer with `(._;>;)` recursion) and
    through the extract it was made from, the modified way comes with the same nodes."""
    answer = (FIXTURES / "bondy_leisure.json").read_bytes()
    written = {}
    with overpass_server() as server:
        server.script("/api/interpreter", [Reply(body=answer)])
        for name, lines in (("live", f"  overpass_url: {server.url('/api/interpreter')}"),
                            ("file", f"  file: {data / 'bondy' / 'osm' / 'map.osm'}")):
            profile = load_profile(_pitch_profile(tmp_path, lines, name))
            report = run_command(RunContext(profile, tmp_path / "out"), "run")["export"].report
            assert report["counts"]["modify"] == 1
            written[name] = (tmp_path / "out" / name / "changes.osm").read_text(encoding="utf-8")
    assert written["live"] == written["file"]
    josm = written["live"]
    assert f'<way id="{PITCH}" action="modify" version=' in josm
    assert josm.count("<node id=") == 4 and 'action="modify"' not in josm.split("<way")[0]
