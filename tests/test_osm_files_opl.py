"""The fast read path: OSM objects through libosmium's OPL text, and the fetch stage's cache."""

from __future__ import annotations

import json
from pathlib import Path

import osmium
import pytest
import shapely

from pipeline.kernel.osm import OsmData, OsmElement
from pipeline.opl import ambiguous, opl_writer, parse_line, parse_tags, read_node_blocks, read_opl
from pipeline.osm_files import read_osm_file

BENCH = {"amenity": "bench"}
# U+100000 and U+10FFFF: libosmium's OPL writes them with one hex digit too few, the same text
# as U+10000 and U+1FFFF; emoji (U+1F600) share the escape form and must come out intact.
TRICKY_OSM = "\n".join([
    "<?xml version='1.0' encoding='UTF-8'?>",
    '<osm version="0.6">',
    '<bounds minlat="0" minlon="0" maxlat="2" maxlon="2"/>',
    '<node id="1" version="3" lat="1" lon="1"><tag k="amenity" v="bench"/>'
    '<tag k="name" v="&#x100000;x"/></node>',
    '<node id="2" version="1" lat="1.5" lon="1"><tag k="amenity" v="bench"/>'
    '<tag k="name" v="&#x10000;x"/></node>',
    '<node id="3" version="2" lat="1.25" lon="1.5"><tag k="amenity" v="bench"/>'
    '<tag k="name" v="smile &#x1F600; a=b,c %d"/></node>',
    '<node id="4" version="1" lat="1.2" lon="1"><tag k="amenity" v="school"/>'
    '<tag k="&#x10FFFF;" v="x"/></node>',
    '<node id="5" version="1" lat="1.2" lon="1.9"><tag k="amenity" v="bench"/>'
    '<tag k="note" v="tab&#9;new&#10;line"/></node>',
    '<node id="6" version="1" lat="0.5" lon="0.5"/>',
    '<way id="10" version="2"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="1"/>'
    '<tag k="amenity" v="bench"/><tag k="name" v="&#x100001;"/></way>',
    '<relation id="20" version="1"><member type="way" ref="10" role="outer &#x100002;"/>'
    '<tag k="type" v="multipolygon"/><tag k="amenity" v="bench"/></relation>',
    "</osm>", ""])


def test_opl_lines_parse_with_escapes() -> None:
    obj = parse_line("n-7 v0 dV Tname=a%20%b%2c%c%3d%,amenity=bench x2.5 y-1\n")
    assert (obj.type, obj.id, obj.version, obj.lon, obj.lat) == ("node", -7, 0, 2.5, -1.0)
    assert obj.tags == {"name": "a b,c=", "amenity": "bench"}
    way = parse_line("w4 v2 dV T Nn1,n-2,n3")
    assert (way.type, way.nodes, way.tags, way.lon) == ("way", (1, -2, 3), {}, None)
    relation = parse_line("r5 v1 dV Ttype=route Mw4@,n1@stop%20%1")
    assert relation.members == (("way", 4, ""), ("node", 1, "stop 1"))
    assert parse_tags("k=%1f600%") == {"k": "\U0001f600"}
    assert ambiguous("n1 v1 dV Tk=%10000% x1 y1")  # U+10000 or U+100000?


def test_node_blocks_read_what_the_line_parser_reads(tmp_path: Path) -> None:
    source = tmp_path / "tricky.osm"
    source.write_text(TRICKY_OSM, encoding="utf-8")
    opl = tmp_path / "all.opl"
    writer = opl_writer(opl)
    osmium.apply(str(source), writer)
    writer.close()
    nodes = [o for o, _ in read_opl(opl) if o.type == "node"]
    blocks = list(read_node_blocks(opl, block_bytes=64))  # several blocks
    assert len(blocks) > 1
    assert [i for b in blocks for i in b.ids] == [n.id for n in nodes] == [1, 2, 3, 4, 5, 6]
    assert [parse_tags(t) for b in blocks for t in b.tags] == [n.tags for n in nodes]
    assert [(x, y) for b in blocks for x, y in zip(b.lons, b.lats, strict=True)] == [
        (n.lon, n.lat) for n in nodes]


def _pyosmium_tags(path: Path) -> dict[tuple[str, int], dict[str, str]]:
    return {(o.type_str(), o.id): {t.k: t.v for t in o.tags} for o in osmium.FileProcessor(
        str(path), osmium.osm.NODE | osmium.osm.WAY | osmium.osm.RELATION)}


