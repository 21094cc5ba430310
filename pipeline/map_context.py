"""The background the maps draw offline: streets (with their names), buildings and water, read
from OSM data already at hand with pyosmium — a local extract, or a small Overpass answer.

`context_from_files` reads OSM files (the run's extract, or the profile's `osm.context`);
`context_from_overpass` asks Overpass once for the same kinds around the layer, through the
run's HTTP client and cache, and reads the answer with the same reader. Both keep what lies in
a box around the map's features, coordinates rounded to 1e-6° (about 10 cm), and stay bounded:
past `MAX_VERTICES` the buildings are left out (streets and water stay), and a box too large
for one polite query asks for main streets and water only, or for nothing. A failed query is
a warning and a map without background, never a failed run; a file the profile names as
`osm.context` that cannot be read is an error naming it (the user asked for that file).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import osmium
import osmium.filter
import shapely

from pipeline.kernel.decisions import geojson_bounds, grown_bbox
from pipeline.kernel.errors import Sig2osmError
from pipeline.kernel.settings import Profile
from pipeline.osm_files import overpass_to_osm_file
from pipeline.progress import progress

log = logging.getLogger(__name__)

BBox = tuple[float, float, float, float]  # west, south, east, north
DIGITS = 6  # about 10 cm: enough for a background, and a third smaller than 7 digits
MARGIN_M = 250.0  # around the map's features
MAX_VERTICES = 400_000  # about 9 MB of page: past it, the buildings are left out
# Overpass: a box up to this many square degrees gets buildings too (a city: 0.1° × 0.1°),
# up to the second main streets and water, larger boxes no query at all.
QUERY_FULL_DEG2 = 0.01
QUERY_MAIN_DEG2 = 1.0
QUERY_TIMEOUT_S = 90
QUERY_MAXSIZE = 64 << 20

STREETS = {"motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link",
           "trunk_link", "primary_link", "secondary_link", "tertiary_link", "unclassified",
           "residential", "living_street", "service", "pedestrian", "road", "busway"}
PATHS = {"footway", "path", "cycleway", "steps", "track", "bridleway"}
MAIN_STREETS = ("motorway", "trunk", "primary", "secondary", "tertiary")
WATER_AREAS = (("natural", "water"), ("waterway", "riverbank"), ("landuse", "reservoir"),
               ("landuse", "basin"))
WATERWAYS = {"river", "stream", "canal", "drain", "ditch"}


@dataclass
class MapContext:
    """What the background draws; coordinates as flat lists [lon, lat, lon, lat, …]."""

    streets: list[tuple[str | None, str, list[float]]] = field(default_factory=list)
    buildings: list[list[float]] = field(default_factory=list)  # outer rings
    water: list[list[list[float]]] = field(default_factory=list)  # areas: rings, outer first
    waterways: list[list[float]] = field(default_factory=list)  # lines
    origin: str = ""  # where it was read, for the log

    @property
    def vertices(self) -> int:
        return (sum(len(s[2]) for s in self.streets) + sum(map(len, self.buildings))
                + sum(len(r) for a in self.water for r in a) + sum(map(len, self.waterways))) // 2

    def to_json(self) -> dict[str, Any]:
        """The page's form: streets as [name, kind, coordinates]."""
        return {"streets": [list(s) for s in self.streets], "buildings": self.buildings,
                "water": self.water, "waterways": self.waterways}

    def counts(self) -> str:
        return (f"{len(self.streets)} streets, {len(self.buildings)} buildings, "
                f"{len(self.water) + len(self.waterways)} water features")


def map_box(geometries: Iterable[Any], margin_m: float = MARGIN_M) -> BBox | None:
    """The bbox of GeoJSON geometries (the map's features) grown by `margin_m` metres."""
    bounds = geojson_bounds(geometries)
    return grown_bbox(bounds, margin_m) if bounds is not None else None


# --- from OSM files ------------------------------------------------------------------------


def context_from_files(files: Sequence[Path], box: BBox) -> MapContext:
    """Streets, buildings and water of OSM files (any format pyosmium reads) in `box`; none
    for a box larger than Overpass would be asked for (a national run: its streets alone would
    not fit in memory, and its reviewer map is in parts)."""
    context = MapContext(origin=", ".join(p.name for p in files))
    west, south, east, north = box
    if (east - west) * (north - south) > QUERY_MAIN_DEG2:
        log.info("map: no background drawn: the run spans %.1f square degrees (more than %s)",
                 (east - west) * (north - south), QUERY_MAIN_DEG2)
        return context
    for path in files:
        _read(path, box, context)
    return _bounded(context)


