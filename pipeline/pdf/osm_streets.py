"""OSM street names and places for georeferencing a PDF map by its labels.

The highway ways come from a local extract (libosmium; a recorded Overpass answer through
`read_osm_file`) or from Overpass (one query through the shared `OverpassClient`); both end in
`streets_from_elements`, which groups the named ways of the search area into streets (ways of
one name within 200 m of each other) in a metric CRS, and keeps every highway way, named or
not, as the network a placed map must follow. The search area is a box in degrees: `--bbox`, a
place name (`--near`) looked up among the `place=*` nodes and administrative boundaries of the
same data, or a profile's `osm.bounds`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from pipeline.kernel.errors import OsmDataError, PdfError
from pipeline.kernel.osm import OsmElement
from pipeline.osm_files import (
    is_overpass_answer,
    osm_data_from_overpass_json,
    read_osm_file,
)
from pipeline.pdf.georef import metric_for

if TYPE_CHECKING:
    from pipeline.overpass import OverpassClient

log = logging.getLogger(__name__)

BBox = tuple[float, float, float, float]  # west, south, east, north (degrees)
STREET_KINDS = {"highway": "*"}
PLACE_KINDS = [{"place": "*"}, {"boundary": "administrative"}]
NAME_KEYS = ("name", "alt_name", "official_name", "short_name", "old_name", "loc_name", "name:fr")
_SAME_STREET_M = 200.0  # ways of one name closer than this are one street
# How far a place node's area reaches, by place=* value (a boundary gives its own outline).
_PLACE_RADIUS_M = {"city": 8000.0, "town": 4000.0, "village": 2000.0, "suburb": 1500.0,
                   "quarter": 1000.0, "neighbourhood": 700.0, "hamlet": 700.0}
_PLACE_RANK = ("city", "town", "village", "suburb", "quarter", "neighbourhood", "hamlet")


@dataclass(frozen=True)
class Street:
    """The ways of one name that lie together, in the metric CRS of the search."""

    name: str
    names: tuple[str, ...]  # every name the ways carry (name, alt_name, ref …), for matching
    geometry: BaseGeometry  # LineString or MultiLineString, metres
    ways: tuple[str, ...]  # way/123 …


@dataclass(frozen=True)
class SearchArea:
    bbox: BBox
    origin: str  # said in the log and the report: "--bbox", "place Bondy (node/123)" …


def parse_bbox(text: str) -> SearchArea:
    """`W,S,E,N` in degrees."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError as exc:
        raise PdfError(f"--bbox {text!r}: expected four numbers W,S,E,N in degrees.") from exc
    return area_from_box(values, "--bbox")


def area_from_box(values: Sequence[float], origin: str) -> SearchArea:
    if len(values) != 4 or not all(np.isfinite(values)):
        raise PdfError(f"{origin} {list(values)!r}: expected four numbers W,S,E,N in degrees.")
    west, south, east, north = (float(v) for v in values)
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise PdfError(f"{origin} {west:g},{south:g},{east:g},{north:g}: expected west < east "
                       "and south < north, in degrees (longitude, latitude).")
    return SearchArea((west, south, east, north), origin)


def metric_crs(bbox: BBox, wanted: str | None = None) -> CRS:
    """`wanted` (a projected CRS: EPSG:2154 for French GIS staff), else the UTM zone of the
    box's centre."""
    if wanted:
        try:
            crs = CRS.from_user_input(wanted)
        except CRSError as exc:
            raise PdfError(f"--crs {wanted!r}: unknown coordinate system ({exc}).") from exc
        if not crs.is_projected:
            raise PdfError(f"--crs {wanted!r} is not projected; expected a CRS in metres, e.g. "
                           "EPSG:2154, so residuals are metres.")
        return crs
    lon, lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return metric_for(CRS.from_epsg(4326), lon, lat)


