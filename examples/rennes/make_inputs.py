"""Inputs of `breton-street-names.yml`, derived from ../shared/data (run by `make demo` and the
tests; nothing here is copied into the project):

- `rennes-streets-2013.osm`: Rennes' named highways as OSM data. `rennes-voies-genre/in/
  rennes.geojson` is a JOSM GeoJSON export (2013) of them: it keeps tags and geometry but no ids
  or versions. Every distinct position becomes a node (so ways that meet share their node, and a
  tagged point such as a crossing is that node), every line a way; ids are counters from 1,
  every version 1. A stand-in for an extract of the time: the ways, names and junctions are
  real, the ids are not.
- `kerofis-roazhon.csv`: the rows of the Kerofis table (Office public de la langue bretonne)
  for Rennes (INSEE 35238), with the header.

Usage: python examples/rennes/make_inputs.py [OUT_FOLDER]   (default: out/rennes)
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import osmium

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
STREETS = DATA / "rennes-voies-genre" / "in" / "rennes.geojson"
KEROFIS = DATA / "bretagne-kerofis" / "kerofis_lechanvadurezh_20190501.csv"
RENNES_INSEE = "35238"


def write_osm(geojson: Path, target: Path) -> None:
    features = json.loads(geojson.read_text(encoding="utf-8"))["features"]
    node_ids: dict[tuple[float, float], int] = {}
    node_tags: dict[int, dict[str, str]] = {}
    ways: list[tuple[list[int], dict[str, str]]] = []

    def node(coords: list[float]) -> int:
        position = (round(coords[0], 7), round(coords[1], 7))
        return node_ids.setdefault(position, len(node_ids) + 1)

    for feature in features:
        geometry, tags = feature["geometry"], _text_tags(feature["properties"])
        if geometry["type"] == "Point":
            node_tags.setdefault(node(geometry["coordinates"]), {}).update(tags)
        elif geometry["type"] == "LineString":
            ways.append(([node(c) for c in geometry["coordinates"]], tags))
    header = osmium.io.Header()
    lons, lats = [p[0] for p in node_ids], [p[1] for p in node_ids]
    header.add_box(osmium.osm.Box(min(lons), min(lats), max(lons), max(lats)))
    target.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(target), header=header)
    try:
        for (lon, lat), ident in node_ids.items():
            writer.add_node(osmium.osm.mutable.Node(id=ident, version=1, location=(lon, lat),
                                                    tags=node_tags.get(ident, {})))
        for ident, (refs, tags) in enumerate(ways, 1):
            writer.add_way(osmium.osm.mutable.Way(id=ident, version=1, nodes=refs, tags=tags))
    finally:
        writer.close()


def _text_tags(properties: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in properties.items() if v is not None and str(v) != ""}


def write_kerofis_subset(table: Path, target: Path) -> None:
    with table.open(encoding="utf-8", newline="") as source:
        rows = list(csv.reader(source))
    insee = rows[0].index("insee")
    chosen = [rows[0]] + [row for row in rows[1:] if row[insee] == RENNES_INSEE]
    with target.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(chosen)


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "out" / "rennes"
    folder.mkdir(parents=True, exist_ok=True)
    write_osm(STREETS, folder / "rennes-streets-2013.osm")
    write_kerofis_subset(KEROFIS, folder / "kerofis-roazhon.csv")
    print(f"written: {folder / 'rennes-streets-2013.osm'}, {folder / 'kerofis-roazhon.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
