"""The reviewer map of a big run in parts (maps/parts.py): an overview page and one page per
area, every feature on exactly one of them, each with the OSM objects around it; the review's
choices made in different parts end in one decisions file. On the Grenoble example with parts of
300 features (a national run has parts of 20 000), through `sig2osm run`."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import shapely

from conflation.feedback import parse_decisions
from maps.parts import PART_SIZE, PartedMap, split
from pipeline.cli import main
from pipeline.kernel.decisions import geojson_bounds, grown_bbox
from pipeline.kernel.osm import OsmData, OsmElement
from tests.conftest import EXAMPLES
from tests.test_maps_browser import browser, open_page
from tests.test_maps_review import current_id

# the fixtures this module uses, imported from the module that defines them
__all__ = ["browser", "open_page"]

GRENOBLE = EXAMPLES / "grenoble" / "parking-meters.yml"
RUN = "grenoble-parking-meters"
SIZE = 300  # 851 features: parts of 300, 300 and 251


def block(page: Path, ident: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{ident}">(.*?)</script>',
                      page.read_text(encoding="utf-8"), re.S)
    assert found, f"{page}: no {ident} block"
    return json.loads(found.group(1))


def review_of(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line.rstrip(","))
            for line in (run / "review.geojson").read_text(encoding="utf-8").splitlines()
            if line.startswith('{"type": "Feature"')]


@pytest.fixture(scope="module")
def parted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Grenoble example run with parts of SIZE features: its run folder."""
    out = tmp_path_factory.mktemp("parted")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("maps.publish.PART_SIZE", SIZE)
        assert main(["-q", "run", str(GRENOBLE), "--out", str(out)]) == 0
    return out / RUN


def point(x: float, y: float, decision: str = "create") -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": {"decision": decision}}


