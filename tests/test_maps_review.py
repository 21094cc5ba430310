"""The review loop in a real headless Chromium, on the Grenoble example as `sig2osm run` writes
it: what OSM has is drawn (objects, match lines, covered area) over the offline background; a
reviewer goes through the reviews with the keyboard, accepts one, rejects one, matches a feature
to an OSM object picked on the map, downloads `match.decisions`; the next run with that file
gives exactly those outcomes. And nothing from the data runs in the page."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import shapely

from conflation.feedback import parse_decisions
from maps.reviewer import ReviewSetup, reviewer_map_html
from pipeline.cli import main
from pipeline.kernel.osm import OsmData, OsmElement
from tests.conftest import EXAMPLES
from tests.test_maps import HOSTILE, point, review_feature
from tests.test_maps_browser import Opened, assert_inert, browser, click_feature, open_page

# the fixtures this module uses, imported from the module that defines them
__all__ = ["browser", "open_page"]

pytestmark = pytest.mark.browser

GRENOBLE = EXAMPLES / "grenoble" / "parking-meters.yml"
RUN = "grenoble-parking-meters"
PICKED = "node/5949111902"  # an OSM meter no decision names, 115 m from source meter 799
# The background's colours (context.js): buildings, street casing, main streets.
BACKGROUND_RGB = {(0xD9, 0xD0, 0xC9), (0xBB, 0xB1, 0xA6), (0xFC, 0xD6, 0xA4)}


@pytest.fixture(scope="module")
def grenoble(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Grenoble example run once: its run folder."""
    out = tmp_path_factory.mktemp("grenoble")
    assert main(["-q", "run", str(GRENOBLE), "--out", str(out)]) == 0
    return out / RUN


def decisions_of(run: Path) -> dict[str, tuple[str, str | None]]:
    """review.geojson as {source id: (decision, osm id)}."""
    found = {}
    for line in (run / "review.geojson").read_text(encoding="utf-8").splitlines():
        if line.startswith('{"type": "Feature"'):
            p = json.loads(line.rstrip(","))["properties"]
            found[p["source_id"] or p["osm_id"]] = (p["decision"], p["osm_id"])
    return found


def progress(opened: Opened) -> str:
    return str(opened.page.locator(".s2o-progress").inner_text())


def current_id(page: Any) -> str:
    """The source id of the feature the review panel is on."""
    return str(page.evaluate(
        "window.sig2osm.state.review.sourceId(window.sig2osm.state.review.current())"))


def run_with_decisions(text: str, tmp_path: Path) -> dict[str, tuple[str, str | None]]:
    """The Grenoble example run again with `text` as its `match.decisions` file: its
    review.geojson as {source id: (decision, osm id)}."""
    decisions = tmp_path / "decisions.yml"
    decisions.write_text(text, encoding="utf-8")
    profile = tmp_path / "grenoble.yml"
    profile.write_text(GRENOBLE.read_text(encoding="utf-8")
                       .replace("../../../shared", str(EXAMPLES.parents[1] / "shared"))
                       .replace("\nmatch:\n", f"\nmatch:\n  decisions: {decisions}\n"),
                       encoding="utf-8")
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "out")]) == 0
    return decisions_of(tmp_path / "out" / RUN)


def click_at(opened: Opened, script: str, arg: Any) -> None:
    """Centre the map at zoom 19 on the point `script` returns for `arg`, and click there."""
    x, y = opened.page.evaluate("""([script, arg]) => {
        const map = window.sig2osm.state.map, at = eval(script)(arg);
        map.setView(at, 19, {animate: false});
        const p = map.latLngToContainerPoint(at), r = map.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""", [script, arg])
    opened.page.mouse.click(x, y)


def background_pixels(opened: Opened) -> int:
    """Pixels of a screenshot of the map in the background's own colours (the PNG decoded by
    the browser itself)."""
    shot = base64.b64encode(opened.page.locator(".leaflet-container").screenshot()).decode()
    return int(opened.page.evaluate("""async ([png, colours]) => {
        const image = new Image();
        image.src = "data:image/png;base64," + png;
        await image.decode();
        const canvas = document.createElement("canvas");
        canvas.width = image.width; canvas.height = image.height;
        const ctx = canvas.getContext("2d");
        ctx.drawImage(image, 0, 0);
        const px = ctx.getImageData(0, 0, image.width, image.height).data, wanted = new Set(colours);
        let n = 0;
        for (let i = 0; i < px.length; i += 4) {
            if (wanted.has((px[i] << 16) | (px[i + 1] << 8) | px[i + 2])) { n += 1; }
        }
        return n;
    }""", [shot, [(r << 16) | (g << 8) | b for r, g, b in BACKGROUND_RGB]]))


