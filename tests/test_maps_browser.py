"""The map pages in a real headless Chromium: offline, complete, clickable, and inert to data.

One browser per module; each test opens a fresh page that records console errors, page errors,
dialogs and every request (non-file requests are answered locally, never sent).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from exports.review import review_lines
from maps.council import council_map, council_map_html
from maps.reviewer import reviewer_map_html
from pipeline.ingest import ingest
from pipeline.profile import load_profile
from tests.test_maps import COUNCIL, HOSTILE, hostile_layer, hostile_profile, review_collection

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/"
                       "PchI7wAAAABJRU5ErkJggg==")


@dataclass
class Opened:
    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @property
    def outside(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file://", "data:", "blob:"))]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run 'make browser' (Debian's chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    contexts = []

    def opener(html: str | Path, name: str = "page.html", tile: bytes | None = PNG) -> Opened:
        """Open `html` (a page's text, or a page written by a run); tiles get `tile`, or
        fail as they do offline when it is None."""
        if isinstance(html, Path):
            path = html
        else:
            path = tmp_path / name
            path.write_text(html, encoding="utf-8")
        context = browser.new_context(viewport={"width": 1200, "height": 800}, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        opened = Opened(page)
        page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: opened.errors.append(str(e)))
        def dialog(d: Any) -> None:
            opened.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

        def route(r: Any) -> None:
            opened.requests.append(r.request.url)
            if r.request.url.startswith("file://"):
                r.continue_()
            else:  # never reach the network: a tile gets a 1-pixel PNG, anything else a 404
                image = tile if r.request.url.startswith("https://tile.openstreetmap.org/") else None
                r.fulfill(status=404 if image is None else 200, body=image or b"",
                          content_type="image/png")

        page.route("**/*", route)
        page.goto(path.as_uri())
        page.wait_for_function("window.sig2osm && window.sig2osm.state", timeout=10000)
        return opened

    yield opener
    for context in contexts:
        context.close()


def click_feature(opened: Opened, source_field: str, value: str) -> str:
    """Zoom on the feature whose property equals value, click it, return the popup text."""
    opened.page.evaluate("() => { window.sig2osm.state.map.closePopup(); }")
    opened.page.wait_for_function("!document.querySelector('.leaflet-popup')")  # faded out
    x, y = opened.page.evaluate("""([field, value]) => {
        const map = window.sig2osm.state.map, at = window.sig2osm.locate(field, value);
        map.setView(at, 19, {animate: false});
        const p = map.latLngToContainerPoint(at), r = map.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""", [source_field, value])
    opened.page.mouse.click(x, y)
    popup = opened.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    return str(popup.inner_text())


def assert_inert(opened: Opened) -> None:
    page = opened.page
    assert page.evaluate("window.__pwned") is None
    assert opened.dialogs == []
    assert page.locator("body img, .leaflet-popup-content b").count() == 0
    raw = page.evaluate("""() => [...document.scripts].filter(s =>
        s.textContent.includes('<script>window') || s.textContent.includes('<img src=x')).length""")
    assert raw == 0  # data travels escaped (\\u003c) inside scripts, never as markup


@pytest.mark.parametrize("as_written", [False, True], ids=["from data", "from review.geojson"])
def test_reviewer_map_offline(open_page: Any, as_written: bool) -> None:
    """Also with the data embedded as review.geojson holds it, as `sig2osm run` builds it."""
    collection = review_collection()
    text = review_lines(collection["features"]) if as_written else None
    opened = open_page(reviewer_map_html(collection, title=HOSTILE["close"], tiles=False,
                                         collection_text=text))
    page = opened.page
    with_geometry = sum(1 for f in collection["features"] if f["geometry"])
    assert page.evaluate("window.sig2osm.rendered()") == with_geometry == 6
    legend = page.locator(".s2o-legend").inner_text()
    assert "À créer\n2" in legend and "Ignoré\n1" in legend and "À vérifier\n1" in legend
    assert "1 objet(s) sans géométrie" in page.locator("header").inner_text()
    assert page.title() == HOSTILE["close"]

    text = click_feature(opened, "source_id", "M1")
    assert "À modifier" in text and "n° M1" in text and "Distance : 3,2 m" in text
    assert "backrest\tno\tyes\tmodifié" in text and "material\twood\tmetal\tconservé" in text
    links = page.locator(".leaflet-popup-content a")
    assert links.nth(0).get_attribute("href") == "https://www.openstreetmap.org/node/42"
    assert links.nth(1).get_attribute("href") == "http://127.0.0.1:8111/load_object?objects=n42"

    text = click_feature(opened, "source_id", HOSTILE["script"])
    assert HOSTILE["script"] in text and HOSTILE["quotes"] in text
    assert "Objets OSM candidats" in text and "node/7 — 12 m, score 0,51" in text
    josm = page.locator(".leaflet-popup-content a", has_text="JOSM").get_attribute("href")
    assert josm == "http://127.0.0.1:8111/load_object?objects=n7,w8"

    text = click_feature(opened, "source_id", HOSTILE["close"])
    assert HOSTILE["script"] in text and HOSTILE["quotes"] in text
    assert page.locator(".leaflet-popup-content a[href^='javascript']").count() == 0
    assert_inert(opened)
    assert opened.errors == [] and opened.outside == []


def test_council_map_of_the_bondy_layer(open_page: Any, data: Path) -> None:
    profile = load_profile(COUNCIL)
    layer = ingest(profile, profile.source.path).to_json()  # type: ignore[arg-type]
    council = council_map(layer, profile)
    opened = open_page(council_map_html(council))
    page = opened.page
    assert page.evaluate("window.sig2osm.rendered()") == 108
    legend = page.locator(".s2o-legend").inner_text()
    assert "Zone verte\n80" in legend and "Zone orange\n28" in legend
    feature = next(f for f in council.collection["features"] if f["properties"]["zone"] == "verte")
    text = click_feature(opened, "identifiant", feature["properties"]["identifiant"])
    assert "Zone verte" in text and f"adresse\t{feature['properties']['adresse']}" in text
    assert "zone\tverte" in text
    assert opened.errors == []
    assert opened.outside and all(
        u.startswith("https://tile.openstreetmap.org/") for u in opened.outside)


def test_council_map_shows_hostile_attributes_as_text(open_page: Any) -> None:
    council = council_map(hostile_layer(), hostile_profile(tiles=False))
    opened = open_page(council_map_html(council))
    page = opened.page
    assert page.evaluate("window.sig2osm.rendered()") == 5
    header = page.locator("header").inner_text()
    for text in (HOSTILE["script"], HOSTILE["img"], HOSTILE["quotes"], HOSTILE["close"]):
        assert text in header
    legend = page.locator(".s2o-legend").inner_text()
    assert HOSTILE["close"] in legend and HOSTILE["img"] in legend
    attribution = page.locator(".leaflet-control-attribution").inner_text()
    assert HOSTILE["img"] in attribution
    text = click_feature(opened, "id", "2")
    assert f"kind\t{HOSTILE['img']}" in text and f"label\t{HOSTILE['img']}" in text
    with page.expect_download() as download:
        page.locator("#s2o-download").click()
    saved = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert saved == council.collection
    assert_inert(opened)
    assert opened.errors == [] and opened.outside == []
