"""`sig2osm pdf georef`: control points found automatically for a plain (not georeferenced) PDF
map, written as a QGIS Georeferencer `.points` file that `pdf extract --gcps` reads.

Two methods, each ending in `consensus.place`: street-name labels matched to OSM streets
(`label_matching`; OSM from a local extract or Overpass, `osm_streets`), or drawn parcel
outlines matched to cadastre parcels by shape and neighbourhood (`parcel_matching`).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.http import HttpClient
from pipeline.kernel.atomic import write_atomic
from pipeline.kernel.errors import OsmDataError, PdfError
from pipeline.kernel.settings import DEFAULT_OVERPASS_URL
from pipeline.pdf.classify import Legend
from pipeline.pdf.consensus import Placement, Problem, place
from pipeline.pdf.extract import clip_to_frame, map_frame, page_shapes
from pipeline.pdf.georef import DEFAULT_MAX_RMS, DEFAULT_MIN_MATCHES, Georeference, crs_label
from pipeline.pdf.label_matching import drawn_lines, label_clues, label_hypotheses
from pipeline.pdf.osm_streets import (
    SearchArea,
    StreetMap,
    metric_crs,
    parse_bbox,
    place_area,
    places_from_file,
    places_from_overpass,
    street_elements_from_file,
    streets_from_elements,
    streets_from_overpass,
)
from pipeline.pdf.parcel_matching import (
    Outlines,
    drawn_outlines,
    parcel_clues,
    parcel_hypotheses,
    read_parcels,
)
from pipeline.pdf.shapes import Shape
from pipeline.pdf.symbols import Label
from pipeline.pdf.transforms import Array, fit_transform

if TYPE_CHECKING:
    from pipeline.overpass import OverpassClient

log = logging.getLogger(__name__)

_LABEL_TOLERANCE_PT = 6.0  # a label's anchor this far (page points) from its street is an outlier
_PARCEL_TOLERANCE_PT = 4.0  # a parcel's centroid this far from its cadastre parcel's
_FLOOR_M = 5.0
_PARCEL_FLOOR_M = 2.0
_COVERAGE_M = 8.0  # a drawn street this near an OSM highway once placed follows it
_COVERAGE_GOOD = 0.8  # below: the map is also tried as drawn in degrees
_COVERAGE_MIN = 0.6  # below: no placement is trusted (measured: right 97–100 %, wrong 22–35 %)


@dataclass(frozen=True)
class GeorefOptions:
    page: int = 1
    transform: str = "auto"  # helmert, unless affine fits clearly better (see consensus)
    max_rms: float = DEFAULT_MAX_RMS
    min_matches: int = DEFAULT_MIN_MATCHES
    legend: Legend = field(default_factory=Legend)
    crs: str | None = None  # CRS of the control points' map coordinates; None: the UTM zone


@dataclass(frozen=True)
class MapData:
    """Where the map data comes from: an OSM extract or Overpass for streets, a cadastre file
    for parcels; the search area from a box, a place name or a profile."""

    osm: Path | None = None  # local extract; None: Overpass
    parcels: Path | None = None  # cadastre parcels: match drawn outlines instead of labels
    near: str | None = None  # place name
    bbox: str | None = None  # "W,S,E,N" in degrees
    overpass_url: str = DEFAULT_OVERPASS_URL
    cache: Path | None = None  # Overpass answers' cache folder


@dataclass(frozen=True)
class Found:
    """A placement and the CRS its map coordinates are in."""

    placement: Placement
    crs: CRS
    area: str  # where the map data came from


def _page(path: Path, options: GeorefOptions
          ) -> tuple[Polygon | None, list[tuple[Shape, BaseGeometry]], list[Label]]:
    """The map frame, and the drawings and labels inside it (page coordinates)."""
    content = page_shapes(path, options.page, options.legend)
    frame = map_frame(content, Georeference("none", None, None), options.legend)
    shapes = clip_to_frame(content.shapes, frame)
    labels = [lab for lab in content.labels if frame is None or frame.contains(lab.point)]
    return frame, shapes, labels


def georeference_by_parcels(path: Path, cadastre: Outlines, crs: CRS, area: str,
                            options: GeorefOptions) -> Found:
    """Control points from the drawn parcel outlines matched to `cadastre`: each polygon style
    of the page with enough whole outlines is tried; the one placing the most parcels wins."""
    where = f"PDF {path} page {options.page}"
    frame, shapes, _labels = _page(path, options)
    styles = drawn_outlines(shapes, frame)
    if not styles:
        raise PdfError(f"{where}: no polygon style with at least 6 whole outlines inside the map "
                       "frame: no drawn parcels to match.")
    best: Placement | None = None
    refusals = []
    for style, drawn in sorted(styles.items(), key=lambda kv: -len(kv[1]))[:4]:
        problem = Problem(f"parcels ({style})", *parcel_clues(drawn, cadastre))
        try:
            found = place(problem, parcel_hypotheses(drawn, cadastre),
                          transform=options.transform, tolerance_points=_PARCEL_TOLERANCE_PT,
                          floor_m=_PARCEL_FLOOR_M, min_independent=options.min_matches,
                          where=where)
        except PdfError as exc:
            refusals.append(str(exc).removeprefix(where + ": "))
            continue
        if best is None or found.independent > best.independent:
            best = found
    if best is None:
        raise PdfError(f"{where}: the drawn outlines match no cadastre parcels of {area} "
                       f"consistently ({len(cadastre)} parcels): " + "; ".join(refusals))
    _report(best, where)
    _check(best, options, where)
    return Found(best, crs, area)


def _check(found: Placement, options: GeorefOptions, where: str) -> None:
    """Refuse a placement less accurate than --max-rms, naming the worst points."""
    residuals = found.transform.residuals
    worst = np.argsort(-residuals)[:3]
    listing = ", ".join(f"{found.matched[i][0]} → {found.matched[i][1]} {residuals[i]:.1f} m"
                        for i in worst)
    if found.rms_m > options.max_rms:
        raise PdfError(f"{where}: the {found.transform.name} transform from {len(residuals)} "
                       f"control points found by {found.method} has an RMS error of "
                       f"{found.rms_m:.1f} m, above the {options.max_rms:g} m limit (--max-rms); "
                       f"largest residuals: {listing}.")


def georeference_by_streets(path: Path, streets: StreetMap, crs: CRS, area: str,
                            options: GeorefOptions) -> Found:
    """Control points from the street-name labels of the page matched to the named streets.
    The placement must make the drawn street network follow OSM's (`street_coverage`); when it
    does not, the page is also tried as a map drawn in degrees of longitude and latitude
    (stretched east-west by 1/cos(latitude), as a north-up GIS project in EPSG:4326 prints it),
    and the placement the network follows better is kept, or none."""
    where = f"PDF {path} page {options.page}"
    if not streets.streets:
        raise PdfError(f"{where}: no named OSM street in {area}; check --near/--bbox or --osm.")
    _frame, shapes, labels = _page(path, options)
    found, refusal = _by_labels(shapes, labels, streets, options, where, 1.0)
    if found is None or found[1] < _COVERAGE_GOOD:
        squeeze = float(np.cos(np.radians(_latitude(streets, crs))))
        other, _ = _by_labels(*_squeezed(shapes, labels, squeeze), streets, options, where,
                              squeeze)
        if other is not None and (found is None or other[1] > found[1]):
            log.info("%s: placed as a map drawn in degrees (stretched east-west)", where)
            found = other
    if found is None:
        raise refusal or PdfError(f"{where}: no placement by street labels.")
    placement, coverage = found
    _report(placement, where)
    if coverage < _COVERAGE_MIN:
        raise PdfError(
            f"{where}: the placement by {len(placement.control_points)} street labels is not "
            f"trusted: once placed, the drawn streets follow OSM streets over {coverage:.0%} of "
            f"their length (at least {_COVERAGE_MIN:.0%} expected). Labels naming other "
            "streets, or a map in a projection that is neither conformal nor in degrees? "
            "Give control points by hand (--gcps).")
    _check(placement, options, where)
    return Found(placement, crs, area)


def _by_labels(shapes: list[tuple[Shape, BaseGeometry]], labels: list[Label],
               streets: StreetMap, options: GeorefOptions, where: str, squeeze: float
               ) -> tuple[tuple[Placement, float] | None, PdfError | None]:
    """The placement by labels of a page whose x was multiplied by `squeeze` (control points
    given back in the page's own coordinates: affine then, a squeeze and a similarity), and
    the share of the drawn streets it makes follow OSM's."""
    clues, targets = label_clues(labels, shapes, streets.streets)
    if len(clues) < 2:
        return None, PdfError(
            f"{where}: {len(clues)} of the page's {len(labels)} text labels name an OSM street "
            f"of the area; at least {options.min_matches} distinct streets are needed. Is the "
            "search area right (--near, --bbox)?")
    try:
        found = place(Problem("street labels", clues, targets),
                      label_hypotheses(clues, targets), transform=options.transform,
                      tolerance_points=_LABEL_TOLERANCE_PT, floor_m=_FLOOR_M,
                      min_independent=options.min_matches, where=where)
    except PdfError as exc:
        return None, exc
    coverage = street_coverage(found, shapes, streets.network)
    log.info("%s: drawn streets follow OSM streets over %.0f %% of their length%s", where,
             100 * coverage, "" if squeeze == 1.0 else " (as a map drawn in degrees)")
    return (found if squeeze == 1.0 else _unsqueezed(found, squeeze, where), coverage), None


def street_coverage(found: Placement, shapes: list[tuple[Shape, BaseGeometry]],
                    network: list[BaseGeometry]) -> float:
    """Share of the drawn streets (the lines of the styles the labels rest on) that follow an
    OSM highway once placed: near one (`_COVERAGE_M`, or 3 page points at the map's scale) and
    running the same way (within 20°). The whole network must agree, not only the labels; a
    street grid placed wrong still has many points near some street, few along one."""
    lines = [g for g, style in drawn_lines(shapes) if style in found.drawings]
    if not lines or not network:
        return 0.0
    stations = np.linspace(0.02, 0.98, 12)[None, :]
    drawn = np.array(lines, dtype=object)[:, None]
    ahead, behind = (shapely.get_coordinates(shapely.line_interpolate_point(
        drawn, stations + step, normalized=True)) for step in (0.01, -0.01))
    placed = found.transform.apply((ahead + behind) / 2)
    heading = found.transform.apply(ahead) - found.transform.apply(behind)
    o, x, y = found.transform.apply(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    scale = float(np.sqrt(abs((x - o)[0] * (y - o)[1] - (x - o)[1] * (y - o)[0])))
    ways = np.array(network, dtype=object)
    point, way = shapely.STRtree(ways).query(shapely.points(placed), predicate="dwithin",
                                             distance=max(_COVERAGE_M, 3.0 * scale))
    at = shapely.line_locate_point(ways[way], shapely.points(placed[point]))
    tangent = (shapely.get_coordinates(shapely.line_interpolate_point(ways[way], at + 1.0))
               - shapely.get_coordinates(shapely.line_interpolate_point(ways[way], at - 1.0)))
    cosine = np.abs((tangent * heading[point]).sum(axis=1)) / np.maximum(
        np.hypot(*tangent.T) * np.hypot(*heading[point].T), 1e-12)
    return float(len(np.unique(point[cosine >= np.cos(np.radians(20.0))])) / len(placed))


def _latitude(streets: StreetMap, crs: CRS) -> float:
    x0, y0, x1, y1 = shapely.total_bounds(np.array(streets.network, dtype=object))
    to_degrees = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return float(to_degrees.transform((x0 + x1) / 2, (y0 + y1) / 2)[1])


def _squeezed(shapes: list[tuple[Shape, BaseGeometry]], labels: list[Label], squeeze: float
              ) -> tuple[list[tuple[Shape, BaseGeometry]], list[Label]]:
    def scale(xy: Array) -> Array:
        return np.asarray(xy) * [squeeze, 1.0]

    out_labels = []
    for label in labels:
        a = np.radians(label.angle)
        direction = np.array([np.cos(a) * squeeze, np.sin(a)])
        out_labels.append(replace(
            label, point=shapely.transform(label.point, scale),
            angle=float(np.degrees(np.arctan2(direction[1], direction[0]))),
            length=label.length * float(np.hypot(*direction))))
    return [(shape, shapely.transform(geom, scale)) for shape, geom in shapes], out_labels


def _unsqueezed(found: Placement, squeeze: float, where: str) -> Placement:
    points = tuple(replace(p, page_xy=(p.page_xy[0] / squeeze, p.page_xy[1]))
                   for p in found.control_points)
    fitted = fit_transform("affine", np.array([p.page_xy for p in points]),
                           np.array([p.map_xy for p in points]), where)
    return replace(found, transform=fitted, control_points=points)


def _report(found: Placement, where: str) -> None:
    log.info("%s: %d control points by %s (%d independent), %s transform, RMS %.2f m", where,
             len(found.control_points), found.method, found.independent, found.transform.name,
             found.rms_m)
    for clue, target, distance in found.outliers:
        log.warning("%s: outlier %s: %.0f m from %s", where, clue, distance, target)


def find_control_points(path: Path, data: MapData, options: GeorefOptions) -> Found:
    """Control points for a plain PDF map: by parcels when a cadastre is given, else by street
    labels against OSM (a local extract, or Overpass around --near/--bbox)."""
    with _overpass(data) as client:
        area = _search_area(data, client)
        if data.parcels is not None:
            cadastre, crs = read_parcels(data.parcels, area.bbox if area else None, options.crs)
            where = data.parcels.name + (f", {area.origin}" if area else "")
            return georeference_by_parcels(path, cadastre, crs, where, options)
        if data.osm is not None:
            elements, extent = street_elements_from_file(data.osm)
            crs = metric_crs(area.bbox if area else extent, options.crs)
            streets = streets_from_elements(elements, area, crs)
            where = data.osm.name + (f", {area.origin}" if area else "")
        else:
            if area is None or client is None:
                raise PdfError(f"PDF {path}: without --osm the streets come from Overpass, which "
                               "needs a search area: give --near PLACE or --bbox W,S,E,N.")
            crs = metric_crs(area.bbox, options.crs)
            streets = streets_from_overpass(client, area, crs)
            where = f"Overpass ({data.overpass_url}), {area.origin}"
        if not streets.streets:
            raise OsmDataError(f"no named OSM street in {where}: the OSM data holds none there "
                               "(a wrong area or a partial extract?).")
        return georeference_by_streets(path, streets, crs, where, options)


def _search_area(data: MapData, client: OverpassClient | None) -> SearchArea | None:
    if data.bbox and data.near:
        raise PdfError("give --near or --bbox, not both.")
    if data.bbox:
        return parse_bbox(data.bbox)
    if not data.near:
        return None
    if data.osm is not None:
        return place_area(data.near, places_from_file(data.osm), data.osm.name)
    assert client is not None
    return place_area(data.near, places_from_overpass(client, data.near),
                      f"Overpass ({data.overpass_url})")


@contextmanager
def _overpass(data: MapData) -> Iterator[OverpassClient | None]:
    """An Overpass client when some data must come from Overpass, else None."""
    needs = data.osm is None and (data.parcels is None or (data.near and not data.bbox))
    if not needs:
        yield None
        return
    from pipeline.overpass import DEFAULT_SETTINGS, OverpassClient

    with HttpClient(data.cache, "pdf georef", DEFAULT_SETTINGS) as http:
        yield OverpassClient(http, data.overpass_url)


def write_points_file(found: Found, target: Path, dpi: float = 72.0) -> Path:
    """A QGIS Georeferencer `.points` file: `#CRS:`, then mapX,mapY,sourceX,sourceY,enable,
    dX,dY,residual (metres) and, ignored by QGIS, the point's name. Source positions are
    pixels of the page rendered at `dpi`, y negative downwards (page points at 72 dpi).
    Outliers follow as disabled points (enable 0) so a person can see and re-enable them."""
    placement = found.placement
    transform = placement.transform
    scale = dpi / 72.0
    buffer = io.StringIO()
    buffer.write(f"#CRS: {crs_label(found.crs)}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["mapX", "mapY", "sourceX", "sourceY", "enable", "dX", "dY", "residual",
                     "name"])
    fitted = transform.apply(np.array([p.page_xy for p in placement.control_points]))
    for point, (fx, fy), (clue, street) in zip(placement.control_points, fitted,
                                               placement.matched, strict=True):
        dx, dy = point.map_xy[0] - fx, point.map_xy[1] - fy
        writer.writerow([f"{point.map_xy[0]:.3f}", f"{point.map_xy[1]:.3f}",
                         f"{point.page_xy[0] * scale:.4f}", f"{point.page_xy[1] * scale:.4f}", 1,
                         f"{dx:.3f}", f"{dy:.3f}", f"{np.hypot(dx, dy):.3f}",
                         f"{clue} → {street}"])
    write_atomic(target, buffer.getvalue())
    return target