def test_what_osm_has_is_drawn_over_the_offline_background(open_page: Any, grenoble: Path,
                                                           tmp_path: Path) -> None:
    opened = open_page(grenoble / "map.html", tile=None)  # no tile arrives
    page = opened.page
    counts = page.evaluate("window.sig2osm.counts()")
    # the recorded Overpass answer: 17 meters; 7 named by a decision (7 modify, whose objects
    # the 2 reviews are compared with as well)
    assert counts["osm_objects"] == 17 and counts["osm_compared"] == 7
    assert counts["osm_drawn"] == 17
    assert counts["links"] == 7 and counts["candidate_links"] == 2 and counts["links_drawn"] == 9
    assert counts["coverage"] is True
    total = counts["context"]["total"]  # the 2020 export of central Grenoble
    assert total["streets"] > 80 and total["named"] > 40 and total["buildings"] > 200

    # a click on an OSM object: its id, version and tags, and the source feature naming it
    click_at(opened, "window.sig2osm.locateOsm", "node/3306535275")
    text = page.locator(".leaflet-popup-content").inner_text()
    assert "node/3306535275" in text and re.search(r"version \d+", text, re.IGNORECASE)
    assert "vending\tparking_tickets" in text and "203" in text

    # a click on a match line (halfway along it): the pair
    page.evaluate("() => window.sig2osm.state.map.closePopup()")
    x, y = page.evaluate("""() => {
        const s = window.sig2osm.state, map = s.map, line = s.links.match;
        const k = line.links.findIndex(l => l.osm === "node/3306535275");
        const [a, b] = line._ends[k], mid = L.latLng((a.lat + b.lat) / 2, (a.lng + b.lng) / 2);
        map.setView(mid, 21, {animate: false});
        const p = map.latLngToContainerPoint(mid), r = map.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""")
    page.mouse.click(x, y)
    text = page.locator(".leaflet-popup-content").inner_text()
    assert "203" in text and "node/3306535275" in text and "À modifier" in text

    # the streets offline, in the extract's bounds (around Cours Berriat): drawn with their
    # names, seen on a screenshot, gone without the layer
    page.evaluate("""() => { const m = window.sig2osm.state.map; m.closePopup();
                             m.setView([45.1877, 5.7059], 17, {animate: false}); }""")
    drawn = page.evaluate("window.sig2osm.counts().context.drawn")
    assert drawn["streets"] > 20 and drawn["labels"] > 5 and drawn["buildings"] > 50
    with_background = background_pixels(opened)
    page.evaluate("() => window.sig2osm.state.map.removeLayer(window.sig2osm.state.context)")
    without = background_pixels(opened)
    page.evaluate("() => window.sig2osm.state.map.addLayer(window.sig2osm.state.context)")
    page.screenshot(path=str(tmp_path / "background.png"))
    # 55 661 of the map's 1200 × 734 pixels at this writing; 8 without the background
    assert with_background > 30_000 and without < with_background / 100
    assert [e for e in opened.errors if "Failed to load resource" not in e] == []
    assert all(u.startswith("https://tile.openstreetmap.org/") for u in opened.outside)