def test_candidates_keep_every_character_and_location(tmp_path: Path) -> None:
    source = tmp_path / "tricky.osm"
    source.write_text(TRICKY_OSM, encoding="utf-8")
    exact = _pyosmium_tags(source)
    osm = read_osm_file(source, BENCH, None)
    keys = [e.key for e in osm.elements]
    assert keys == ["node/1", "node/2", "node/3", "node/5", "way/10", "relation/20"]
    for element in osm.elements[:-1]:  # an assembled area loses type=multipolygon
        assert element.tags == exact[(element.type[0], element.id)]
    assert osm.elements[0].tags["name"] == "\U00100000x"
    assert osm.elements[2].version == 2
    assert osm.elements[2].geometry.equals_exact(shapely.Point(1.5, 1.25), 0)
    assert osm.elements[-1].members == (("way", 10, "outer \U00100002"),)


def test_read_back_of_change_files_is_exact(tmp_path: Path) -> None:
    from pipeline.opl import read_objects

    source = tmp_path / "tricky.osm"
    source.write_text(TRICKY_OSM, encoding="utf-8")
    objects = read_objects(source)
    exact = _pyosmium_tags(source)
    assert {k: o.tags for k, o in objects.items()} == {
        ({"n": "node", "w": "way", "r": "relation"}[t], i): tags for (t, i), tags in exact.items()}
    assert objects[("relation", 20)].members == (("way", 10, "outer \U00100002"),)
    assert objects[("node", 6)].tags == {} and objects[("node", 6)].version == 1


def test_fetch_cache_round_trips_exactly(data: Path) -> None:
    osm = read_osm_file(data / "osm" / "monaco-latest.osm.pbf", {"building": "*"}, "ref")
    assert {e.type for e in osm.elements} == {"node", "way", "relation"}
    again = OsmData.from_json(json.loads(json.dumps(osm.to_json())))
    assert again == osm  # geometries compared coordinate by coordinate
    assert [e.geometry.wkb for e in again.elements] == [e.geometry.wkb for e in osm.elements]
    assert again.elements[-1].members == osm.elements[-1].members


def test_the_fetch_cache_round_trips_candidates_and_context() -> None:
    node = OsmElement("node", 5, 2, {"amenity": "bench"}, shapely.Point(1.5, 2.5))
    way = OsmElement("way", 7, 1, {"highway": "path"}, shapely.LineString([(0, 0), (1, 1)]),
                     nodes=(1, 2))
    context = {("node", 1): OsmElement("node", 1, 3, {}, shapely.Point(0, 0)),
               ("node", 2): OsmElement("node", 2, 1, {"x": "y"}, shapely.Point(1, 1))}
    data = OsmData((node, way), shapely.box(0, 0, 2, 3), "x", {"osm_base": "t"}, context)
    loaded = OsmData.from_json(json.loads(json.dumps(data.to_json())))
    assert loaded.elements == (node, way) and loaded.context == context
    assert loaded.coverage is not None and loaded.coverage.equals(data.coverage)


@pytest.mark.parametrize("nodes, cached", [(40, False), (2, True)])
def test_fetch_caches_only_what_is_slower_to_read_again(tmp_path: Path, nodes: int,
                                                         cached: bool) -> None:
    """A file that is nearly all candidates reads as fast as its cache: nothing is stored."""
    from pipeline.profile import load_profile
    from pipeline.runner import run_stages
    from pipeline.stages import RunContext

    lines = [f'<node id="{i}" version="1" lat="48.{i:02d}" lon="2.{i:02d}">'
             '<tag k="amenity" v="bench"/></node>' for i in range(1, nodes + 1)]
    lines += [f'<node id="{1000 + i}" version="1" lat="48.5" lon="2.5"/>' for i in range(60)]
    (tmp_path / "osm.osm").write_text(
        '<osm version="0.6"><bounds minlat="48" minlon="2" maxlat="49" maxlon="3"/>'
        + "\n".join(lines) + "</osm>\n", encoding="utf-8")
    (tmp_path / "src.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"ID": "1"},
         "geometry": {"type": "Point", "coordinates": [2.01, 48.01]}}]}), encoding="utf-8")
    (tmp_path / "p.yml").write_text(
        "name: t\nsource: {path: src.geojson, id: ID}\nosm: {match: {amenity: bench}, "
        "file: osm.osm}\ntags: {amenity: bench}\n", encoding="utf-8")
    ctx = RunContext(load_profile(tmp_path / "p.yml"), tmp_path / "out")
    first = run_stages(ctx, ["fetch"])["fetch"]
    assert (ctx.work / "fetch.json").is_file() is cached
    assert run_stages(ctx, ["fetch"])["fetch"] == first  # from the cache or from the file


def test_an_osm_element_is_immutable_and_pickles_with_its_key() -> None:
    import pickle

    import pytest
    import shapely

    from pipeline.kernel.osm import OsmElement

    element = OsmElement("way", 4, 2, {"highway": "service"}, shapely.LineString([(0, 0), (1, 1)]),
                         nodes=(1, 2))
    assert element.key == "way/4"
    with pytest.raises(AttributeError):
        element.id = 5  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(element))
    assert again == element and again.key == "way/4" and again.nodes == (1, 2)
