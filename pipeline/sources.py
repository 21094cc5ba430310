"""Readers for municipal layers: Shapefile (plain or zipped), GeoPackage, GeoJSON, FlatGeobuf, CSV.

`read_layer` returns the layer as a GeoDataFrame with its CRS set, untouched otherwise; the ingest
step turns it into features with proposed tags. Every error names the file and the layer and says
what was expected.
"""

from __future__ import annotations

import csv
import io
import logging
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
from pyproj import CRS
from pyproj.exceptions import CRSError

from exports.chunks import Area
from pipeline.kernel.errors import InputError, InputNotFoundError

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".fgb", ".csv", ".gml", ".kml")

# CSV coordinate columns, most specific first: (x column, y column, implied CRS or None).
_CSV_COORDINATE_PAIRS: tuple[tuple[str, str, str | None], ...] = (
    ("lon", "lat", "EPSG:4326"),
    ("longitude", "latitude", "EPSG:4326"),
    ("lng", "lat", "EPSG:4326"),
    ("long", "lat", "EPSG:4326"),
    ("x", "y", None),
    ("coord_x", "coord_y", None),
    ("coordx", "coordy", None),
    ("easting", "northing", None),
)


@dataclass(frozen=True)
class LayerInfo:
    """What was read, for the report and for error messages."""

    path: Path  # the file the user named
    member: str | None  # the file inside a zip archive, if any
    layer: str | None
    driver: str
    encoding: str | None
    crs: str  # as found in the file or assigned by the profile
    crs_origin: str  # "file" or "profile"
    notes: dict[str, Any] = field(default_factory=dict)  # what reading changed (decimal commas)

    @property
    def label(self) -> str:
        where = f"{self.path}" + (f"!{self.member}" if self.member else "")
        return where + (f" layer '{self.layer}'" if self.layer else "")


def read_layer(
    path: Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    x: str | None = None,
    y: str | None = None,
    delimiter: str | None = None,
    columns: Sequence[str] = (),
) -> tuple[gpd.GeoDataFrame, LayerInfo]:
    """Read one vector layer with its CRS set (from the file, or `crs` when given).

    `columns` names the columns of a CSV that has no header line."""
    if not path.exists():
        raise InputNotFoundError(f"Source file {path}: no such file.")
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="sig2osm-zip-") as tmp:
            member = _extract_zip(path, Path(tmp), layer)
            frame, info = _read_file(Path(tmp) / member, layer, crs, encoding, x, y, delimiter,
                                     columns)
            return frame, LayerInfo(path, member, info.layer, info.driver, info.encoding,
                                    info.crs, info.crs_origin)
    if path.is_dir():
        raise InputError(f"Source {path} is a folder; expected a file ({', '.join(VECTOR_SUFFIXES)} "
                         "or .zip).")
    return _read_file(path, layer, crs, encoding, x, y, delimiter, columns)


@dataclass(frozen=True)
class ArchiveLimits:
    """How much of a zip archive is ever unpacked: its layer and the layer's side files."""

    max_members: int = 10_000  # entries in the archive
    max_bytes: int = 4 * 2**30  # bytes unpacked (the layer's files), 4 GiB


ZIP_LIMITS = ArchiveLimits()


