"""The maps' background (pipeline/map_context.py): streets with names, buildings and water read
from real extracts with pyosmium, bounded; and from one Overpass query through the loopback
server (cached, and a failure is a map without background, never a failed run)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import osmium
import pytest

import pipeline.map_context as map_context
from pipeline.cli import main
from pipeline.map_context import context_from_files, context_query, map_box
from tests.loopback import Loopback, Reply, overpass_server
from tests.test_overpass_pipeline import grenoble_profile

PATH = "/api/interpreter"
BONDY_BOX = (2.4779, 48.90676, 2.49111, 48.91278)  # map.osm's <bounds>


def _names(context: map_context.MapContext) -> set[str]:
    return {s[0] for s in context.streets if s[0]}


def test_bondy_extract_gives_streets_with_names_buildings_and_the_canal(data: Path) -> None:
    context = context_from_files([data / "bondy/osm/map.osm"], BONDY_BOX)
    assert {"Avenue du Général Gallieni", "Rue Fontaine", "Quai Hubertine Auclert"} <= _names(context)
    assert len(context.streets) > 100 and len(context.buildings) > 500
    assert context.water  # the Canal de l'Ourcq, a multipolygon area
    kinds = {s[1] for s in context.streets}
    assert "residential" in kinds and "path" in kinds  # footways drawn as paths
    # flat [lon, lat, …] lists, rounded to 1e-6°, inside the box grown by what crosses it
    coords = [v for s in context.streets for v in s[2]]
    assert all(round(v, 6) == v for v in coords)
    assert all(2.4 < x < 2.6 for x in coords[0::2]) and all(48.8 < y < 49.0 for y in coords[1::2])


def test_only_what_crosses_the_box_is_kept(data: Path) -> None:
    whole = context_from_files([data / "bondy/osm/map.osm"], BONDY_BOX)
    west, south, east, north = BONDY_BOX
    corner = context_from_files([data / "bondy/osm/map.osm"],
                                (west, south, (west + east) / 2, (south + north) / 2))
    assert 0 < len(corner.buildings) < len(whole.buildings) / 2
    assert 0 < len(corner.streets) < len(whole.streets)


def test_too_many_points_leave_the_buildings_out(data: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(map_context, "MAX_VERTICES", 5000)
    context = context_from_files([data / "bondy/osm/map.osm"], BONDY_BOX)
    assert context.buildings == [] and len(context.streets) > 100
    assert "buildings left out of the background" in caplog.text


def test_map_box_grows_the_features_bbox_by_a_margin() -> None:
    box = map_box([{"type": "Point", "coordinates": [5.7, 45.2]},
                   {"type": "LineString", "coordinates": [[5.71, 45.19], [5.72, 45.18]]}, None],
                  margin_m=111.32)
    assert box is not None
    assert box[1] == pytest.approx(45.18 - 0.001) and box[3] == pytest.approx(45.2 + 0.001)
    assert box[0] < 5.7 - 0.001 and box[2] > 5.72 + 0.001  # longitude degrees are shorter
    assert map_box([None, {"type": "Point", "coordinates": []}]) is None


def test_the_query_stays_small() -> None:
    city = context_query((5.68, 45.15, 5.75, 45.21))
    assert city is not None and 'way["building"]' in city and "footway" in city
    assert "[maxsize:67108864]" in city and "out skel qt;" in city
    region = context_query((5.0, 45.0, 5.9, 45.9))  # 0.81 square degrees: main streets, water
    assert region is not None and "building" not in region and "residential" not in region
    assert 'way["highway"~"^(motorway|primary|secondary|tertiary|trunk)$"]' in region
    assert context_query((0.0, 40.0, 5.0, 45.0)) is None  # a country: no query at all


def _as_overpass_answer(path: Path, query: str) -> dict[str, Any]:
    """What an Overpass server holding only `path` answers to the background query: the
    highways and buildings of its bbox (`out body`), then their nodes (`out skel`)."""
    box = re.search(r"\]\(([-0-9.,]+)\);", query)  # the bbox after the first filter
    assert box is not None
    south, west, north, east = map(float, box.group(1).split(","))
    nodes: dict[int, tuple[float, float]] = {}
    ways = []
    for obj in osmium.FileProcessor(str(path)):
        if obj.is_node():
            nodes[obj.id] = (obj.location.lon, obj.location.lat)
        elif obj.is_way() and ("highway" in obj.tags or "building" in obj.tags):
            ways.append({"type": "way", "id": obj.id, "nodes": [n.ref for n in obj.nodes],
                         "tags": {t.k: t.v for t in obj.tags}})
    inside = [w for w in ways if any(west <= nodes[n][0] <= east and south <= nodes[n][1] <= north
                                     for n in w["nodes"] if n in nodes)]
    refs = sorted({n for w in inside for n in w["nodes"] if n in nodes})
    return {"version": 0.6, "osm3s": {"timestamp_osm_base": "2020-03-01T00:00:00Z"},
            "elements": inside + [{"type": "node", "id": n, "lon": nodes[n][0], "lat": nodes[n][1]}
                                  for n in refs]}


def _background_of(page: Path) -> dict[str, Any] | None:
    block = re.search(r'<script type="application/json" id="s2o-osm">(.*?)</script>',
                      page.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    context: dict[str, Any] | None = json.loads(block.group(1))["context"]
    return context


def test_overpass_runs_ask_once_for_the_background_and_cache_it(tmp_path: Path, data: Path
                                                                ) -> None:
    answer = (data / "grenoble-horodateurs/INPUT/osm-raw-data.json").read_bytes()
    centre = data / "grenoble-horodateurs/osm_context/grenoble_centre_2020-03.osm"

    def respond(request: bytes) -> bytes | str:
        query = parse_qs(request.decode("utf-8"))["data"][0]
        return json.dumps(_as_overpass_answer(centre, query)) if "building" in query else answer

    with overpass_server() as server:
        server.script(PATH, [Reply(respond=respond)])
        profile = grenoble_profile(tmp_path, data, f"  overpass_url: {server.url(PATH)}\n"
                                   "  context_query: true", "background")
        out = tmp_path / "out"
        assert main(["-q", "run", str(profile), "--out", str(out)]) == 0
        assert server.count(PATH) == 2  # the candidates, then the background
        context = _background_of(out / "background" / "map.html")
        assert context is not None
        names = {s[0] for s in context["streets"] if s[0]}
        assert {"Cours Berriat", "Rue Ampère"} <= names and len(context["buildings"]) > 100
        assert main(["-q", "run", str(profile), "--out", str(out)]) == 0
        assert server.count(PATH) == 2  # both answers from the cache


def test_a_failed_background_query_leaves_a_map_without_it(
        tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # the maps are drawn in a second process, whose log pytest does not see: one process here
    monkeypatch.setenv("SIG2OSM_SERIAL", "1")
    answer = (data / "grenoble-horodateurs/INPUT/osm-raw-data.json").read_bytes()
    with overpass_server() as server:
        server.script(PATH, [Reply(body=answer), Reply(400, "bad request", "text/plain")])
        profile = grenoble_profile(tmp_path, data, f"  overpass_url: {server.url(PATH)}\n"
                                   "  context_query: true", "nobackground")
        out = tmp_path / "out"
        assert main(["run", str(profile), "--out", str(out)]) == 0
        assert _background_of(out / "nobackground" / "map.html") is None
        assert server.count(PATH) == 2  # the background was asked, and refused
        assert "no background from Overpass" in caplog.text and "400" in caplog.text


def test_without_context_query_overpass_is_asked_once(tmp_path: Path, data: Path,
                                                      server: Loopback) -> None:
    answer = (data / "grenoble-horodateurs/INPUT/osm-raw-data.json").read_bytes()
    server.script(PATH, [Reply(body=answer)])
    profile = grenoble_profile(tmp_path, data, f"  overpass_url: {server.url(PATH)}", "plain")
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "out")]) == 0
    assert server.count(PATH) == 1
    assert _background_of(tmp_path / "out" / "plain" / "map.html") is None


def _example(name: str, data: Path) -> str:
    """An example profile's text, its data paths pointing at `data`."""
    path = Path(__file__).resolve().parents[1] / "examples" / name
    return path.read_text(encoding="utf-8").replace("../../../shared/data", str(data))


