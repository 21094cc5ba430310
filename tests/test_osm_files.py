"""OSM data from local files: every extract format, Overpass JSON, matching and coverage."""

from __future__ import annotations

import json
from pathlib import Path

import osmium
import pytest

from pipeline.kernel.errors import OsmDataError
from pipeline.kernel.osm import tags_match
from pipeline.osm_files import read_osm_file

BONDY_OSM = "bondy/osm/map.osm"
GRENOBLE_JSON = "grenoble-horodateurs/INPUT/osm-raw-data.json"
METERS = {"amenity": "vending_machine", "vending": "parking_tickets"}


def convert(source: Path, target: Path) -> Path:
    """The same data in another container, written by pyosmium (header box kept)."""
    processor = osmium.FileProcessor(str(source))
    with osmium.SimpleWriter(str(target), header=processor.header) as out:
        for obj in processor:
            out.add(obj)
    return target


@pytest.mark.parametrize("suffix", [".osm.gz", ".osm.bz2", ".osm.pbf"])
def test_every_extract_format_gives_the_same_elements(data: Path, tmp_path: Path,
                                                      suffix: str) -> None:
    plain = read_osm_file(data / BONDY_OSM, {"building": "*"}, None)
    other = read_osm_file(convert(data / BONDY_OSM, tmp_path / f"bondy{suffix}"),
                          {"building": "*"}, None)
    assert [e.key for e in other.elements] == [e.key for e in plain.elements]
    assert other.coverage is not None and plain.coverage is not None
    assert other.coverage.equals(plain.coverage)


def test_osm_xml_ways_areas_relations_and_bounds(data: Path) -> None:
    osm = read_osm_file(data / BONDY_OSM, {"building": "*"}, None)
    assert osm.coverage_origin == "bounds declared by map.osm"
    assert osm.coverage is not None
    assert osm.coverage.bounds == pytest.approx((2.4779, 48.90676, 2.49111, 48.91278))
    kinds = {e.type for e in osm.elements}
    assert kinds == {"way", "relation"}
    way = next(e for e in osm.elements if e.type == "way")
    assert way.geometry.geom_type == "Polygon" and way.nodes[0] == way.nodes[-1]
    relation = next(e for e in osm.elements if e.type == "relation")
    assert relation.geometry.geom_type == "Polygon"
    assert len(relation.geometry.interiors) == 1  # outer with a hole, as the relation says
    assert ("way", 84189102, "inner") in relation.members
    assert all(e.version >= 1 for e in osm.elements)


def test_highways_stay_lines(data: Path) -> None:
    osm = read_osm_file(data / BONDY_OSM, {"highway": ["residential", "primary"]}, None)
    assert osm.elements
    assert {e.geometry.geom_type for e in osm.elements} == {"LineString"}
    assert {e.tags["highway"] for e in osm.elements} == {"residential", "primary"}


def test_overpass_json_answer(data: Path) -> None:
    osm = read_osm_file(data / GRENOBLE_JSON, METERS, "ref:FR:Grenoble:horodateur",
                        [5.6776, 45.1541, 5.7531, 45.2140])
    assert len(osm.elements) == 17  # the 'area' pseudo-element is not a candidate
    assert osm.meta["osm_base"] == "2019-02-06T09:03:02Z"
    assert "assumed" in osm.coverage_origin and "osm.bounds" in osm.coverage_origin


def test_overpass_json_without_bounds_covers_nothing(data: Path) -> None:
    osm = read_osm_file(data / GRENOBLE_JSON, METERS, None)
    assert osm.coverage is None
    assert "declares no area" in osm.coverage_origin


def test_ref_key_makes_a_candidate(tmp_path: Path) -> None:
    answer = {"version": 0.6, "osm3s": {"timestamp_osm_base": "2024-01-01T00:00:00Z"},
              "elements": [
                  {"type": "node", "id": 1, "lat": 45.0, "lon": 5.0, "version": 3,
                   "tags": {"amenity": "bench"}},
                  {"type": "node", "id": 2, "lat": 45.0, "lon": 5.0, "version": 1,
                   "tags": {"disused:amenity": "vending_machine", "ref:x": "12"}},
              ]}
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answer))
    osm = read_osm_file(path, METERS, "ref:x", [4, 44, 6, 46])
    assert [e.key for e in osm.elements] == ["node/2"]


def test_tag_match_semantics() -> None:
    assert tags_match({"amenity": "bench", "material": "wood"}, {"amenity": "bench", "material": "*"})
    assert not tags_match({"amenity": "bench"}, {"amenity": "bench", "material": "*"})
    assert tags_match({"amenity": "recycling"}, {"amenity": ["recycling", "waste_basket"]})
    assert not tags_match({"amenity": "bench"}, {"amenity": ["recycling", "waste_basket"]})
    either = [{"highway": "bus_stop"}, {"amenity": "shelter", "shelter_type": "public_transport"}]
    assert tags_match({"highway": "bus_stop"}, either)
    assert tags_match({"amenity": "shelter", "shelter_type": "public_transport"}, either)
    assert not tags_match({"amenity": "shelter"}, either)


@pytest.mark.parametrize("content", [
    "id;name\n1;bench\n",
    "<?xml version='1.0'?><gpx version='1.1'><wpt lat='1' lon='2'/></gpx>",
    "<?xml version='1.0'?><osm version='0.6'><node id='1' lat='1' lon='2'>",
])
def test_file_that_is_not_osm(tmp_path: Path, content: str) -> None:
    path = tmp_path / "extract.osm"
    path.write_text(content)
    with pytest.raises(OsmDataError, match=r"extract.osm: (not an OSM file|cannot be read)"):
        read_osm_file(path, METERS, None)


def test_json_that_is_not_an_overpass_answer(tmp_path: Path) -> None:
    path = tmp_path / "layer.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(OsmDataError, match="without an 'elements' list"):
        read_osm_file(path, METERS, None)