def _extract_zip(archive: Path, target: Path, layer: str | None) -> str:
    """Unpack the vector file of `archive` (searched in sub-folders too) with its side files
    (.dbf, .shx, .prj, .cpg… of the same name), and return its name in the archive."""
    limits = ZIP_LIMITS
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > limits.max_members:
                raise InputError(f"Source file {archive}: the archive holds {len(members)} entries, "
                                 f"more than the {limits.max_members} sig2osm opens.")
            names = [m.filename for m in members
                     if not m.is_dir() and "__MACOSX" not in m.filename]
            chosen = _pick_vector(archive, names, layer)
            wanted = [m for m in members if _same_layer(m.filename, chosen)]
            _unpack(zf, archive, wanted, target, limits)
    except zipfile.BadZipFile as exc:
        raise InputError(f"Source file {archive}: not a valid zip archive ({exc}).") from exc
    except (RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:  # encrypted, damaged
        raise InputError(f"Source file {archive}: {chosen} cannot be unpacked ({exc}).") from exc
    return chosen


def _pick_vector(archive: Path, names: list[str], layer: str | None) -> str:
    vectors = sorted(n for n in names if Path(n).suffix.lower() in VECTOR_SUFFIXES)
    if not vectors:
        raise InputError(f"Source file {archive}: the archive holds no vector file "
                         f"(expected one of {', '.join(VECTOR_SUFFIXES)}); it holds: "
                         f"{', '.join(names[:20]) or 'nothing'}.")
    if len(vectors) == 1:
        return vectors[0]
    if layer:
        by_stem = [n for n in vectors if Path(n).stem == layer]
        if by_stem:
            return by_stem[0]
        gpkgs = [n for n in vectors if n.lower().endswith(".gpkg")]
        if len(gpkgs) == 1:
            return gpkgs[0]
    raise InputError(f"Source file {archive}: the archive holds several layers "
                     f"({', '.join(Path(n).stem for n in vectors)}); set source.layer to one of them.")


def _same_layer(name: str, chosen: str) -> bool:
    """`name` is `chosen` or one of its side files (same folder, same name, any extension)."""
    path, layer = PurePosixPath(name), PurePosixPath(chosen)
    return path.parent == layer.parent and path.stem.lower() == layer.stem.lower()


def _unpack(zf: zipfile.ZipFile, archive: Path, members: list[zipfile.ZipInfo], target: Path,
            limits: ArchiveLimits) -> None:
    """Unpack `members` under `target`, within the size limit whatever the archive declares,
    refusing any name that would land outside `target`."""
    left = limits.max_bytes
    for member in members:
        parts = PurePosixPath(member.filename.replace("\\", "/")).parts
        if member.filename.startswith(("/", "\\")) or ".." in parts or ":" in member.filename:
            raise InputError(f"Source file {archive}: entry {member.filename!r} would be unpacked "
                             "outside its folder; the archive is refused.")
        path = target.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(member) as source, path.open("wb") as copy:
            while block := source.read(1 << 20):
                left -= len(block)
                if left < 0:
                    raise InputError(f"Source file {archive}: {member.filename} unpacks to more "
                                     f"than {limits.max_bytes} bytes (with its side files); a "
                                     "compression bomb, or a layer too large for sig2osm.")
                copy.write(block)


def _read_file(
    path: Path,
    layer: str | None,
    crs: str | None,
    encoding: str | None,
    x: str | None,
    y: str | None,
    delimiter: str | None,
    columns: Sequence[str] = (),
) -> tuple[gpd.GeoDataFrame, LayerInfo]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path, crs, encoding, x, y, delimiter, columns)
    layer_name = _pick_layer(path, layer)
    if suffix == ".shp" and encoding is None:
        encoding = _shapefile_encoding(path)
    try:
        frame = pyogrio.read_dataframe(path, layer=layer_name, encoding=encoding)
    except pyogrio.errors.DataSourceError as exc:
        raise InputError(f"Source file {path}: not a readable vector file ({exc}).") from exc
    except (pyogrio.errors.DataLayerError, UnicodeDecodeError) as exc:
        raise InputError(f"Source file {path} layer '{layer_name}': cannot be read ({exc}).") from exc
    driver = pyogrio.read_info(path, layer=layer_name).get("driver", "")
    frame, crs_text, origin = _set_crs(frame, crs, f"{path} layer '{layer_name}'")
    return frame, LayerInfo(path, None, layer_name, driver, encoding, crs_text, origin)


def _pick_layer(path: Path, layer: str | None) -> str:
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as exc:
        raise InputError(f"Source file {path}: not a readable vector file ({exc}); expected "
                         f"one of {', '.join(VECTOR_SUFFIXES)}.") from exc
    if layer is None:
        if len(layers) > 1:
            raise InputError(f"Source file {path} has {len(layers)} layers "
                             f"({', '.join(layers)}); set source.layer to one of them.")
        return layers[0]
    if layer not in layers:
        raise InputError(f"Source file {path}: no layer '{layer}'; the file has: "
                         f"{', '.join(layers)}.")
    return layer


def _set_crs(
    frame: gpd.GeoDataFrame, crs: str | None, label: str
) -> tuple[gpd.GeoDataFrame, str, str]:
    if crs is not None:
        try:
            parsed = CRS.from_user_input(crs)
        except CRSError as exc:
            raise InputError(f"source.crs '{crs}' is not a known CRS ({exc}); expected e.g. "
                             "'EPSG:2154'.") from exc
        return frame.set_crs(parsed, allow_override=True), parsed.to_string(), "profile"
    if frame.crs is None:
        raise InputError(f"Source {label} declares no CRS; set source.crs in the profile "
                         "(e.g. 'EPSG:2154' for Lambert-93, 'EPSG:4326' for longitude/latitude).")
    return frame, frame.crs.to_string(), "file"


