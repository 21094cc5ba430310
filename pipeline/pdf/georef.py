"""Georeferencing a PDF page: from the ISO 32000 geospatial dictionaries (/VP /Measure /GEO), the
OGC best-practice / TerraGo encoding (/LGIDict), or a QGIS Georeferencer `.points` file.

Every method ends in control points (page position → map position in a metric CRS) and one
fitted transform, so residuals and the RMS error are always in metres. Page positions are "page
coordinates": PDF points from the top-left corner of the page as displayed (rotation applied),
with y negative downwards — what QGIS shows for the page rendered at 72 dpi.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf
import pypdf
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from pyproj.exceptions import CRSError
from shapely.geometry import Polygon, box

from pipeline.kernel.errors import PdfError
from pipeline.pdf.transforms import Array, FittedTransform, fit_transform

log = logging.getLogger(__name__)

DEFAULT_MAX_RMS = 5.0  # metres
DEFAULT_MIN_MATCHES = 4  # independent matches (streets, parcels) `pdf georef` needs
_LGI_DATUMS = {"WGE": "EPSG:4326", "WGS84": "EPSG:4326", "NAR": "EPSG:4269", "NAS": "EPSG:4267"}


@dataclass(frozen=True)
class ControlPoint:
    name: str
    page_xy: tuple[float, float]
    map_xy: tuple[float, float]  # in the georeference's CRS (metres)


@dataclass(frozen=True)
class Georeference:
    """How page coordinates become map coordinates, and how well."""

    method: str  # iso32000, lgidict, gcps or none (page coordinates kept)
    crs: str | None  # the map CRS (always metric when set)
    transform: FittedTransform | None
    control_points: tuple[ControlPoint, ...] = ()
    frame: Polygon | None = None  # the neatline, in page coordinates
    notes: list[str] = field(default_factory=list)

    @property
    def rms_m(self) -> float | None:
        return self.transform.rms if self.transform else None

    @property
    def transform_name(self) -> str:
        return self.transform.name if self.transform else "none"

    def to_map(self, page_xy: Array) -> Array:
        pts = np.asarray(page_xy, dtype=float).reshape(-1, 2)
        return self.transform.apply(pts) if self.transform else pts


class PageFrame:
    """Converts PDF user space and PyMuPDF (unrotated) coordinates to page coordinates."""

    def __init__(self, page: pymupdf.Page) -> None:
        flip = np.array([[1, 0, 0], [0, -1, 0], [0, 0, 1]], dtype=float)
        rot = _matrix(page.rotation_matrix)
        self._unrotated = rot @ flip  # row vectors: [x y 1] @ M
        self._user = _matrix(page.transformation_matrix) @ self._unrotated
        self.rect = page.rect  # displayed page size

    def from_unrotated(self, xy: Array) -> Array:
        return _apply(self._unrotated, xy)

    def from_user(self, xy: Array) -> Array:
        return _apply(self._user, xy)

    @property
    def page_box(self) -> Polygon:
        return box(0.0, -float(self.rect.height), float(self.rect.width), 0.0)


def _matrix(m: pymupdf.Matrix) -> Array:
    return np.array([[m.a, m.b, 0.0], [m.c, m.d, 0.0], [m.e, m.f, 1.0]], dtype=float)


def _apply(m: Array, xy: Array) -> Array:
    pts = np.asarray(xy, dtype=float).reshape(-1, 2)
    return pts @ m[:2, :2] + m[2, :2]


# --- control points file (QGIS Georeferencer) --------------------------------------------------


def read_points_file(path: Path, dpi: float = 72.0,
                     crs: str | None = None) -> tuple[list[ControlPoint], str]:
    """Read a QGIS `.points` file: `#CRS:` header, then mapX,mapY,sourceX|pixelX,sourceY|pixelY,
    enable,… Source positions are pixels of the page rendered at `dpi` (y negative downwards)."""
    if not path.is_file():
        raise PdfError(f"Control points file {path}: no such file.")
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    if lines and lines[0].startswith("#CRS:"):
        crs = crs or lines[0][5:].strip() or None
        lines = lines[1:]
    if not crs:
        raise PdfError(f"Control points file {path}: no '#CRS:' first line and no --gcp-crs; "
                       "expected the CRS of mapX/mapY, e.g. EPSG:2154.")
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    found = [_control_point(path, i, row, dpi) for i, row in enumerate(rows, start=1)]
    return [p for p in found if p is not None], crs


def _control_point(path: Path, number: int, row: dict[str, Any], dpi: float) -> ControlPoint | None:
    def value(*names: str) -> float:
        for name in names:
            if row.get(name) not in (None, ""):
                try:
                    return float(row[name])
                except ValueError as exc:
                    raise PdfError(f"Control points file {path}, point {number}: field '{name}' "
                                   f"is {row[name]!r}; expected a number.") from exc
        raise PdfError(f"Control points file {path}, point {number}: missing {' or '.join(names)}"
                       "; expected the header mapX,mapY,sourceX,sourceY,enable.")

    if str(row.get("enable", "1")).strip() in ("0", "false"):
        return None
    scale = 72.0 / dpi
    page = (value("sourceX", "pixelX") * scale, value("sourceY", "pixelY") * scale)
    return ControlPoint(f"gcp{number}", page, (value("mapX"), value("mapY")))


# --- CRS helpers --------------------------------------------------------------------------------


def _crs(spec: Any, where: str) -> CRS:
    try:
        return CRS.from_user_input(spec)
    except CRSError as exc:
        raise PdfError(f"{where}: unknown coordinate system {str(spec)[:120]!r} ({exc}).") from exc


def metric_for(geographic: CRS, lon: float, lat: float) -> CRS:
    """The UTM zone around (lon, lat) on the datum of `geographic`."""
    infos = query_utm_crs_info(datum_name=geographic.datum.name if geographic.datum else None,
                               area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    if infos:
        return CRS.from_epsg(int(infos[0].code))
    zone = int((lon + 180) // 6) + 1
    return CRS.from_proj4(f"+proj=utm +zone={zone} {'+south ' if lat < 0 else ''}"
                          f"+ellps=WGS84 +units=m +no_defs")


def crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg(min_confidence=70)
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _project(geo: CRS, lonlat: Array) -> tuple[CRS, Array]:
    """Geographic positions to a metric CRS: the projected CRS itself, or a local UTM zone."""
    if geo.is_projected:
        base = geo.geodetic_crs
        assert base is not None
        tr = Transformer.from_crs(base, geo, always_xy=True)
        return geo, np.column_stack(tr.transform(lonlat[:, 0], lonlat[:, 1]))
    lon, lat = lonlat.mean(axis=0)
    metric = metric_for(geo, float(lon), float(lat))
    tr = Transformer.from_crs(geo, metric, always_xy=True)
    return metric, np.column_stack(tr.transform(lonlat[:, 0], lonlat[:, 1]))


# --- ISO 32000 geospatial (/VP /Measure /GEO) ---------------------------------------------------


def _floats(value: Any) -> list[float]:
    return [float(v) for v in (value.get_object() if hasattr(value, "get_object") else value)]


def _from_viewport(page: Any, frame: PageFrame, where: str, name: str | None) -> Georeference | None:
    viewports = [v.get_object() for v in (page.get("/VP") or [])]
    geo = []
    for vp in viewports:
        measure = vp.get("/Measure")
        measure = measure.get_object() if measure is not None else None
        if measure is not None and measure.get("/Subtype") == "/GEO" and "/BBox" in vp:
            x0, y0, x1, y1 = _floats(vp["/BBox"])
            geo.append((abs((x1 - x0) * (y1 - y0)), vp, measure))
    if not geo:
        return None
    _, vp, measure = max(geo, key=lambda g: g[0])
    x0, y0, x1, y1 = _floats(vp["/BBox"])
    gpts = np.array(_floats(measure["/GPTS"])).reshape(-1, 2)[:, ::-1]  # lat,lon → lon,lat
    lpts = np.array(_floats(measure.get("/LPTS") or [0, 1, 0, 0, 1, 0, 1, 1])).reshape(-1, 2)
    if len(lpts) != len(gpts):
        raise PdfError(f"{where}: /GPTS has {len(gpts)} points but /LPTS {len(lpts)}; "
                       "expected the same number.")
    user = np.column_stack([x0 + lpts[:, 0] * (x1 - x0), y0 + lpts[:, 1] * (y1 - y0)])
    gcs = measure["/GCS"].get_object()
    spec = f"EPSG:{int(gcs['/EPSG'])}" if gcs.get("/EPSG") else str(gcs.get("/WKT", ""))
    metric, map_xy = _project(_crs(spec, f"{where} /GCS"), gpts)
    page_xy = frame.from_user(user)
    fitted = fit_transform(name, page_xy, map_xy, where)
    bounds = measure.get("/Bounds")
    unit = np.array(_floats(bounds)).reshape(-1, 2) if bounds is not None else lpts
    outline = frame.from_user(np.column_stack([x0 + unit[:, 0] * (x1 - x0),
                                               y0 + unit[:, 1] * (y1 - y0)]))
    points = tuple(ControlPoint(f"GPTS{i + 1}", (float(a), float(b)), (float(c), float(d)))
                   for i, ((a, b), (c, d)) in enumerate(zip(page_xy, map_xy, strict=True)))
    return Georeference("iso32000", crs_label(metric), fitted, points,
                        _polygon(outline) or _polygon(frame.from_user(
                            np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))))


def _polygon(xy: Array) -> Polygon | None:
    if len(xy) < 3:
        return None
    poly = Polygon(xy)
    if not poly.is_valid:
        poly = poly.convex_hull  # bounds given in an order that self-intersects
    return poly if poly.area > 0 else None


# --- OGC best practice / TerraGo (/LGIDict) -----------------------------------------------------


def _lgi_crs(projection: Any, where: str) -> CRS:
    projection = projection.get_object()
    kind = str(projection.get("/ProjectionType", "")).upper()
    datum = projection.get("/Datum")
    datum = str(datum) if not hasattr(datum, "keys") else str(datum.get("/Key", "WGE"))
    base = _LGI_DATUMS.get(datum[:3].upper()) if datum else "EPSG:4326"
    if projection.get("/WKT"):
        return _crs(str(projection["/WKT"]), where)
    if base is None:
        raise PdfError(f"{where}: LGIDict datum '{datum}' is not supported; expected WGE (WGS 84), "
                       "NAR (NAD 83) or NAS (NAD 27), or a /WKT entry.")
    if kind in ("GEOGRAPHIC", "GEODETIC", "GEO"):
        return _crs(base, where)
    if kind == "UT":
        zone = int(projection.get("/Zone"))
        south = str(projection.get("/Hemisphere", "N")).upper().startswith("S")
        if base == "EPSG:4326":
            return _crs(f"EPSG:{(32700 if south else 32600) + zone}", where)
        if not south:  # NAD 83 / NAD 27 UTM zones (northern hemisphere only)
            return _crs(f"EPSG:{(26900 if base == 'EPSG:4269' else 26700) + zone}", where)
    raise PdfError(f"{where}: LGIDict projection type '{kind}' is not supported; expected "
                   "GEOGRAPHIC, UT (UTM) or a /WKT entry.")


def _from_lgidict(page: Any, root: Any, frame: PageFrame, where: str,
                  name: str | None) -> Georeference | None:
    found = page.get("/LGIDict") or root.get("/LGIDict")
    if found is None:
        return None
    found = found.get_object()
    dicts = [d.get_object() for d in (found if isinstance(found, list) else [found])]
    dicts = [d for d in dicts if d.get("/Neatline") is not None or d.get("/CTM") is not None]
    if not dicts:
        return None

    def area(d: Any) -> float:
        outline = np.array(_floats(d.get("/Neatline") or [0, 0])).reshape(-1, 2)
        return Polygon(outline).area if len(outline) >= 3 else 0.0

    lgi = max(dicts, key=area)  # the map, not the locator inset
    crs = _lgi_crs(lgi["/Projection"], where)
    user, world, names = _lgi_points(lgi, where)
    metric, map_xy = (crs, world) if crs.is_projected else _project(crs, world)
    page_xy = frame.from_user(user)
    fitted = fit_transform(name, page_xy, map_xy, where)
    neatline = lgi.get("/Neatline")
    outline = frame.from_user(np.array(_floats(neatline)).reshape(-1, 2)) if neatline else None
    points = tuple(ControlPoint(n, (float(a), float(b)), (float(c), float(d)))
                   for n, (a, b), (c, d) in zip(names, page_xy, map_xy, strict=True))
    return Georeference("lgidict", crs_label(metric), fitted, points,
                        _polygon(outline) if outline is not None else None)


def _lgi_points(lgi: Any, where: str) -> tuple[Array, Array, list[str]]:
    """Registration points, plus a 3×3 grid through /CTM over the neatline when it is given."""
    user: list[list[float]] = []
    world: list[list[float]] = []
    names: list[str] = []
    for i, reg in enumerate(lgi.get("/Registration") or []):
        values = _floats(reg)
        user.append(values[:2])
        world.append(values[2:4])
        names.append(f"registration{i + 1}")
    ctm = lgi.get("/CTM")
    if ctm is not None:
        a, b, c, d, e, f = _floats(ctm)
        outline = np.array(_floats(lgi.get("/Neatline") or [0, 0, 1, 1])).reshape(-1, 2)
        (x0, y0), (x1, y1) = outline.min(axis=0), outline.max(axis=0)
        for gx in np.linspace(x0, x1, 3):
            for gy in np.linspace(y0, y1, 3):
                user.append([gx, gy])
                world.append([a * gx + c * gy + e, b * gx + d * gy + f])
                names.append(f"ctm{len(names) + 1}")
    if len(user) < 2:
        raise PdfError(f"{where}: the LGIDict has neither /CTM nor two /Registration points.")
    return np.array(user), np.array(world), names


# --- entry point --------------------------------------------------------------------------------


def georeference(reader: pypdf.PdfReader, page: pymupdf.Page, page_index: int, where: str, *,
                 gcps: Path | None = None, gcp_crs: str | None = None, gcp_dpi: float = 72.0,
                 transform: str | None = None, ignore_embedded: bool = False) -> Georeference:
    """The page's georeference: control points file first (the user's explicit choice), then
    ISO 32000, then LGIDict; without any, page coordinates are kept (method "none")."""
    frame = PageFrame(page)
    if gcps is not None:
        points, crs_spec = read_points_file(gcps, gcp_dpi, gcp_crs)
        crs = _crs(crs_spec, f"Control points file {gcps}")
        if not crs.is_projected:
            raise PdfError(f"Control points file {gcps}: CRS {crs.name} is not projected; give "
                           "map coordinates in metres (e.g. EPSG:2154) so residuals are metres.")
        fitted = fit_transform(transform, np.array([p.page_xy for p in points]).reshape(-1, 2),
                               np.array([p.map_xy for p in points]).reshape(-1, 2),
                               f"Control points file {gcps}")
        return Georeference("gcps", crs_label(crs), fitted, tuple(points))
    if not ignore_embedded:
        pdf_page = reader.pages[page_index]
        georef = _from_viewport(pdf_page, frame, where, transform) or _from_lgidict(
            pdf_page, reader.trailer["/Root"], frame, where, transform)
        if georef is not None:
            return georef
    log.warning("%s: no georeferencing found (no /VP /GEO, no /LGIDict, no --gcps): features "
                "keep page coordinates (points, y negative downwards).", where)
    return Georeference("none", None, None)


def check_rms(georef: Georeference, max_rms: float, force: bool, where: str) -> None:
    """Refuse a georeference less accurate than `max_rms` metres unless forced."""
    if georef.transform is None:
        return
    residuals = georef.transform.residuals
    order = np.argsort(-residuals)
    listing = ", ".join(f"{georef.control_points[i].name} {residuals[i]:.1f} m"
                        for i in order[:3])
    log.info("%s: %s georeference, %s transform, RMS %.3f m over %d control points (largest "
             "residuals: %s)", where, georef.method, georef.transform.name, georef.transform.rms,
             len(residuals), listing)
    if georef.transform.rms > max_rms:
        text = (f"{where}: the {georef.transform.name} transform from {len(residuals)} control "
                f"points has an RMS error of {georef.transform.rms:.1f} m, above the {max_rms:g} m "
                f"limit; largest residuals: {listing}. Check or remove the control point with the "
                "largest residual, try another --transform, or pass --force.")
        if not force:
            raise PdfError(text)
        log.warning("%s (forced)", text)
