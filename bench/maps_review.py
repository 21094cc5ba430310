"""The reviewer map of a 10 000-feature run, with what OSM has and the offline background: its
size, how long it takes to open, and how fast it answers once open.

`python -m bench.maps_review`. The run is `bench.conflation_speed`'s scale 1 (10 000 source
points against 100 000 OSM nodes over ~10 × 10 km of Heidelberg), through `sig2osm run`, with
the real Heidelberg extract as the background (`osm.context`). The page is opened from disk in
headless Chromium (Debian's) with no network (tiles fail, as offline); figures, median of
three openings after a warm-up:
- size of map.html, and what it embeds (features, OSM objects, lines, background);
- open: navigation to the first frame painted with everything on the map (the page's
  `sig2osm.state` set, then two animation frames);
- interactive: the review panel's "next" key (`n`, creates and modifies included) to the popup
  of the next feature painted; a pan of 300 × 200 px and a zoom in, each to its frame painted.
Targets: open ≤ 3 s, each interaction ≤ 1 s (110 000 objects redrawn on a pan seen from afar).
The demo runs' reviewer maps (Grenoble, Bondy) are built too and their sizes printed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.conflation_speed import ROOT, write_inputs

OPEN_BUDGET_S = 3.0
ACTION_BUDGET_MS = 1000.0
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CONTEXT = ROOT.parent / "shared" / "data" / "osm" / "heidelberg.osm.pbf"
DEMOS = ("examples/grenoble/parking-meters.yml", "examples/bondy/parking-meters.yml")
PAINTED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
# One action, timed in the page from its start to the second frame after it.
TIMED = """async (action) => {
    const s = window.sig2osm.state, started = performance.now();
    if (action === "next") { document.dispatchEvent(new KeyboardEvent("keydown", {key: "n"})); }
    if (action === "pan") { s.map.panBy([300, 200], {animate: false}); }
    if (action === "zoom") { s.map.setZoom(s.map.getZoom() + 1, {animate: false}); }
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    if (action === "next" && !document.querySelector(".leaflet-popup-content")) { return -1; }
    return performance.now() - started;
}"""


def run(profile: Path, out: Path) -> Path:
    """`sig2osm run`; the run folder's map.html."""
    import subprocess

    subprocess.run([str(ROOT / ".venv" / "bin" / "sig2osm"), "-q", "run", str(profile), "--out",
                    str(out)], check=True, stdout=subprocess.DEVNULL)
    return next(out.glob("*/map.html"))


def open_painted(browser: Any, page_path: Path) -> tuple[Any, float, list[str]]:
    """A map page opened offline: the page, the seconds to its first frame painted with
    everything on the map, and the page's errors so far (the list goes on filling)."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://")
               else r.abort())
    started = time.perf_counter()
    page.goto(page_path.as_uri(), wait_until="commit")
    page.wait_for_function("window.sig2osm && window.sig2osm.state", timeout=120_000, polling=16)
    page.evaluate(PAINTED)
    return page, time.perf_counter() - started, errors


def open_once(browser: Any, page_path: Path) -> dict[str, Any]:
    page, opened, errors = open_painted(browser, page_path)
    page.locator(".s2o-include input").check()  # creates and modifies in the queue too
    actions = {a: float(page.evaluate(TIMED, a)) for a in ("next", "pan", "zoom", "next")}
    counts = page.evaluate("window.sig2osm.counts()")
    drawn = int(page.evaluate("window.sig2osm.rendered()"))
    page.close()
    return {"open_s": opened, **{f"{a}_ms": v for a, v in actions.items()}, "counts": counts,
            "drawn": drawn, "errors": errors}


def measure(browser: Any, page_path: Path) -> dict[str, Any]:
    open_once(browser, page_path)  # warm-up: the first page pays for starting a renderer
    runs = [open_once(browser, page_path) for _ in range(3)]
    result = {key: statistics.median(r[key] for r in runs)
              for key in ("open_s", "next_ms", "pan_ms", "zoom_ms")}
    return {**result, "counts": runs[0]["counts"], "drawn": runs[0]["drawn"],
            "errors": sum(len(r["errors"]) for r in runs)}


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sig2osm-maps-review-") as tmp:
        folder = Path(tmp)
        profile = write_inputs(1, False, folder)
        text = profile.read_text(encoding="utf-8")
        profile.write_text(text.replace("\n  file: ", f"\n  context: {CONTEXT}\n  file: ", 1),
                           encoding="utf-8")
        started = time.perf_counter()
        page_path = run(profile, folder / "out")
        built = time.perf_counter() - started
        demos = {name: run(ROOT / name, folder / f"demo{i}")
                 for i, name in enumerate(DEMOS)}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            result = measure(browser, page_path)
            browser.close()
        size = page_path.stat().st_size
        for name, path in demos.items():
            print(f"demo {name}: map.html {path.stat().st_size / 1e6:.2f} MB", flush=True)
    counts, context = result["counts"], result["counts"]["context"] or {"total": {}}
    ok = (result["open_s"] <= OPEN_BUDGET_S and result["errors"] == 0
          and max(result["next_ms"], result["pan_ms"], result["zoom_ms"]) <= ACTION_BUDGET_MS
          and result["next_ms"] >= 0 and result["drawn"] == 10_000)
    print(f"10 000-feature run (sig2osm run {built:.1f} s): map.html {size / 1e6:.1f} MB with "
          f"{result['drawn']} features, {counts['osm_objects']} OSM objects, {counts['links']} "
          f"match lines, background {context['total']}", flush=True)
    print(f"  opened and drawn in {result['open_s']:.2f} s (budget {OPEN_BUDGET_S} s); next "
          f"feature {result['next_ms']:.0f} ms, pan {result['pan_ms']:.0f} ms, zoom "
          f"{result['zoom_ms']:.0f} ms (budget {ACTION_BUDGET_MS:.0f} ms each); "
          f"{result['errors']} page errors -> {'ok' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