def place_area(name: str, places: Iterable[OsmElement], origin: str) -> SearchArea:
    """The area of the place called `name` (among `places`, read from `origin`): an
    administrative boundary's box, else a box around the most important `place=*` node of that
    name. Several equal candidates are an error listing them (give --bbox)."""
    wanted = " ".join(name.casefold().split())
    found = [p for p in places if p.geometry is not None and any(
        " ".join(str(p.tags.get(k, "")).casefold().split()) == wanted
        for k in ("name", "name:fr", "official_name"))]
    boundaries = [p for p in found if p.tags.get("boundary") == "administrative"
                  and _geometry(p).geom_type in ("Polygon", "MultiPolygon")]
    if boundaries:
        best = min(boundaries, key=lambda p: (_admin_level(p), -_geometry(p).area))
        same = [p for p in boundaries if _admin_level(p) == _admin_level(best)]
        if len(same) == 1:
            return area_from_box(_geometry(best).bounds,
                                 f"boundary {best.key} ({best.tags.get('name')})")
        found = same
    nodes = [p for p in found if p.type == "node" and p.tags.get("place") in _PLACE_RANK]
    if not nodes:
        raise PdfError(f"--near {name!r}: no place or administrative boundary of that name in "
                       f"{origin}; give --bbox W,S,E,N instead.")
    rank = min(_PLACE_RANK.index(p.tags["place"]) for p in nodes)
    nodes = [p for p in nodes if _PLACE_RANK.index(p.tags["place"]) == rank]
    if len(nodes) > 1 or (len(found) > 1 and not nodes):
        listing = ", ".join(f"{p.key} ({p.tags.get('place') or 'boundary'} at "
                            f"{_geometry(p).centroid.y:.4f}, {_geometry(p).centroid.x:.4f})"
                            for p in (nodes or found)[:6])
        raise PdfError(f"--near {name!r} names several places in {origin}: {listing}; give "
                       "--bbox W,S,E,N of the one you mean.")
    node, point = nodes[0], _geometry(nodes[0])
    return area_from_box(_around(point.x, point.y,
                                 _PLACE_RADIUS_M[node.tags["place"]]),
                         f"place={node.tags['place']} {node.key} ({node.tags.get('name')})")


def _geometry(element: OsmElement) -> BaseGeometry:
    """The geometry of a place kept by `place_area` (those without one are left out)."""
    assert element.geometry is not None
    return element.geometry


def _admin_level(element: OsmElement) -> int:
    try:
        return int(element.tags.get("admin_level", "99"))
    except ValueError:
        return 99


def _around(lon: float, lat: float, radius_m: float) -> BBox:
    dlat = radius_m / 111_320.0
    dlon = radius_m / (111_320.0 * max(np.cos(np.radians(lat)), 0.01))
    return (lon - dlon, lat - dlat, lon + dlon, lat + dlat)


@dataclass(frozen=True)
class StreetMap:
    """The named streets of the search area, and every highway way of it (named or not): what
    the drawn street network of a placed map must follow."""

    streets: list[Street]
    network: list[BaseGeometry]  # metric


def streets_from_elements(elements: Iterable[OsmElement], area: SearchArea | None,
                          crs: CRS) -> StreetMap:
    """Highway ways inside `area` (all when None), in `crs`; the named ones grouped into
    streets."""
    window = box(*area.bbox) if area else None
    to_metric = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    by_name: dict[str, list[tuple[OsmElement, BaseGeometry]]] = {}
    network = []
    for element in elements:
        if element.type != "way" or "highway" not in element.tags:
            continue
        geom = element.geometry
        if geom is None:  # a way cut by the extract's border
            continue
        if geom.geom_type == "Polygon":
            geom = geom.exterior
        if geom.geom_type != "LineString" or (window is not None and not window.intersects(geom)):
            continue
        xy = np.asarray(geom.coords)
        metric = shapely.linestrings(np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
        network.append(metric)
        if "name" in element.tags:
            by_name.setdefault(element.tags["name"], []).append((element, metric))
    streets = [street for name, ways in sorted(by_name.items())
               for street in _group(name, ways)]
    log.info("OSM streets: %d named streets (%d ways; %d highway ways in all) in %s",
             len(streets), sum(len(s.ways) for s in streets), len(network),
             area.origin if area else "the whole OSM data")
    return StreetMap(streets, network)


def _group(name: str, ways: list[tuple[OsmElement, BaseGeometry]]) -> list[Street]:
    """Ways of one name within 200 m of each other are one street (a name repeated in two
    districts is two streets)."""
    geoms = np.array([g for _, g in ways], dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin",
                                               distance=_SAME_STREET_M)
    near = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(ways), len(ways)))
    _, group_of = connected_components(near, directed=False)
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(group_of.tolist()):
        groups.setdefault(g, []).append(i)
    streets = []
    for members in groups.values():
        names = {name}
        for i in members:
            tags = ways[i][0].tags
            names.update(str(tags[k]) for k in NAME_KEYS if tags.get(k))
            if tags.get("ref"):
                names.add(f"{tags['ref']} {name}")
        geometry = shapely.line_merge(shapely.union_all(geoms[members]))
        streets.append(Street(name, tuple(sorted(names)), geometry,
                              tuple(ways[i][0].key for i in members)))
    return streets