def test_a_reviewer_goes_through_the_reviews_and_the_next_run_does_what_was_chosen(
        open_page: Any, grenoble: Path, tmp_path: Path) -> None:
    opened = open_page(grenoble / "map.html")
    page = opened.page
    before = decisions_of(grenoble)
    reviews = sorted(k for k, v in before.items() if v[0] == "review")
    assert reviews == ["200", "46"] and progress(opened) == "0 / 2 décidés"

    # the keyboard: next, accept (the page moves on to the next undecided), reject
    page.keyboard.press("n")
    first = current_id(page)
    assert f"1. À vérifier n° {first}" in page.locator(".s2o-item").inner_text()
    assert page.locator(".leaflet-popup-content").inner_text().count(first) >= 1  # opened
    page.keyboard.press("a")
    second = current_id(page)
    assert {first, second} == set(reviews)
    page.keyboard.press("r")
    assert progress(opened) == "2 / 2 décidés"

    # creates and modifies too; meter 799 is that OSM object, picked on the map
    page.locator(".s2o-include input").check()
    assert progress(opened) == "2 / 851 décidés"
    click_feature(opened, "source_id", "799")
    page.locator(".leaflet-popup-content .s2o-match").click()
    assert "s2o-picking" in (page.locator(".leaflet-container").get_attribute("class") or "")
    click_at(opened, "window.sig2osm.locateOsm", PICKED)
    assert progress(opened) == "3 / 851 décidés"

    # kept in the browser: a reload shows the same choices
    page.reload()
    page.wait_for_function("window.sig2osm && window.sig2osm.state")
    assert progress(opened) == "3 / 851 décidés"
    with page.expect_download() as download:
        page.locator(".s2o-download-decisions").click()
    assert download.value.suggested_filename == f"{RUN}-decisions.yml"
    text = Path(download.value.path()).read_text(encoding="utf-8")
    chosen = parse_decisions(text, "yaml", "download")
    assert {k: (v.action, v.osm_key) for k, v in chosen.items()} == {
        first: ("accept", None), second: ("reject", None), "799": ("match", PICKED)}

    # the next run reads that file: exactly those outcomes, nothing else changes
    after = run_with_decisions(text, tmp_path)
    expected = {**before, "46": ("create", None), "200": ("skip", None),
                "799": ("modify", PICKED)}
    assert after == expected
    assert opened.errors == []


def test_new_object_by_button_and_by_key_makes_both_reviews_creates(
        open_page: Any, grenoble: Path, tmp_path: Path) -> None:
    """"Nouvel objet": the popup's button for the first review, the key `c` for the second;
    the next run creates both, whatever OSM meter was near."""
    opened = open_page(grenoble / "map.html")
    page = opened.page
    page.keyboard.press("n")
    first = current_id(page)
    # the popup, panned clear of the panel and the legend: its button is not under them
    page.wait_for_function("!document.querySelector('.leaflet-pan-anim')")
    page.locator(".leaflet-popup-content .s2o-create").click()
    second = current_id(page)
    assert {first, second} == {"46", "200"}
    page.keyboard.press("c")
    assert progress(opened) == "2 / 2 décidés"
    text = page.evaluate("window.sig2osm.state.review.decisionsText()")
    assert {k: v.action for k, v in parse_decisions(text, "yaml", "page").items()} == {
        "46": "create", "200": "create"}
    after = run_with_decisions(text, tmp_path)
    assert after == {**decisions_of(grenoble), "46": ("create", None), "200": ("create", None)}
    assert opened.errors == []


def test_bulk_choices_by_kind_and_by_area(open_page: Any, grenoble: Path) -> None:
    opened = open_page(grenoble / "map.html")
    page = opened.page
    page.locator(".s2o-include input").check()
    kinds = page.locator(".s2o-kind option").all_inner_texts()
    create = next(k for k in kinds if k.startswith("À créer"))
    assert create.endswith("(842)")
    page.locator(".s2o-kind").select_option(label=create)
    page.locator(".s2o-kind-accept").click()
    assert progress(opened) == "842 / 851 décidés"
    # an area: drag a box around the two reviews and a modify, reject them all
    page.evaluate("""() => window.sig2osm.state.map.fitBounds(
        [[45.1855, 5.7290], [45.1878, 5.7314]], {animate: false})""")
    page.keyboard.press("s")
    box = page.locator(".leaflet-container").bounding_box()
    corner = page.evaluate("""() => {
        const m = window.sig2osm.state.map;
        return [m.latLngToContainerPoint([45.1878, 5.7290]), m.latLngToContainerPoint([45.1855, 5.7314])]
            .map(p => [p.x, p.y]);
    }""")
    page.mouse.move(box["x"] + corner[0][0], box["y"] + corner[0][1])
    page.mouse.down()
    page.mouse.move(box["x"] + corner[1][0], box["y"] + corner[1][1], steps=5)
    page.mouse.up()
    selected = page.evaluate(
        "(r => r.selected.map(i => r.sourceId(i)))(window.sig2osm.state.review)")
    assert {"46", "200"} <= set(selected)
    assert f"{len(selected)} sélectionné(s)" in page.locator(".s2o-selection").inner_text()
    page.locator(".s2o-area-reject").click()
    text = page.evaluate("window.sig2osm.state.review.decisionsText()")
    chosen = parse_decisions(text, "yaml", "page")
    creates = {k for k, v in decisions_of(grenoble).items() if v[0] == "create"}
    assert {k: v.action for k, v in chosen.items()} == {
        **{k: "accept" for k in creates}, **{k: "reject" for k in selected}}
    assert opened.errors == []