@pytest.fixture
def server() -> Any:
    with overpass_server() as loopback:
        yield loopback


def test_an_empty_context_list_turns_the_background_off(tmp_path: Path, data: Path) -> None:
    profile = tmp_path / "bondy.yml"
    text = _example("bondy/parking-meters.yml", data)
    profile.write_text(text, encoding="utf-8")
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "on")]) == 0
    on = _background_of(tmp_path / "on" / "bondy-parking-meters" / "map.html")
    assert on is not None and len(on["streets"]) > 100  # the run's own extract
    profile.write_text(text.replace("  file: ", "  context: []\n  file: "), encoding="utf-8")
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "off")]) == 0
    assert _background_of(tmp_path / "off" / "bondy-parking-meters" / "map.html") is None


@pytest.mark.parametrize("content", [None, "not OSM data\n"], ids=["missing", "not OSM"])
def test_a_context_file_that_cannot_be_read_is_an_error_naming_it(
        tmp_path: Path, data: Path, content: str | None,
        capsys: pytest.CaptureFixture[str]) -> None:
    context = tmp_path / "centre.osm"
    if content is not None:
        context.write_text(content, encoding="utf-8")
    profile = tmp_path / "grenoble.yml"
    text = _example("grenoble/parking-meters.yml", data)
    text = re.sub(r"(?m)^  context: .*$", f"  context: {context}", text)
    profile.write_text(text, encoding="utf-8")
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "out")]) == 4
    err = "".join(capsys.readouterr().err.split())  # the message is wrapped, even in a path
    assert "".join(f"OSM file {context}: cannot be read for the map background".split()) in err
    assert not (tmp_path / "out" / "grenoble-parking-meters" / "map.html").exists()


def test_the_council_map_gets_the_same_background(tmp_path: Path, data: Path) -> None:
    profile = tmp_path / "council.yml"
    text = _example("bondy/council-map.yml", data)
    profile.write_text(text, encoding="utf-8")
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "out")]) == 0
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    council, reviewer = _background_of(run / "council-map.html"), _background_of(run / "map.html")
    assert council is not None and council == reviewer  # Bondy's map.osm, around the layer
    assert len(council["streets"]) > 100 and len(council["buildings"]) > 500 and council["water"]
