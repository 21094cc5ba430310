"""Rennes street-name table against OSM streets, by name only: `python -m bench.conflation_rennes`.

`rennes-voies-genre/in/toponymes.csv` (1 904 rows, ';'-separated, no header, no geometry) is the
source, read by the real ingest step (`source.geometry: none`, `source.columns`).
`in/rennes.geojson` is a JOSM GeoJSON export of Rennes' named highways (2013): it has no OSM ids
or versions, so it cannot yield change files; each of its lines becomes a way with a made-up id
(its position) so the name matcher can run on it. Prints decision counts, how many ways the
matched rows cover, and a sample of unmatched and reviewed rows with their reasons.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

import shapely
from shapely.geometry import shape

from conflation.matching import conflate
from pipeline.ingest import ingest
from pipeline.kernel.decisions import MODIFY, REVIEW, SKIP, UNCHANGED, Decision, count_decisions
from pipeline.kernel.osm import OsmData, OsmElement
from pipeline.profile import load_profile
from pipeline.stages import run_facts

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "rennes-voies-genre" / "in"
COLUMNS = ["insee", "id", "code", "type", "label", "name", "article", "first_name", "and",
           "first_name_2", "particle", "surname", "gender", "wikipedia"]
PROFILE = f"""name: rennes-streets
source:
  path: {DATA / "toponymes.csv"}
  id: id
  geometry: none
  columns: {json.dumps(COLUMNS)}
osm:
  match: {{highway: "*"}}
tags:
  name: "{{name}}"
  ref:bench: "{{id}}"
match:
  ref: ref:bench
"""


def osm_from_josm_geojson(path: Path) -> OsmData:
    """The export's lines and areas as ways (ids = positions, version 1); points are dropped."""
    data = json.loads(path.read_text(encoding="utf-8"))
    elements = []
    for i, feature in enumerate(data["features"], start=1):
        geometry = shape(feature["geometry"])
        if geometry.geom_type == "Point":
            continue
        elements.append(OsmElement("way", i, 1, dict(feature["properties"]), geometry))
    coverage = shapely.box(*shapely.total_bounds([e.geometry for e in elements])).buffer(0.001)
    return OsmData(tuple(elements), coverage, "bbox of rennes.geojson")


REVIEW_KINDS = (("OSM streets are named", "one name, several streets apart"),
                ("all name the OSM street", "several rows name one street"),
                ("a duplicate row with a typo", "near name of another row's street"),
                ("values differ", "values differ"),
                ("no OSM street is named exactly", "near name only"))


def _kind(reason: str) -> str:
    return next((label for text, label in REVIEW_KINDS if text in reason), reason[:50])


def summarise(decisions: list[Decision]) -> dict[str, object]:
    rows = [d for d in decisions if d.decision != "missing"]
    matched = [d for d in rows if d.decision in (MODIFY, UNCHANGED)]
    ways = sum(1 + len(d.extra_osm) for d in matched)
    kinds = Counter(_kind(d.reason) for d in rows if d.decision == REVIEW)
    return {"rows": len(rows), "counts": {k: v for k, v in count_decisions(rows).items() if v},
            "ways_of_matched_rows": ways,
            "rows_matching_several_ways": sum(1 for d in matched if d.extra_osm),
            "review_kinds": dict(kinds.most_common())}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sig2osm-rennes-") as tmp:
        profile_path = Path(tmp) / "rennes.yml"
        profile_path.write_text(PROFILE, encoding="utf-8")
        profile = load_profile(profile_path)
    assert profile.source.path is not None
    layer = ingest(profile, profile.source.path)
    osm = osm_from_josm_geojson(DATA / "rennes.geojson")
    decisions = conflate(layer.features, osm, layer.metric_crs, profile, run_facts(profile, layer))
    print(json.dumps(summarise(decisions), ensure_ascii=False, indent=1))
    kind_of = {f.source_id: str(f.attributes.get("type")) for f in layer.features}
    skipped = Counter(kind_of[d.source_id or ""] for d in decisions if d.decision == SKIP)
    print("skipped rows by street type:", dict(skipped.most_common()))
    sample = random.Random(4)
    for kind in (SKIP, REVIEW):
        chosen = [d for d in decisions if d.decision == kind]
        print(f"-- sample of {kind} ({len(chosen)}):")
        for d in sample.sample(chosen, min(10, len(chosen))):
            print(f"  {d.source_id}: {d.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
