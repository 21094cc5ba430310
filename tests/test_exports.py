"""Change files on small inline cases, compared with golden files in tests/golden/exports/.

Set SIG2OSM_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then read
the diff. The version of sig2osm is replaced by {VERSION} so a release does not touch them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from exports import osmchange
from exports.bundle import build_exports
from exports.chunks import Area, split_into_chunks
from exports.maproulette import RECORD_SEPARATOR, read_tasks, task_change
from exports.osmchange import build_changes, check_references
from exports.review import review_geojson
from exports.screening import refuse_unwritable
from pipeline.apply import apply_changes, difference
from pipeline.kernel import __version__
from pipeline.kernel.decisions import CREATE, MODIFY, REVIEW, SKIP, Candidate, Decision, TagMerge
from pipeline.kernel.errors import ExportError
from pipeline.kernel.osm import OsmData, OsmElement, node
from pipeline.kernel.settings import ChangesetConfig, OsmConfig, Profile, SourceConfig
from pipeline.readback import read_change_file as read_objects

GOLDEN = Path(__file__).parent / "golden" / "exports"

BENCH = OsmElement("node", 4242, 1, {"amenity": "bench", "backrest": "yes"},
                   Point(-1.4861, 48.3903))


def _profile(chunk_size: int = 1000) -> Profile:
    return Profile(
        name="brest-benches",
        source=SourceConfig(id="ID", producer="Brest métropole", licence="Licence Ouverte 2.0",
                            date="2024-03"),
        osm=OsmConfig(match={"amenity": "bench"}),
        tags={"amenity": "bench", "ref:FR:Brest:banc": "{ID}", "material": "{MATIERE}"},
        values={"MATIERE": {"BOIS": "wood", "METAL": "metal"}},
        changeset=ChangesetConfig(comment="Import des bancs de Brest métropole",
                                  hashtags=["#brestbancs"], chunk_size=chunk_size,
                                  url="https://wiki.openstreetmap.org/wiki/Brest/Import_bancs"),
        description="Benches of Brest métropole",
    )


def _decisions() -> list[Decision]:
    awkward = {"amenity": "bench", "ref:FR:Brest:banc": "B1",
               "name": "Banc \"L'Étoile\" <à> & co\tdeux\nlignes\r 😀 ‮ \u2028"}
    ring = [(-1.50, 48.40), (-1.49, 48.40), (-1.49, 48.41), (-1.50, 48.41), (-1.50, 48.40)]
    hole = [(-1.497, 48.403), (-1.493, 48.403), (-1.493, 48.407), (-1.497, 48.403)]
    merge = TagMerge(tags={"amenity": "bench", "backrest": "yes", "ref:FR:Brest:banc": "B2"},
                     new={"ref:FR:Brest:banc": "B2"})
    return [
        Decision("B1", CREATE, "no bench within 30 m", awkward, Point(-1.4870, 48.3910)),
        Decision("B2", MODIFY, "same bench, 3.2 m away", merge.tags, Point(-1.48601, 48.39031),
                 osm=BENCH, distance_m=3.2, merge=merge),
        Decision("P1", CREATE, "no park", {"leisure": "park", "name": "Jardin"},
                 Polygon(ring, [hole])),
        Decision("P2", CREATE, "no pitch", {"leisure": "pitch"}, Polygon([*ring[:4], ring[0]])),
        Decision("L1", CREATE, "no path", {"highway": "footway"},
                 LineString([(-1.48 + i / 1000, 48.38) for i in range(7)])),
        Decision("B3", REVIEW, "two benches within 5 m", {"amenity": "bench"},
                 Point(-1.4801, 48.3801), candidates=(Candidate("node/4242", 4.1, 0.7),),
                 proposed=MODIFY),
        Decision("B4", SKIP, "field ID is empty", {}, None),
    ]


def _golden(name: str, text: str) -> None:
    text = text.replace(f"sig2osm {__version__}", "sig2osm {VERSION}")
    path = GOLDEN / name
    if os.environ.get("SIG2OSM_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file; see the diff"


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # A way limit of 5 nodes shows the split of long ways on a 7-node line.
    monkeypatch.setattr(osmchange, "MAX_WAY_NODES", 5)
    osm = OsmData((BENCH,), shapely.box(-2, 48, -1, 49), "test box")
    result = build_exports(_profile(chunk_size=12), {"driver": "GPKG", "crs": "EPSG:2154",
                                                     "crs_origin": "file", "sha256": "ab12"},
                           osm, _decisions())
    return {**result.files, "review.geojson": review_geojson(result.decisions)}


@pytest.mark.parametrize("name", ["changes.osc", "changes.osm", "maproulette.geojsonl",
                                  "chunks/index.json", "chunks/001.osc", "chunks/002.osm",
                                  "review.geojson", "changeset-tags.json", "import-plan.md",
                                  "import-plan.wiki", "maproulette-challenge.json"])
def test_outputs_match_golden_files(exported: dict[str, str], name: str) -> None:
    _golden(name, exported[name])


def test_outputs_are_deterministic(exported: dict[str, str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    osm = OsmData((BENCH,), shapely.box(-2, 48, -1, 49), "test box")
    again = build_exports(_profile(chunk_size=12), {"driver": "GPKG", "crs": "EPSG:2154",
                                                    "crs_origin": "file", "sha256": "ab12"},
                          osm, list(_decisions())).files
    assert again == {k: v for k, v in exported.items() if k != "review.geojson"}


def test_modify_of_a_version_1_object_stays_a_modify(exported: dict[str, str],
                                                      tmp_path: Path) -> None:
    osc = tmp_path / "c.osc"
    osc.write_text(exported["changes.osc"], encoding="utf-8")
    modify = exported["changes.osc"].split("<modify>")[1]
    assert '<node id="4242" version="1"' in modify
    before = {("node", 4242): node(4242, 1, dict(BENCH.tags), -1.4861, 48.3903)}
    created, modified = difference(before, apply_changes(before, [osc]))
    assert modified[("node", 4242)].version == 2
    assert modified[("node", 4242)].tags["ref:FR:Brest:banc"] == "B2"
    assert {o.tags.get("leisure") for o in created.values()} >= {"park", "pitch"}


def test_area_with_a_hole_is_a_multipolygon_with_outer_and_inner(exported: dict[str, str],
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "c.osc"
    path.write_text(exported["changes.osc"], encoding="utf-8")
    objects = read_objects(path)
    relations = [o for o in objects.values() if o.type == "relation"]
    assert len(relations) == 1
    relation = relations[0]
    assert relation.tags == {"type": "multipolygon", "leisure": "park", "name": "Jardin"}
    roles = sorted(role for _, _, role in relation.members)
    assert roles.count("inner") == 1 and roles.count("outer") >= 1
    for kind, ref, _ in relation.members:
        way = objects[(kind, ref)]
        assert way.tags == {}  # rings carry no tags; the relation does
    pitch = [o for o in objects.values() if o.tags.get("leisure") == "pitch"]
    assert pitch[0].type == "way" and pitch[0].nodes[0] == pitch[0].nodes[-1]


def test_ways_longer_than_2000_nodes_are_split_sharing_end_nodes() -> None:
    line = LineString([(i / 100000, 48.0 + (i % 2) / 100000) for i in range(4500)])
    changes = build_changes([Decision("W", CREATE, "", {"highway": "path"}, line)])
    ways = [o for o in changes.creates if o.type == "way"]
    assert [len(w.nodes) for w in ways] == [2000, 2000, 502]
    assert ways[0].nodes[-1] == ways[1].nodes[0] and ways[1].nodes[-1] == ways[2].nodes[0]
    assert all(w.tags == {"highway": "path"} for w in ways)
    ring = [(i / 1000, 0.0) for i in range(2500)] + [(2.5, 1.0), (0.0, 1.0), (0.0, 0.0)]
    area = build_changes([Decision("A", CREATE, "", {"building": "yes"},
                                   Polygon([(x, 48 + y) for x, y in ring]))])
    outer = [o for o in area.creates if o.type == "way"]
    assert all(len(w.nodes) <= 2000 for w in outer)
    assert area.creates[-1].type == "relation" and area.creates[-1].tags["building"] == "yes"


def test_negative_ids_come_from_one_counter_in_decision_order() -> None:
    changes = build_changes(_decisions())
    ids = sorted(o.id for o in changes.creates)
    assert ids == list(range(-len(ids), 0))
    first = [o for o in changes.creates if o.tags.get("ref:FR:Brest:banc") == "B1"]
    assert first[0].id == -1


def test_unwritable_tags_are_refused_with_a_reason_never_cut(
        caplog: pytest.LogCaptureFixture) -> None:
    long_value = "x" * 256
    decisions = [
        Decision("A", CREATE, "", {"amenity": "bench", "name": long_value}, Point(0, 0)),
        Decision("B", CREATE, "", {"amenity": "bench", "name": "a\x0bb"}, Point(0, 1)),
        Decision("C", CREATE, "", {"amenity": "bench", "note": ""}, Point(0, 2)),
        Decision("D", MODIFY, "", {"amenity": "bench", "name": long_value}, Point(0, 3),
                 osm=BENCH),
        Decision("E", CREATE, "", {"amenity": "bench", "name": "x" * 255}, Point(0, 4)),
    ]
    osm = OsmData((BENCH,), shapely.box(-2, -2, 2, 48), "test")
    with caplog.at_level(logging.WARNING):
        result = build_exports(_profile(), {}, osm, decisions)
        refuse_unwritable(result.decisions)  # again, as the review file's process does: silent
    assert [r.getMessage() for r in caplog.records if "unwritable" in r.getMessage()] == [
        "export: 4 change(s) refused as unwritable (see review.geojson reasons)"]
    by_id = {d.source_id: d for d in result.decisions}
    assert by_id["A"].decision == SKIP and "256 characters" in by_id["A"].reason
    assert by_id["B"].decision == SKIP and "U+000B" in by_id["B"].reason
    assert by_id["C"].decision == SKIP and "empty" in by_id["C"].reason
    assert by_id["D"].decision == REVIEW and by_id["D"].proposed == MODIFY
    assert by_id["E"].decision == CREATE
    assert "x" * 255 in result.files["changes.osc"]
    assert "x" * 256 not in result.files["changes.osc"]
    with pytest.raises(ExportError, match="256 characters"):
        build_changes(decisions[:1])  # the writer itself refuses too


def test_references_must_exist_in_the_file_or_in_osm() -> None:
    way = OsmElement("way", 7, 3, {"highway": "service"}, LineString([(0, 0), (1, 1)]),
                     nodes=(1, 2))
    decision = Decision("W", MODIFY, "", {"highway": "service", "ref": "x"},
                        LineString([(0, 0), (1, 1)]), osm=way)
    changes = build_changes([decision])
    check_references(changes, {("way", 7), ("node", 1), ("node", 2)})
    with pytest.raises(ExportError, match="node/2"):
        check_references(changes, {("way", 7), ("node", 1)})


def test_chunks_respect_the_limit_and_keep_a_decision_whole() -> None:
    points = [Decision(f"P{i}", CREATE, "", {"amenity": "bench"},
                       Point((i % 10) / 100, (i // 10) / 100)) for i in range(100)]
    ring = [(0.10, 0.04), (0.12, 0.04), (0.12, 0.06), (0.10, 0.06), (0.10, 0.04)]
    points.append(Decision("A", CREATE, "", {"leisure": "park"}, Polygon(ring)))
    changes = build_changes(points)
    chunks = split_into_chunks(changes, 25)
    assert all(c.elements <= 25 for c in chunks)
    assert sum(c.elements for c in chunks) == 105
    assert len(chunks) == 5  # as few as the limit allows
    park = {o.key for g in changes.groups if g.source_id == "A" for o in g.objects}
    holding = [c for c in chunks if park & {o.key for o in c.changes.objects}]
    assert len(park) == 5 and len(holding) == 1
    assert park <= {o.key for o in holding[0].changes.objects}
    for chunk in chunks:  # compact: a chunk spans much less than the whole set
        west, south, east, north = chunk.changes.bbox() or (0, 0, 0, 0)
        assert (east - west) * (north - south) < 0.5 * 0.12 * 0.09
    halves = [Area("ouest", shapely.box(-1, -1, 0.045, 1)), Area("est", shapely.box(0.045, -1, 1, 1))]
    by_area = split_into_chunks(changes, 1000, halves)
    assert [c.area for c in by_area] == ["est", "ouest"]
    assert all(g.geometry.centroid.x > 0.045 for g in by_area[0].changes.groups)


def test_maproulette_tasks_follow_the_cooperative_format(exported: dict[str, str]) -> None:
    text = exported["maproulette.geojsonl"]
    lines = text.split("\n")[:-1]
    assert all(line.startswith(RECORD_SEPARATOR) for line in lines)
    tasks = list(read_tasks(text))
    assert len(tasks) == 5  # 4 creates and 1 modify; no task for review or skip
    for task in tasks:
        assert task["type"] == "FeatureCollection"
        work = task["cooperativeWork"]
        assert work["meta"] == {"version": 2, "type": 2}
        assert work["file"]["type"] == "xml" and work["file"]["format"] == "osc"
        assert work["file"]["encoding"] == "base64"
        assert task_change(task).startswith("<?xml")
        base64.b64decode(work["file"]["content"], validate=True)
    modify = next(t for t in tasks if t["features"][0]["properties"]["action"] == "modify")
    props = modify["features"][0]["properties"]
    assert props["osm_url"] == "https://www.openstreetmap.org/node/4242"
    assert props["tag:ref:FR:Brest:banc"] == "(none) → B2" and props["tag:amenity"] == "bench"
    for task in tasks:  # MapRoulette's task view skips nested objects: every property is flat
        values = task["features"][0]["properties"].values()
        assert all(isinstance(v, (str, int, float)) or v is None for v in values)


def test_review_geojson_carries_diffs_candidates_and_links(exported: dict[str, str]) -> None:
    features = json.loads(exported["review.geojson"])["features"]
    review = next(f["properties"] for f in features if f["properties"]["decision"] == "review")
    assert review["candidates"][0]["osm_url"] == "https://www.openstreetmap.org/node/4242"
    modify = next(f["properties"] for f in features if f["properties"]["decision"] == "modify")
    assert modify["osm_url"] == "https://www.openstreetmap.org/node/4242"
    assert set(modify) >= {"tags_new", "tags_changed", "tags_kept", "source_id", "distance_m"}


def test_josm_file_carries_changeset_tags_bounds_and_no_version_on_new(
        exported: dict[str, str]) -> None:
    josm = exported["changes.osm"]
    assert '<changeset>' in josm and '<tag k="import" v="yes"/>' in josm
    assert '<bounds minlat=' in josm and 'upload="false"' in josm
    assert '<node id="-1" action="modify" lat=' in josm
    tags = json.loads(exported["changeset-tags.json"])
    assert tags["comment"].endswith("#brestbancs") and tags["license"] == "Licence Ouverte 2.0"
    assert tags["created_by"] == f"sig2osm {__version__}"
    assert tags["source"] == "Brest métropole, 2024-03"


def test_import_plan_escapes_text_from_the_profile() -> None:
    from exports.import_plan import PlanFacts, import_plan_files

    profile = replace(_profile(), description="Bancs <script>x</script> [[Spam]] {{T}} ''i'' *b*")
    facts = PlanFacts(counts={"create": 1}, objects={}, chunks=1, chunk_max_elements=10,
                      tasks=1, changeset_tags={"comment": "a|b"}, source_info={},
                      osm_origin="test")
    files = import_plan_files(profile, facts)
    wiki, md = files["import-plan.wiki"], files["import-plan.md"]
    assert "<script>" not in wiki and "[[Spam]]" not in wiki and "{{T}}" not in wiki
    assert "''i''" not in wiki and "&lt;script&gt;" in wiki
    assert "<script>" not in md and "\\*b\\*" in md
    assert "| `comment` | `a\\|b` |" in md  # a pipe cannot end a Markdown table cell