def test_nothing_from_the_data_runs_in_the_review_page(open_page: Any) -> None:
    """Markup in OSM tags and keys, street names, field names and source ids is shown as text,
    and a source id with quotes and a line break goes through the decisions file unchanged."""
    odd_id = 'a"b\nc: d # \u2028' + HOSTILE["close"]
    features = [review_feature("review", odd_id, point(2.32, 48.80), tags={"amenity": "bench"},
                               candidates=[{"osm_id": "node/7", "distance_m": 12.0, "score": 0.5}]),
                review_feature("create", "C1", point(2.321, 48.80),
                               tags={HOSTILE["img"]: HOSTILE["script"]})]
    osm = OsmData((OsmElement("node", 7, 3, {HOSTILE["img"]: HOSTILE["close"],
                                             "amenity": "bench", "name": HOSTILE["script"]},
                              geometry=shapely.Point(2.3201, 48.8001)),), None, "test")
    context = {"streets": [[HOSTILE["script"], "residential", [2.3195, 48.7998, 2.3215, 48.7998]]],
               "buildings": [], "water": [], "waterways": []}
    html = reviewer_map_html({"type": "FeatureCollection", "features": features},
                             title=HOSTILE["img"], tiles=False, osm=osm, context=context,
                             review=ReviewSetup(HOSTILE["close"], "decisions.yml"))
    opened = open_page(html)
    page = opened.page
    click_at(opened, "window.sig2osm.locateOsm", "node/7")
    text = page.locator(".leaflet-popup-content").inner_text()
    assert HOSTILE["img"] in text and HOSTILE["close"] in text and HOSTILE["script"] in text
    page.keyboard.press("n")
    page.keyboard.press("r")
    chosen = parse_decisions(page.evaluate("window.sig2osm.state.review.decisionsText()"),
                             "yaml", "page")
    assert list(chosen) == [odd_id] and chosen[odd_id].action == "reject"
    assert page.evaluate("window.sig2osm.counts().context.drawn.labels") >= 1
    assert_inert(opened)
    assert opened.errors == [] and opened.outside == []



@pytest.mark.parametrize("locale", ["fr", "en"])
def test_a_skip_says_why_in_the_pages_language_and_offers_nothing_to_upload(
        open_page: Any, locale: str) -> None:
    why = [{"code": "outside_coverage", "params": {"area": "bounds declared by map.osm"}}]
    english = ("outside the area the OSM data covers, so OSM may already have it (area: bounds "
               "declared by map.osm)")
    features = [review_feature("skip", "S1", point(2.32, 48.80), reason=english, why=why,
                               tags={"amenity": "bench"}, tags_new={"amenity": "bench"})]
    opened = open_page(reviewer_map_html({"type": "FeatureCollection", "features": features},
                                         title="t", tiles=False, locale=locale))
    text = click_feature(opened, "source_id", "S1")
    if locale == "fr":
        assert "hors de la zone couverte par les données OSM" in text and english not in text
        assert "Rien n'est proposé à l'envoi pour cet objet." in text
        assert "Ignoré" in text and "ajouté" not in text
    else:
        assert "outside the area the OSM data covers" in text and "données" not in text
        assert "Nothing is proposed for upload for this feature." in text
        assert "Skipped" in text and "added" not in text
    popup = opened.page.locator(".leaflet-popup-content")
    assert popup.locator("a", has_text="JOSM").count() == 0 and popup.locator("button").count() == 0
    assert opened.errors == []
