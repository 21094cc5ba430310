"""sig2osm against OSM Conflator, end to end on the same data: `python -m bench.conflator_compare`.

The data is `bench.conflation_speed`'s scale 1 (10 000 source points, 100 000 OSM nodes). OSM
Conflator (the `osm_conflate` package, installed from PyPI into a virtual environment of its own
under the system's temporary folder, once) gets the OSM data as the .osm XML file it reads with
`--osm`, and a profile with the same tags and 30 m; it writes an osmChange. sig2osm runs its
whole `sig2osm run`, review file and maps included. Each tool runs three times, alternately (the
machine's speed drifts); the medians and their ratio are printed.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import osmium

from bench.conflation_speed import ROOT, compile_bytecode, write_inputs

CONFLATOR_VENV = Path(tempfile.gettempdir()) / "sig2osm-bench-osm-conflate"
CONFLATOR_VERSION = "1.4.1"
PROFILE = """# OSM Conflator profile for the sig2osm speed benchmark data.
import json
source = 'bench'
dataset_id = 'bench'
query = [('amenity', 'vending_machine'), ('vending', 'parking_tickets')]
master_tags = ('amenity', 'vending')
max_distance = 30


def dataset(fileobj):
    data = []
    for f in json.load(fileobj)['features']:
        lon, lat = f['geometry']['coordinates']
        tags = {'amenity': 'vending_machine', 'vending': 'parking_tickets'}
        data.append(SourcePoint(f['properties']['ID'], lat, lon, tags))
    return data
"""


def conflator() -> Path:
    """The `conflate` command, installed on first use."""
    command = CONFLATOR_VENV / "bin" / "conflate"
    if not command.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CONFLATOR_VENV)], check=True)
        subprocess.run([str(CONFLATOR_VENV / "bin" / "pip"), "install", "--quiet",
                        f"osm_conflate=={CONFLATOR_VERSION}"], check=True)
    return command


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    compile_bytecode()
    try:
        command = conflator()
    except subprocess.CalledProcessError as exc:
        print(f"OSM Conflator {CONFLATOR_VERSION} could not be installed from PyPI ({exc}); "
              "nothing compared")
        return 1
    with tempfile.TemporaryDirectory(prefix="sig2osm-compare-") as tmp:
        folder = Path(tmp)
        profile = write_inputs(1, False, folder)
        with osmium.SimpleWriter(str(folder / "osm.osm")) as writer:  # Conflator reads XML
            for node in osmium.FileProcessor(str(folder / "osm.pbf")):
                writer.add_node(node)
        (folder / "profile.py").write_text(PROFILE)
        theirs, ours = [], []
        for i in range(3):
            theirs.append(timed([str(command), "profile.py", "-i", "source.geojson",
                                 "--osm", "osm.osm", "--osc", "-o", f"conflator{i}.osc"], folder))
            ours.append(timed([str(ROOT / ".venv" / "bin" / "sig2osm"), "-q", "run",
                               str(profile), "--out", str(folder / f"out{i}")], folder))
    result = {"osm_conflate": CONFLATOR_VERSION,
              "conflator_s": [round(t, 2) for t in theirs],
              "sig2osm_s": [round(t, 2) for t in ours],
              "conflator_median_s": round(statistics.median(theirs), 2),
              "sig2osm_median_s": round(statistics.median(ours), 2),
              "ratio": round(statistics.median(theirs) / statistics.median(ours), 1)}
    print(json.dumps(result))
    return 0 if result["ratio"] >= 4 else 1


if __name__ == "__main__":
    sys.exit(main())
