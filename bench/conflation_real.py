"""Real pairs from ../shared/data: `python -m bench.conflation_real`.

Grenoble meters and Bondy meters (the example profiles), and Bondy BAN addresses against OSM
addresses (nodes and buildings with addr:*) matched on house number + street name. Prints the
decision counts and, for matches, the distance spread.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from pipeline.kernel.decisions import count_decisions
from pipeline.profile import load_profile
from pipeline.runner import run_stages
from pipeline.stages import RunContext

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BAN = """name: bondy-ban
source:
  path: {data}/bondy/municipal/ban_adresses_bondy.csv
  id: id
  x: lon
  y: lat
  crs: "EPSG:4326"
osm:
  match: {{"addr:housenumber": "*"}}
  file: {data}/bondy/osm/map.osm
tags:
  addr:housenumber: "{{numero}}{{rep?}}"
  addr:street: "{{nom_voie}}"
match:
  distance: 40
  labels: [addr:housenumber, addr:street]
"""


def conflate_profile(profile: Path, out: Path) -> str:
    ctx = RunContext(load_profile(profile), out)
    decisions = run_stages(ctx, ["conflate"])["conflate"]
    counts = {k: v for k, v in count_decisions(decisions).items() if v}
    dists = [d.distance_m for d in decisions
             if d.decision in ("modify", "unchanged") and d.distance_m is not None]
    spread = (f"; match distance median {np.median(dists):.1f} m, max {max(dists):.1f} m"
              if dists else "")
    return f"{ctx.profile.name}: {counts}{spread}"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sig2osm-real-") as tmp:
        out = Path(tmp)
        for profile in ("grenoble/parking-meters.yml", "bondy/parking-meters.yml"):
            print(conflate_profile(ROOT / "examples" / profile, out))
        ban = out / "ban.yml"
        ban.write_text(BAN.format(data=DATA))
        print(conflate_profile(ban, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
