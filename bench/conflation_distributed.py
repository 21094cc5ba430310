"""A run on Dask beside the same run in one process: `python -m bench.conflation_distributed
[SIZE …]` (source features; 100000 and 1000000 by default).

The data are those of `bench.conflation_speed` (parking meters, 70 % of them an OSM node moved
0–10 m, 30 % new) at its scale-1 density of OSM nodes (1 000 a km²), over an area that grows
with the size: SIZE source features against an extract of 2 × SIZE nodes (10^6 features: a
45 × 45 km square). Each size is run, each time in a fresh output folder:

- in one process (`sig2osm run`);
- with `--workers 1` and `--workers 2` (a LocalCluster), the extract read and kept as
  GeoParquet on the way (a first run);
- with `--workers 2` again, that GeoParquet kept from before (a later run, as for a second
  profile on the same extract).

Above 300 000 features, only the one-process run and the first `--workers 2` run (the other
two would add most of an hour on the 2-core build machine).

Prints for each run its wall time, each stage's time from report.json, the peak memory of the
run's own processes (the client: reading, export) and of its largest Dask worker (sampled
every 0.2 s), and checks that every run's change files are those of the one-process run
(`bench.same_outputs.compare`). The speed-up is from 1 to 2 workers, first runs.

And the reviewer map of the first `--workers 2` run as a reviewer gets it: with more than
20 000 features an overview `map.html` and parts `maps/NNN.html`; their sizes, and the time to
open the overview and the largest part in Debian's Chromium, offline.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from bench.conflation_speed import (
    PROFILE,
    ROOT,
    SOUTH,
    SPAN_LAT,
    SPAN_LON,
    WEST,
    compile_bytecode,
    write_osm,
    write_source,
)
from bench.same_outputs import compare

OSM_PER_SOURCE = 2
SCALE_1_OSM = 100_000  # OSM nodes of bench.conflation_speed's 10 × 10 km at scale 1
RUNS = {"one process": [], "--workers 1": ["--workers", "1"],
        "--workers 2": ["--workers", "2"], "--workers 2, GeoParquet kept": ["--workers", "2"]}


def write_inputs(size: int, folder: Path) -> Path:
    rng = np.random.default_rng(size)
    n_osm = OSM_PER_SOURCE * size
    widen = math.sqrt(n_osm / SCALE_1_OSM)  # each side: the same density as scale 1
    lon = WEST + rng.uniform(0, SPAN_LON * widen, n_osm)
    lat = SOUTH + rng.uniform(0, SPAN_LAT * widen, n_osm)
    write_osm(folder / "osm.pbf", lon, lat, widen)
    write_source(folder / "source.geojson", lon, lat, rng, widen, OSM_PER_SOURCE)
    profile = folder / "speed.yml"
    profile.write_text(PROFILE.format(source=folder / "source.geojson", osm=folder / "osm.pbf"))
    return profile


class PeakMemory:
    """Peak resident memory of a process and its descendants, sampled every 0.2 s: of the
    run's own processes, and of the largest Dask worker (a process started by multiprocessing's
    spawn)."""

    def __init__(self, pid: int) -> None:
        self.client_mb = self.worker_mb = 0.0
        self._root = psutil.Process(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            try:
                processes = [self._root, *self._root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in processes:
                try:
                    command = " ".join(process.cmdline())
                    mb = process.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                if "resource_tracker" in command:
                    continue
                if "spawn_main" in command:
                    self.worker_mb = max(self.worker_mb, mb)
                else:
                    self.client_mb = max(self.client_mb, mb)


def run_once(profile: Path, out: Path, options: list[str]) -> dict[str, object]:
    started = time.perf_counter()
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "sig2osm"), "-q", "run",
                                str(profile), "--out", str(out), *options],
                               stdout=subprocess.DEVNULL)
    memory = PeakMemory(process.pid)
    code = process.wait()
    wall = time.perf_counter() - started
    memory.stop()
    if code:
        raise SystemExit(f"sig2osm run {' '.join(options)} failed with exit code {code}")
    report = json.loads((out / "speed" / "report.json").read_text())
    return {"wall_s": round(wall, 1), "client_peak_mb": round(memory.client_mb),
            "worker_peak_mb": round(memory.worker_mb) or None,
            "stages_s": report.get("timings_s"), "counts": report["counts"]}


def reviewer_map_figures(run: Path) -> dict[str, object]:
    """The reviewer map as a reviewer gets it: the overview and its parts (sizes), and the time
    to open the overview and the largest part in Chromium, offline (first frame painted with
    everything drawn; a warm-up opening first)."""
    from playwright.sync_api import sync_playwright

    from bench.maps_review import ARGS, CHROMIUM, open_painted

    parts = sorted((run / "maps").glob("*.html")) if (run / "maps").is_dir() else []
    largest = max(parts, key=lambda p: p.stat().st_size) if parts else run / "map.html"
    figures: dict[str, object] = {"map.html MB": round((run / "map.html").stat().st_size / 1e6, 2),
                                  "parts": len(parts),
                                  "largest part MB": round(largest.stat().st_size / 1e6, 1)}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, path in (("overview", run / "map.html"), ("largest part", largest)):
            open_painted(browser, path)[0].close()  # warm-up
            page, seconds, errors = open_painted(browser, path)
            figures[f"{name} open s"] = round(seconds, 2)
            figures[f"{name} drawn"] = int(page.evaluate("window.sig2osm.rendered()"))
            figures[f"{name} errors"] = len(errors)
            page.close()
        browser.close()
    return figures


def measure(size: int, folder: Path) -> dict[str, object]:
    profile = write_inputs(size, folder)
    results: dict[str, object] = {"source": size, "osm": OSM_PER_SOURCE * size}
    outs: dict[str, Path] = {}
    runs = RUNS if size <= 300_000 else {n: RUNS[n] for n in ("one process", "--workers 2")}
    for name, options in runs.items():
        out = outs[name] = folder / f"out-{len(outs)}"
        if name.endswith("GeoParquet kept"):
            out.mkdir()
            shutil.copytree(outs["--workers 2"] / ".cache", out / ".cache")
        results[name] = run_once(profile, out, options)
        print(f"  {size} {name}: {json.dumps(results[name])}", flush=True)
    results["reviewer map (--workers 2)"] = reviewer_map_figures(outs["--workers 2"] / "speed")
    print(f"  {size} reviewer map: {json.dumps(results['reviewer map (--workers 2)'])}",
          flush=True)
    alone = outs["one process"]
    results["same outputs"] = all(compare(alone, outs[name], alone, outs[name]) == []
                                  for name in runs if name != "one process")
    walls = {name: float(str(results[name]["wall_s"])) for name in runs}  # type: ignore[index]
    if "--workers 1" in walls:
        results["speed-up 1 → 2 workers"] = round(walls["--workers 1"] / walls["--workers 2"], 2)
    return results


def main(argv: list[str] | None = None) -> int:
    sizes = [int(s) for s in (argv if argv is not None else sys.argv[1:])] or [100_000, 1_000_000]
    compile_bytecode()
    same = True
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="sig2osm-distributed-") as tmp:
            result = measure(size, Path(tmp))
        print(json.dumps(result), flush=True)
        same = same and bool(result["same outputs"])
    print("outputs on workers identical to one process" if same else "OUTPUTS DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