def _shapefile_encoding(shp: Path) -> str:
    """The text encoding of a shapefile's .dbf: its .cpg if any, else detected from the bytes.

    Old municipal shapefiles are latin-1/cp1252 without a .cpg, newer ones UTF-8 without one;
    GDAL alone would guess ISO-8859-1 for both. Valid UTF-8 with non-ASCII bytes is UTF-8,
    anything else is read as cp1252 (a superset of latin-1 for the printable range).
    """
    cpg = next((p for p in shp.parent.glob(shp.stem + ".*") if p.suffix.lower() == ".cpg"), None)
    if cpg is not None:
        declared = cpg.read_text(encoding="ascii", errors="ignore").strip()
        if declared:
            return "cp1252" if declared in ("1252", "ANSI 1252") else declared
    dbf = next((p for p in shp.parent.glob(shp.stem + ".*") if p.suffix.lower() == ".dbf"), None)
    if dbf is None:
        return "utf-8"
    data = dbf.read_bytes()
    if len(data) < 32:
        return "utf-8"
    header_length = struct.unpack("<H", data[8:10])[0]
    records = data[header_length:]
    try:
        records.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _read_csv(
    path: Path,
    crs: str | None,
    encoding: str | None,
    x: str | None,
    y: str | None,
    delimiter: str | None,
    columns: Sequence[str] = (),
) -> tuple[gpd.GeoDataFrame, LayerInfo]:
    table, encoding = read_csv_table(path, encoding, delimiter, columns)
    table, converted = _decimal_commas(table)
    x_col, y_col, implied = _csv_columns(table, path, x, y)
    xs = pd.to_numeric(table[x_col].str.replace(",", ".", regex=False), errors="coerce")
    ys = pd.to_numeric(table[y_col].str.replace(",", ".", regex=False), errors="coerce")
    geometry = gpd.points_from_xy(xs, ys)
    geometry[(xs.isna() | ys.isna()).to_numpy()] = None
    frame = gpd.GeoDataFrame(table, geometry=geometry, crs=None)
    if crs is None and implied is not None:
        frame = frame.set_crs(implied)
        crs_text, origin = implied, f"columns {x_col}/{y_col}"
    else:
        frame, crs_text, origin = _set_crs(frame, crs, f"{path} (columns {x_col}/{y_col})")
    notes = {"decimal_commas": converted} if converted else {}
    info = LayerInfo(path, None, None, "CSV", encoding, crs_text, origin, notes)
    return frame, info


_DECIMAL_COMMA = r"^[-+]?\d+,\d+$"
_NUMBER = r"^[-+]?\d+(?:[.,]\d+)?$"