def _read(path: Path, box: BBox, context: MapContext) -> None:
    kinds = osmium.filter.KeyFilter("highway", "building", "natural", "waterway", "landuse")
    kinds.enable_for(osmium.osm.WAY)
    processor = (osmium.FileProcessor(str(path))
                 .with_locations()
                 .with_areas(osmium.filter.TagFilter(*WATER_AREAS))
                 .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY | osmium.osm.AREA))
                 .with_filter(kinds))
    area = shapely.box(*box)
    wkb = osmium.geom.WKBFactory()
    obj: Any
    try:
        for obj in progress(processor, f"background from {path.name}", unit=" objects"):
            if obj.is_area():
                if not obj.from_way():  # a closed water way was taken as a way
                    _water_area(shapely.from_wkb(wkb.create_multipolygon(obj)), area, context)
                continue
            _way(obj, area, context)
    except RuntimeError as exc:
        raise ContextError(f"OSM file {path}: cannot be read for the map background ({exc})"
                           ) from exc


def _way(way: Any, area: shapely.Geometry, context: MapContext) -> None:
    tags = way.tags
    try:
        coords = [(n.lon, n.lat) for n in way.nodes]
    except osmium.InvalidLocationError:
        return  # nodes outside the extract: not drawn
    if len(coords) < 2 or not area.intersects(shapely.linestrings(coords)):
        return
    flat = _flat(coords)
    closed = coords[0] == coords[-1] and len(coords) >= 4
    highway = tags.get("highway")
    if highway in STREETS or highway in PATHS:
        context.streets.append((tags.get("name"), "path" if highway in PATHS else highway, flat))
    elif "building" in tags and closed:
        context.buildings.append(flat)
    elif closed and any(tags.get(k) == v for k, v in WATER_AREAS):
        context.water.append([flat])
    elif tags.get("waterway") in WATERWAYS:
        context.waterways.append(flat)


def _water_area(geometry: shapely.Geometry, area: shapely.Geometry, context: MapContext) -> None:
    for polygon in getattr(geometry, "geoms", [geometry]):
        if polygon.intersects(area):
            context.water.append([_flat(polygon.exterior.coords)] +
                                 [_flat(ring.coords) for ring in polygon.interiors])


def _flat(coords: Iterable[Sequence[float]]) -> list[float]:
    return [round(v, DIGITS) for point in coords for v in point[:2]]


def _bounded(context: MapContext) -> MapContext:
    if context.vertices > MAX_VERTICES and context.buildings:
        log.warning("map: %d buildings left out of the background (more than %d points in "
                    "all); streets and water are drawn", len(context.buildings), MAX_VERTICES)
        context.buildings = []
    return context


class ContextError(Sig2osmError, ValueError):
    """An OSM file of the background cannot be read: the profile's `osm.context` names a file
    that is missing or not OSM data (an Overpass background that fails is only a warning)."""

    exit_code = 4


# --- from Overpass -------------------------------------------------------------------------


def context_query(box: BBox) -> str | None:
    """Overpass QL for the background in `box` (None: too large an area to ask)."""
    west, south, east, north = box
    size = (east - west) * (north - south)
    if size > QUERY_MAIN_DEG2:
        return None
    where = f"({south:.6f},{west:.6f},{north:.6f},{east:.6f})"
    streets = STREETS | PATHS if size <= QUERY_FULL_DEG2 else set(MAIN_STREETS)
    lines = [f"[out:json][timeout:{QUERY_TIMEOUT_S}][maxsize:{QUERY_MAXSIZE}];", "(",
             f'  way["highway"~"^({"|".join(sorted(streets))})$"]{where};']
    if size <= QUERY_FULL_DEG2:
        lines.append(f'  way["building"]{where};')
    lines += [f'  nwr["{k}"="{v}"]{where};' for k, v in WATER_AREAS]
    lines += [f'  way["waterway"~"^({"|".join(sorted(WATERWAYS))})$"]{where};',
              ");", "out body qt;", ">;", "out skel qt;"]
    return "\n".join(lines) + "\n"


def context_from_overpass(profile: Profile, box: BBox, cache_dir: Path, refresh: bool,
                          ends_at: float) -> MapContext | None:
    """The background from one Overpass query around `box` (cached like the candidates'), or
    None with a warning when the area is too large or the query fails."""
    from pipeline.overpass import DEFAULT_SETTINGS, ask_overpass  # requests: on demand

    query = context_query(box)
    if query is None:
        log.warning("map: the layer spreads over more than %g square degrees: no background "
                    "asked from Overpass", QUERY_MAIN_DEG2)
        return None
    url = profile.osm.overpass_url
    settings = replace(DEFAULT_SETTINGS, ends_at=ends_at)
    try:
        payload = ask_overpass(profile, query, cache_dir, refresh, settings=settings)
        with tempfile.TemporaryDirectory(prefix="sig2osm-context-") as tmp:
            path = overpass_to_osm_file(payload, Path(tmp) / "context.osm.pbf")
            context = context_from_files([path], box)
    except Sig2osmError as exc:
        log.warning("map: no background from Overpass at %s: %s", url, exc)
        return None
    context.origin = f"Overpass at {url}"
    return context
