"""Map pages at scale: a 50 000-feature layer must load and render in headless Chromium < 3 s.

Builds a council page (5 categories, 5 attributes per feature) and a reviewer page (every
decision, tag diffs, candidates) of 50 000 points spread over Grenoble, opens each from disk
with no network, and reports build time, page size, and the time from navigation to the first
frame painted after every feature is on the map. Run: `.venv/bin/python -m bench.maps_render`.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from maps.council import council_map, council_map_html
from maps.reviewer import reviewer_map_html
from pipeline.kernel.settings import MapConfig, OsmConfig, Profile, SourceConfig

N = 50_000
BUDGET_S = 3.0
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ZONES = ("verte", "orange", "rouge", "bleue", "résidentielle")
DECISIONS = ("create", "create", "create", "modify", "review", "unchanged", "missing")


def _points(rng: random.Random) -> list[tuple[float, float]]:
    return [(round(5.68 + rng.random() * 0.07, 7), round(45.15 + rng.random() * 0.06, 7))
            for _ in range(N)]


def council_page(rng: random.Random) -> str:
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                 "properties": {"source_id": str(i), "tags": {}, "skip_reason": None,
                                "attributes": {"id": i, "zone": rng.choice(ZONES),
                                               "adresse": f"{i % 300} rue de l'Exemple",
                                               "modele": "Parkeon Strada", "tarif": "1,50 €/h"}}}
                for i, (x, y) in enumerate(_points(rng))]
    profile = Profile(name="bench", tags={}, osm=OsmConfig(match={"amenity": "bench"}),
                      source=SourceConfig(id="id", path=Path("bench.geojson"), producer="bench"),
                      map=MapConfig(title="Bench", category="zone", tiles=False))
    return council_map_html(council_map({"features": features}, profile))


def reviewer_page(rng: random.Random) -> str:
    features = []
    for i, (x, y) in enumerate(_points(rng)):
        decision = rng.choice(DECISIONS)
        props: dict[str, Any] = {
            "source_id": str(i), "decision": decision, "reason": "bench",
            "osm_id": None if decision == "create" else f"node/{i}",
            "distance_m": None if decision == "create" else round(rng.random() * 30, 2),
            "tags": {"amenity": "vending_machine", "vending": "parking_tickets", "ref": str(i)},
            "tags_new": {"ref": str(i)}, "tags_changed": {}, "tags_kept": {},
            "candidates": [{"osm_id": f"node/{i}", "distance_m": 5.0, "score": 0.5}]
            if decision == "review" else []}
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Point", "coordinates": [x, y]}})
    return reviewer_map_html({"type": "FeatureCollection", "features": features}, title="Bench",
                             tiles=False)


def _open(browser: Any, path: Path) -> tuple[float, int, list[str], dict[str, float]]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    started = time.perf_counter()
    page.goto(path.as_uri(), wait_until="commit")
    page.wait_for_function("window.sig2osm && window.sig2osm.state", timeout=60000, polling=16)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    elapsed = time.perf_counter() - started
    rendered = int(page.evaluate("window.sig2osm.rendered()"))
    phases = page.evaluate("window.sig2osm.state.timings")  # ms since navigation start
    page.close()
    return elapsed, rendered, errors, phases


def main() -> int:
    from playwright.sync_api import sync_playwright

    rng = random.Random(6)
    failed = False
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, build in (("council", council_page), ("reviewer", reviewer_page)):
            t0 = time.perf_counter()
            html = build(rng)
            built = time.perf_counter() - t0
            path = Path(folder) / f"{name}.html"
            path.write_text(html, encoding="utf-8")
            _open(browser, path)  # warm-up: the first page pays for starting a renderer
            elapsed, rendered, errors, phases = _open(browser, path)
            ok = elapsed < BUDGET_S and rendered == N and not errors
            failed |= not ok
            print(f"{name}: {N} features, page {path.stat().st_size / 1e6:.1f} MB, built in "
                  f"{built:.1f} s, loaded and rendered in {elapsed:.2f} s "
                  f"(budget {BUDGET_S} s), {rendered} drawn, {len(errors)} console errors"
                  f" -> {'ok' if ok else 'FAIL'}", flush=True)
            print("  in page (ms from navigation): " + ", ".join(
                f"{k} {v:.0f}" for k, v in phases.items()), flush=True)
        browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