def test_split_puts_every_feature_in_one_part_of_near_features() -> None:
    # a 30 × 30 grid and two features without geometry
    features = [point(5.0 + 0.001 * (i % 30), 45.0 + 0.001 * (i // 30)) for i in range(900)]
    features += [{"type": "Feature", "geometry": None, "properties": {"decision": "skip"}}] * 2
    parts = split(features, 100)
    assert [p.number for p in parts] == list(range(1, 10))
    assert sorted(i for p in parts for i in p.features) == list(range(902))
    assert [len(p.features) for p in parts] == [100] * 8 + [102]
    assert {900, 901} <= set(parts[-1].features)
    # consecutive along the Hilbert curve: on this grid each part is a compact block, its
    # bbox a tenth of the whole or a little more, never a band across the grid
    for part in parts:
        west, south, east, north = part.bounds or (0, 0, 0, 0)
        assert (east - west) * (north - south) <= 0.2 * 0.029 * 0.029
    assert split(features, 100) == parts  # the same review, the same parts
    assert split(features, 902) == [] and split(features[:10]) == []
    assert PART_SIZE == 20_000


def test_a_part_carries_the_osm_objects_of_its_area_and_those_its_features_name() -> None:
    """A match by ref (or a reviewer's) may lie far from the feature: its object is in the
    feature's part all the same, so the match line is drawn; objects of other areas are not."""
    features = [point(2.3200, 48.8000), point(2.3201, 48.8001),
                point(2.4000, 48.8500, "modify")]
    features[2]["properties"].update(osm_id="node/9", source_id="C")
    osm = OsmData((OsmElement("node", 8, 1, {"amenity": "bench"}, shapely.Point(2.3202, 48.8)),
                   OsmElement("node", 9, 4, {"amenity": "bench"}, shapely.Point(2.5, 48.9)),
                   OsmElement("node", 7, 1, {"amenity": "bench"}, shapely.Point(2.4001, 48.85))),
                  None, "test")
    parts = split(features, 2)
    assert [p.features for p in parts] == [[0, 1], [2]]
    pages = PartedMap({"type": "FeatureCollection", "features": features}, "t", parts, 30.0,
                      tiles=False, osm=osm).pages("map.html")
    assert list(pages) == ["map.html", "maps/001.html", "maps/002.html"]
    objects = {name: {o[0] for o in json.loads(re.search(
        r'<script type="application/json" id="s2o-osm">(.*?)</script>', pages[name](),
        re.S).group(1))["objects"]} for name in ("maps/001.html", "maps/002.html")}
    assert objects == {"maps/001.html": {"node/8"}, "maps/002.html": {"node/7", "node/9"}}


def test_a_big_run_has_an_overview_and_parts_holding_every_feature_once(parted: Path) -> None:
    assert sorted(p.name for p in (parted / "maps").iterdir()) == ["001.html", "002.html",
                                                                   "003.html"]
    review = review_of(parted)
    by_id = {f["properties"]["source_id"]: f for f in review}
    overview = block(parted / "map.html", "s2o-data")
    assert len(overview["features"]) == 3  # the parts' outlines
    text = (parted / "map.html").read_text(encoding="utf-8")
    assert text.count('href="maps/00') == 3 and "851 objets" in text
    seen: Counter[str] = Counter()
    areas = {}
    for number in (1, 2, 3):
        page = parted / "maps" / f"{number:03d}.html"
        features = block(page, "s2o-data")["features"]
        assert len(features) == (SIZE if number < 3 else 851 - 2 * SIZE)
        ids = [f["properties"]["source_id"] for f in features]
        seen.update(ids)
        assert all(f == by_id[i] for f, i in zip(features, ids, strict=True))  # as review.geojson
        # the OSM objects around the part (its bbox grown by the 30 m match distance), and
        # every one a feature of the part names
        osm = block(page, "s2o-osm")
        keys = {o[0] for o in osm["objects"]}
        named = {f["properties"]["osm_id"] for f in features if f["properties"]["osm_id"]}
        named |= {c["osm_id"] for f in features for c in f["properties"].get("candidates", [])}
        assert named <= keys
        bounds = geojson_bounds(f["geometry"] for f in features)
        assert bounds is not None
        west, south, east, north = areas[number] = grown_bbox(bounds, 30)
        for o in osm["objects"]:
            x, y = o[3]
            assert west <= x <= east and south <= y <= north
        assert osm["coverage"]["type"] in ("Polygon", "MultiPolygon")
        html = page.read_text(encoding="utf-8")
        assert f"partie {number} sur 3" in html and 'href="../map.html"' in html
    assert seen == Counter(list(by_id)) and all(n == 1 for n in seen.values())
    # of the 17 OSM meters of the Overpass answer, those around some part (the others are
    # farther than the match distance from every feature: nothing is decided there)
    answer = json.loads((EXAMPLES.parents[1] / "shared" / "data" / "grenoble-horodateurs" /
                         "INPUT" / "osm-raw-data.json").read_text(encoding="utf-8"))
    meters = {f"node/{e['id']}": (e["lon"], e["lat"]) for e in answer["elements"]
              if e["type"] == "node" and e.get("tags", {}).get("vending") == "parking_tickets"}
    assert len(meters) == 17
    drawn: set[str] = set()
    for number, box in areas.items():
        keys = {o[0] for o in block(parted / "maps" / f"{number:03d}.html", "s2o-osm")["objects"]}
        assert keys == {k for k, (x, y) in meters.items()
                        if box[0] <= x <= box[2] and box[1] <= y <= box[3]}
        drawn |= keys
    assert len(drawn) == 11

def test_a_run_that_fits_one_page_again_removes_the_parts(parted: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("maps.publish.PART_SIZE", SIZE)
        assert main(["-q", "run", str(GRENOBLE), "--out", str(out)]) == 0
    assert (out / RUN / "maps" / "002.html").is_file()
    assert main(["-q", "run", str(GRENOBLE), "--out", str(out)]) == 0
    assert not (out / RUN / "maps").exists()
    assert len(block(out / RUN / "map.html", "s2o-data")["features"]) == 851
    # the other outputs do not depend on how the map is cut
    for name in ("review.geojson", "changes.osc", "changes.osm"):
        assert (out / RUN / name).read_bytes() == (parted / name).read_bytes(), name


@pytest.mark.browser
def test_overview_opens_parts_and_choices_of_all_parts_end_in_one_file(
        open_page: Any, parted: Path) -> None:
    opened = open_page(parted / "map.html")
    page = opened.page
    assert page.evaluate("window.sig2osm.state.parts.length") == 3
    assert page.evaluate("window.sig2osm.state.parts.map(p => p.count)") == [300, 300, 251]
    # a click in a part's area tells its counts and links to it
    x, y = page.evaluate("""() => {
        const s = window.sig2osm.state, layer = s.groups[0].getLayers()[1];
        const at = layer.getBounds().getCenter(), map = s.map;
        map.setView(at, map.getZoom(), {animate: false});
        const p = map.latLngToContainerPoint(at), r = map.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""")
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert "partie 2 — 300 objets" in popup.inner_text()
    popup.locator(".s2o-open-part").click()
    page.wait_for_url(re.compile(r"maps/002\.html$"))
    page.wait_for_function("window.sig2osm && window.sig2osm.state && window.sig2osm.state.review")
    assert page.evaluate("window.sig2osm.state.features") == 300

    # part 2 in this tab, part 3 in a second one, side by side: each adds to the other's
    # choices in the browser's storage instead of overwriting them
    def choose_first(tab: Any, decision: str) -> str:
        tab.locator(".s2o-include input").check()
        tab.keyboard.press("n")
        chosen = current_id(tab)
        tab.keyboard.press(decision)
        return chosen

    second = page.context.new_page()
    second.goto((parted / "maps" / "003.html").as_uri())
    second.wait_for_function("window.sig2osm && window.sig2osm.state && window.sig2osm.state.review")

    def sees(tab: Any, n: int) -> None:
        """Wait until `tab` holds n choices: the browser tells other tabs of a write to local
        storage a moment later, as it would a reviewer switching tabs."""
        tab.wait_for_function(f"Object.keys(window.sig2osm.state.review.choices).length === {n}")

    first_choice = choose_first(page, "a")
    sees(second, 1)
    second_choice = choose_first(second, "r")
    sees(page, 2)
    third_choice = current_id(page)
    page.keyboard.press("r")
    features_of = {n: {f["properties"]["source_id"] for f in block(
        parted / "maps" / f"{n:03d}.html", "s2o-data")["features"]} for n in (1, 2, 3)}
    assert {first_choice, third_choice} <= features_of[2] and second_choice in features_of[3]
    # a choice that part 1 stored while this tab was not told (a tab is never told of its own
    # writes): this tab's next save keeps it
    elsewhere = min(features_of[1])
    page.evaluate("""(id) => {
        const key = window.sig2osm.state.review._storageKey();
        const stored = JSON.parse(localStorage.getItem(key));
        stored.choices[id] = {decision: "reject", osm: null, date: "2026-12-02"};
        localStorage.setItem(key, JSON.stringify(stored));
    }""", elsewhere)
    fourth_choice = current_id(page)
    page.keyboard.press("a")
    sees(second, 5)
    expected = {first_choice: "accept", second_choice: "reject", third_choice: "reject",
                fourth_choice: "accept", elsewhere: "reject"}
    for tab in (page, second):
        text = tab.evaluate("window.sig2osm.state.review.decisionsText()")
        chosen = parse_decisions(text, "yaml", "page")
        assert {k: v.action for k, v in chosen.items()} == expected
    # and the way back: part 3 links to part 2 and to the overview
    assert second.locator('a[rel="prev"]').get_attribute("href") == "002.html"
    second.locator("a.s2o-part-link", has_text="Vue d'ensemble").click()
    second.wait_for_url(re.compile(r"/map\.html$"))
    assert opened.errors == []


def test_osm_objects_are_sent_once_per_tag_set(parted: Path) -> None:
    """The OSM block's compact form: tags by index into shared tag sets, nodes as [lon, lat]."""
    osm = block(parted / "maps" / "001.html", "s2o-osm")
    assert len(osm["tagsets"]) <= len(osm["objects"])
    for key, version, tags, geometry in osm["objects"]:
        assert re.fullmatch(r"(node|way|relation)/\d+", key) and version >= 1
        assert osm["tagsets"][tags]["amenity"] == "vending_machine"
        assert key.startswith("node/") and len(geometry) == 2