def _decimal_commas(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Columns of numbers written with a decimal comma (`5,72`, French spreadsheets) get a
    decimal point; the columns are named in the log and the report."""
    converted = []
    for column in table.columns:
        values = table[column].dropna()
        if values.empty or not values.str.match(_DECIMAL_COMMA).any():
            continue
        if values.str.match(_NUMBER).all():
            table[column] = table[column].str.replace(",", ".", regex=False)
            converted.append(str(column))
    if converted:
        log.warning("source: decimal commas read as decimal points in column(s) %s",
                    ", ".join(converted))
    return table, converted


def _csv_columns(
    table: pd.DataFrame, path: Path, x: str | None, y: str | None
) -> tuple[str, str, str | None]:
    columns = list(table.columns)
    if x or y:
        missing = [c for c in (x, y) if c not in columns]
        if missing or not (x and y):
            raise InputError(f"Source file {path}: coordinate columns source.x={x!r} and "
                             f"source.y={y!r} expected; the file has: {', '.join(columns)}.")
        assert x is not None and y is not None
        return x, y, None
    lowered = {c.lower().strip(): c for c in columns}
    for x_name, y_name, implied in _CSV_COORDINATE_PAIRS:
        if x_name in lowered and y_name in lowered:
            return lowered[x_name], lowered[y_name], implied
    raise InputError(f"Source file {path}: no coordinate columns found (looked for lon/lat, "
                     f"longitude/latitude, x/y…); set source.x and source.y. Columns: "
                     f"{', '.join(columns)}.")


def read_csv_table(
    path: Path, encoding: str | None, delimiter: str | None, columns: Sequence[str] = ()
) -> tuple[pd.DataFrame, str]:
    """A CSV as text columns (empty cells as None) and the encoding used.

    With `columns`, the file has no header line: the names go to the first columns in order,
    any further column is called `column_<n>` (n counted from 1)."""
    raw = path.read_bytes()
    if encoding is None:
        try:
            text = raw.decode("utf-8-sig")
            encoding = "utf-8"
        except UnicodeDecodeError:
            text, encoding = raw.decode("cp1252", errors="replace"), "cp1252"
    else:
        text = raw.decode(encoding)
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    if not columns:
        _check_row_widths(text, delimiter, path)
    table = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                        header=None if columns else "infer", index_col=False)
    if columns:
        width = len(table.columns)
        if len(columns) > width:
            raise InputError(f"Source file {path}: source.columns names {len(columns)} columns "
                             f"but the rows have {width} (delimiter {delimiter!r}).")
        table.columns = list(columns) + [f"column_{n}" for n in range(len(columns) + 1, width + 1)]
    return table.replace({"": None, "NA": None}), encoding


def _check_row_widths(text: str, delimiter: str, path: Path) -> None:
    """Rows wider than the header shift every value into the wrong column (pandas would even
    take the first ones as row labels): refused, with the likely cause."""
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(rows, [])
    wide = [(number, len(row)) for number, row in enumerate(rows, 2) if len(row) > len(header)]
    if not wide:
        return
    shown = ", ".join(f"line {n} ({w} fields)" for n, w in wide[:5])
    hint = (" Numbers with a decimal comma ('5,72') in a comma-separated file split in two: "
            "quote them, or write the file with ';' as the delimiter."
            if delimiter == "," else "")
    raise InputError(f"Source file {path}: {len(wide)} row(s) have more fields than the "
                     f"{len(header)} of the header line (delimiter {delimiter!r}): {shown}.{hint}")


def read_table(
    path: Path,
    *,
    layer: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    columns: Sequence[str] = (),
) -> tuple[gpd.GeoDataFrame, LayerInfo]:
    """A table without geometry (`source.geometry: none`): its rows, with a null geometry each.

    CSV files are read as text; any other format GDAL reads (.dbf, .gpkg, .xlsx, .ods…) through
    pyogrio, ignoring whatever geometry it has."""
    if not path.is_file():
        raise InputNotFoundError(f"Source file {path}: no such file.")
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        table, used = read_csv_table(path, encoding, delimiter, columns)
        info = LayerInfo(path, None, None, "CSV", used, "none", "no geometry (source.geometry)")
    else:
        try:
            table = pyogrio.read_dataframe(path, layer=layer, encoding=encoding,
                                           read_geometry=False)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise InputError(f"Source file {path}: not a readable table ({exc}).") from exc
        info = LayerInfo(path, None, layer, "OGR", encoding, "none",
                         "no geometry (source.geometry)")
    frame = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries([None] * len(table),
                                                           index=table.index), crs="EPSG:4326")
    return frame, info


def read_chunk_areas(path: Path, layer: str | None, name_field: str | None) -> list[Area]:
    """The polygons of `changeset.chunk_layer`, named by `name_field` (else by their row)."""
    frame, info = read_layer(path, layer=layer)
    frame = frame.to_crs("EPSG:4326")
    if name_field is not None and name_field not in frame.columns:
        raise InputError(f"changeset.chunk_layer {info.label}: no field '{name_field}' "
                         f"(changeset.chunk_field); fields: {', '.join(map(str, frame.columns))}")
    areas = []
    for i, (geometry, row) in enumerate(zip(frame.geometry, frame.to_dict("records"),
                                            strict=True), 1):
        if geometry is None or geometry.is_empty or "Polygon" not in geometry.geom_type:
            continue
        name = str(row[name_field]) if name_field else f"{info.label} #{i}"
        areas.append(Area(name, geometry))
    if not areas:
        raise InputError(f"changeset.chunk_layer {info.label}: no polygon to split chunks by")
    return areas


def read_background(path: Path, layer: str | None) -> dict[str, Any]:
    """A map's `map.background` layer (e.g. the commune outline) as GeoJSON in EPSG:4326,
    simplified to a metre or so."""
    frame, _info = read_layer(path, layer=layer)  # errors name the file, layer or CRS
    geometries = [g.simplify(0.00001) for g in frame.to_crs("EPSG:4326").geometry
                  if g is not None and not g.is_empty]
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": g.__geo_interface__}
                         for g in geometries]}
