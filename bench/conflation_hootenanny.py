"""Hootenanny's POI and POI-to-polygon conflation cases: `python -m bench.conflation_hootenanny`.

Each case of `hootenanny/test-files/cases/*/unifying/{poi,poi-polygon}/` has `Input1.osm`
(reference: our OSM side), `Input2.osm` (secondary: our source, its tagged objects read as
features) and `Expected.osm`, Hootenanny's merged output. What Hootenanny decided for each
Input2 object is read back from `Expected.osm`:

- `review`: a `type=review` relation names it;
- `match`: it is gone, merged into a reference object (or its uuid joins a reference one's);
- `separate`: it is still there on its own (our `create`).

sig2osm's outcome per source feature: `modify`/`unchanged` → match (with its OSM object),
`review` → review, `create` → separate. Tag merging is set to keep-osm for every key so that
only matching is compared (Hootenanny merges tags by its own rules). Run with the default
radius (30 m) and a wide one (150 m, Hootenanny's radii come from `error:circular`).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from conflation.matching import conflate
from pipeline.ingest import SourceFeature
from pipeline.kernel.decisions import Decision
from pipeline.kernel.osm import OsmData, OsmElement
from pipeline.kernel.settings import MatchConfig, OsmConfig, Profile, SourceConfig

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT.parent / "shared" / "data" / "hootenanny" / "test-files" / "cases"
META = ("uuid", "REF1", "REF2", "error:circular", "source", "hoot:", "note", "language",
        "addr:language", "created_by")
LINEAR = ("highway", "barrier", "railway", "waterway", "power", "route")


@dataclass
class OsmFile:
    """A small OSM XML file: its tagged objects (all tags) and uuids by object."""

    elements: list[OsmElement] = field(default_factory=list)
    all_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> every tag
    reviews: list[set[str]] = field(default_factory=list)  # reviewee keys of each review


def _tags(node: ET.Element) -> dict[str, str]:
    return {t.attrib["k"]: t.attrib["v"] for t in node.findall("tag")}


def _plain(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not any(k == m or k.startswith(m) for m in META
                                                      if m.endswith(":") or k == m)}


def read_osm(path: Path) -> OsmFile:
    root = ET.parse(path).getroot()
    result = OsmFile()
    nodes = {int(n.attrib["id"]): (float(n.attrib["lon"]), float(n.attrib["lat"]))
             for n in root.findall("node")}
    lines: dict[int, LineString] = {}
    for kind in ("node", "way", "relation"):
        for item in root.findall(kind):
            tags, oid = _tags(item), int(item.attrib["id"])
            key = f"{kind}/{oid}"
            if kind == "relation" and tags.get("type") == "review":
                result.reviews.append({f"{m.attrib['type']}/{m.attrib['ref']}"
                                       for m in item.findall("member")})
                continue
            geometry = _geometry(kind, item, tags, nodes, lines)
            if kind == "way" and isinstance(geometry, (LineString, Polygon)):
                lines[oid] = LineString(geometry.exterior.coords if isinstance(geometry, Polygon)
                                        else geometry.coords)
            result.all_tags[key] = tags
            if geometry is not None and _plain(tags):
                result.elements.append(OsmElement(kind, oid, 1, _plain(tags), geometry))
    return result


def _geometry(kind: str, item: ET.Element, tags: dict[str, str],
              nodes: dict[int, tuple[float, float]],
              lines: dict[int, LineString]) -> BaseGeometry | None:
    if kind == "node":
        return Point(nodes[int(item.attrib["id"])])
    if kind == "way":
        coords = [nodes[int(n.attrib["ref"])] for n in item.findall("nd")
                  if int(n.attrib["ref"]) in nodes]
        if len(coords) < 2:
            return None
        closed = len(coords) >= 4 and coords[0] == coords[-1]
        if closed and tags.get("area") != "no" and not any(k in tags for k in LINEAR):
            return Polygon(coords)
        return LineString(coords)
    outers = [lines[int(m.attrib["ref"])] for m in item.findall("member")
              if m.attrib["type"] == "way" and m.attrib.get("role") != "inner"
              and int(m.attrib["ref"]) in lines]
    polygons = shapely.get_parts(shapely.polygonize(outers))
    return shapely.union_all(polygons) if len(polygons) else None


def expected_outcomes(input1: OsmFile, input2: OsmFile, expected: OsmFile) -> dict[str, str]:
    """Hootenanny's outcome for each tagged Input2 object: `match:<Input1 key>` (or `match`
    when the partner cannot be told), `review` or `separate`.

    Hootenanny renumbers objects, so they are recognised by place: an Input2 object still at
    its place in Expected.osm with its own tags was kept (separate, or reviewed when a review
    relation names it); one that is gone was merged into the reference object that now carries
    its tags."""
    reviewed = set().union(*expected.reviews) if expected.reviews else set()
    image_of_1 = {e.key: _images(e, expected) for e in input1.elements}
    outcomes = {}
    for element in input2.elements:
        images = [x for x in _images(element, expected)
                  if element.tags.items() <= x.tags.items()]
        partners = [k for k, xs in image_of_1.items()
                    if any(x.key in {i.key for i in images} for x in xs)]
        if images and partners:
            outcomes[element.key] = f"match:{partners[0]}"  # merged in place
        elif images:
            outcomes[element.key] = ("review" if any(x.key in reviewed for x in images)
                                     else "separate")
        else:
            outcomes[element.key] = _merged_into(element, image_of_1)
    return outcomes


def _images(element: OsmElement, expected: OsmFile) -> list[OsmElement]:
    """Expected objects with the same geometry as `element` (to 1e-6 degree)."""
    return [x for x in expected.elements if x.geometry.geom_type == element.geometry.geom_type
            and shapely.hausdorff_distance(x.geometry, element.geometry) < 1e-6]


def _merged_into(element: OsmElement, image_of_1: dict[str, list[OsmElement]]) -> str:
    """The Input1 object whose image now carries `element`'s name, else most of its tags
    (`match` alone when that is not one object)."""
    name = element.tags.get("name")
    named = [k for k, xs in image_of_1.items() if name and any(
        name in x.tags.get("name", "").split(";") or name == x.tags.get("alt_name")
        for x in xs)]
    if len(named) == 1:
        return f"match:{named[0]}"
    shares = {k: max((sum(1 for t, v in element.tags.items() if x.tags.get(t) == v)
                      for x in xs), default=0) for k, xs in image_of_1.items()}
    top = max(shares.values(), default=0)
    best = [k for k, n in shares.items() if n == top]
    return f"match:{best[0]}" if top and len(best) == 1 else "match"


def ours(decision: Decision) -> str:
    if decision.decision in ("modify", "unchanged"):
        return f"match:{decision.osm_key}"
    return {"review": "review", "create": "separate"}.get(decision.decision, decision.decision)


def run_case(folder: Path, distance: float) -> tuple[dict[str, str], dict[str, str]]:
    input1, input2 = read_osm(folder / "Input1.osm"), read_osm(folder / "Input2.osm")
    expected = read_osm(folder / "Expected.osm")
    geometries = [e.geometry for e in input1.elements + input2.elements]
    coverage = shapely.box(*shapely.total_bounds(geometries)).buffer(0.01)
    centre = coverage.centroid
    zone = int((centre.x + 180) // 6) + 1
    metric = f"EPSG:{(32600 if centre.y >= 0 else 32700) + zone}"
    sources = [SourceFeature(e.key, e.geometry, dict(e.tags), {}) for e in input2.elements]
    keys = {k for e in input1.elements + input2.elements for k in e.tags}
    settings = Profile(name="hootenanny", source=SourceConfig(id="id"),
                       osm=OsmConfig(match={"name": "*"}), tags={},
                       match=MatchConfig(distance=distance, policies=dict.fromkeys(keys, "keep-osm")))
    decisions = conflate(sources, OsmData(tuple(input1.elements), coverage, "case"), metric,
                         settings)
    got = {d.source_id: ours(d) for d in decisions if d.source_id is not None}
    return expected_outcomes(input1, input2, expected), got


def _agree(want: str, got: str) -> bool:
    if want == "match":  # merged, partner unknown
        return got.startswith("match")
    return want == got


def main() -> int:
    folders = sorted(p.parent for kind in ("poi", "poi-polygon")
                     for p in CASES.glob(f"*/unifying/{kind}/*/Expected.osm"))
    totals: dict[float, Counter[str]] = {30.0: Counter(), 150.0: Counter()}
    confusion: dict[float, Counter[tuple[str, str]]] = {d: Counter() for d in totals}
    for folder in folders:
        readme = folder / "README.txt"
        about = " ".join(readme.read_text(errors="replace").split())[:110] if readme.is_file() \
            else ""
        results = {d: run_case(folder, d) for d in totals}
        want = results[30.0][0]
        line = []
        for distance, (_, got) in results.items():
            agree = sum(_agree(w, got.get(k, "?")) for k, w in want.items())
            known = len(want)
            totals[distance].update(agree=agree, known=known)
            confusion[distance].update((_category(w), _category(got.get(k, "?")))
                                       for k, w in want.items())
            line.append(f"{distance:g} m {agree}/{known}")
        print(f"{folder.relative_to(CASES)}: " + ", ".join(line))
        print(f"   hoot: {_short(want)} | ours 30 m: {_short(results[30.0][1])} | ours 150 m: "
              f"{_short(results[150.0][1])}")
        print(f"   {about}")
    for distance, total in totals.items():
        print(f"agreement at {distance:g} m: {total['agree']}/{total['known']} Input2 objects "
              f"in {len(folders)} cases; (Hootenanny, sig2osm) outcomes:")
        for (expected, outcome), n in sorted(confusion[distance].items()):
            print(f"   {expected:>8} → {outcome:<8} {n}")
    return 0


def _category(outcome: str) -> str:
    return outcome.split(":")[0]


def _short(outcomes: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))


if __name__ == "__main__":
    sys.exit(main())