def street_elements_from_file(path: Path) -> tuple[list[OsmElement], BBox]:
    """The highway ways of a local file and the box its data covers (degrees).

    An extract is read with libosmium's own filter and node locations (a second, for a city),
    without the context of referred objects that a run's fetch keeps; a recorded Overpass
    answer goes through the run's reader."""
    if not path.is_file():
        raise OsmDataError(f"OSM file {path}: no such file.")
    if is_overpass_answer(path):
        elements = list(read_osm_file(path, STREET_KINDS, None).elements)
    else:
        elements = _highways(path)
    if not elements:
        raise OsmDataError(f"OSM file {path}: no highway at all; expected an extract of the "
                           "map's area.")
    extent = shapely.total_bounds(np.array([e.geometry for e in elements], dtype=object))
    return elements, (float(extent[0]), float(extent[1]), float(extent[2]), float(extent[3]))


def _highways(path: Path) -> list[OsmElement]:
    import osmium
    import osmium.filter
    import osmium.osm

    found = []
    try:
        processor = (osmium.FileProcessor(str(path)).with_locations()
                     .with_filter(osmium.filter.KeyFilter("highway")))
        for obj in processor:
            if not isinstance(obj, osmium.osm.Way):
                continue
            try:
                coords = [(n.lon, n.lat) for n in obj.nodes]
            except osmium.InvalidLocationError:
                continue  # a way cut by the extract's border
            if len(coords) >= 2:
                found.append(OsmElement("way", obj.id, obj.version, dict(obj.tags),
                                        shapely.linestrings(coords)))
    except RuntimeError as exc:  # libosmium's errors for unreadable files
        raise OsmDataError(f"OSM file {path}: not readable as OSM data ({exc}).") from exc
    return found


def places_from_file(path: Path) -> list[OsmElement]:
    return list(read_osm_file(path, PLACE_KINDS, None).elements)


def _ql_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def street_query(bbox: BBox, timeout: int = 180) -> str:
    """Overpass QL: the highway ways of a box with their nodes and versions (the answer is read
    as an OSM file, like a run's candidates)."""
    west, south, east, north = bbox
    return (f"[out:json][timeout:{timeout}];\n"
            f'way["highway"]({south:.7f},{west:.7f},{north:.7f},{east:.7f});\n'
            "(._;>;);\nout meta;\n")


def place_query(name: str, timeout: int = 60) -> str:
    """Overpass QL: the places and administrative boundaries called `name`."""
    text = _ql_text(name)
    return (f"[out:json][timeout:{timeout}];\n"
            f'(node["place"]["name"="{text}"];'
            f'relation["boundary"="administrative"]["name"="{text}"];);\n'
            "(._;>;);\nout meta;\n")


def streets_from_overpass(client: OverpassClient, area: SearchArea, crs: CRS) -> StreetMap:
    answer = client.run(street_query(area.bbox))
    data = osm_data_from_overpass_json(answer.payload, STREET_KINDS, None, box(*area.bbox),
                                       f"Overpass in {area.origin}")
    return streets_from_elements(data.elements, area, crs)


def places_from_overpass(client: OverpassClient, name: str) -> list[OsmElement]:
    answer = client.run(place_query(name))
    return list(osm_data_from_overpass_json(answer.payload, PLACE_KINDS, None, None, "").elements)
