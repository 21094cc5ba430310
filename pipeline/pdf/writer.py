"""GeoPackage output: one layer per category, with provenance on every feature, plus the labels
and the control points (with their residuals). Written to a temporary file, then renamed."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from pipeline.kernel.errors import PdfError
from pipeline.pdf.extract import Extraction, Feature

log = logging.getLogger(__name__)

LABELS_LAYER = "pdf_labels"
CONTROL_POINTS_LAYER = "pdf_control_points"
COUNTS_LAYER = "pdf_counts"  # drawings per style against features written (no geometry)


def _row(feature: Feature, extraction: Extraction) -> dict[str, Any]:
    row = _provenance(feature, extraction)
    for name, value in feature.attributes.items():  # the source's fields (logical structure)
        row[f"attr_{name}" if name in row else name] = value
    return row


def _provenance(feature: Feature, extraction: Extraction) -> dict[str, Any]:
    style = feature.shape.style
    georef = extraction.georef
    return {
        "pdf_id": feature.pdf_id,
        "category": feature.category,
        "pdf_file": extraction.path.name,
        "page": extraction.page,
        "style": style.label,
        "ocg": style.layer,
        "stroke": style.stroke,
        "fill": style.fill,
        "width": style.width,
        "dash": style.dash,
        "symbol": feature.shape.symbol,
        "transform": f"{georef.method}/{georef.transform_name}",
        "rms_m": None if georef.rms_m is None else round(georef.rms_m, 3),
        "label": feature.label,
        "osm_tags": json.dumps(feature.tags, ensure_ascii=False) if feature.tags else None,
        "note": "drawn empty in the PDF: no geometry" if feature.geometry.is_empty else None,
        "geometry": None if feature.geometry.is_empty else feature.geometry,
    }


def layer_frames(extraction: Extraction) -> dict[str, pd.DataFrame]:
    """The GeoDataFrames to write, by layer name."""
    crs = extraction.georef.crs
    rows: dict[str, list[dict[str, Any]]] = {}
    for feature in extraction.features:
        rows.setdefault(feature.category, []).append(_row(feature, extraction))
    frames = {name: gpd.GeoDataFrame(r, geometry="geometry", crs=crs) for name, r in rows.items()}
    if extraction.labels:
        frames[LABELS_LAYER] = gpd.GeoDataFrame([
            {"text": lab.text, "size": round(lab.size, 1), "pdf_id": owner,
             "pdf_file": extraction.path.name, "page": extraction.page, "geometry": point}
            for lab, point, owner in extraction.labels], geometry="geometry", crs=crs)
    if extraction.counts_by_style:
        frames[COUNTS_LAYER] = pd.DataFrame(  # an attribute table: no geometry
            [{**asdict(c), "pdf_file": extraction.path.name, "page": extraction.page}
             for c in extraction.counts_by_style])
    transform = extraction.georef.transform
    if transform is not None:
        from shapely.geometry import Point

        frames[CONTROL_POINTS_LAYER] = gpd.GeoDataFrame([
            {"name": cp.name, "page_x": cp.page_xy[0], "page_y": cp.page_xy[1],
             "residual_m": round(float(res), 3), "transform": transform.name,
             "rms_m": round(transform.rms, 3), "geometry": Point(cp.map_xy)}
            for cp, res in zip(extraction.georef.control_points, transform.residuals,
                               strict=True)], geometry="geometry", crs=crs)
    return frames


def write_geopackage(extraction: Extraction, target: Path) -> dict[str, int]:
    """Write every layer; the target is replaced only when all layers were written."""
    frames = layer_frames(extraction)
    if not extraction.features:
        raise PdfError(f"PDF {extraction.path} page {extraction.page}: no feature inside the map "
                       "frame; nothing written. Check the page number and the legend's frame.")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".gpkg", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        with warnings.catch_warnings():  # page coordinates have no CRS, on purpose
            warnings.filterwarnings("ignore", message="'crs' was not provided")
            for name, frame in frames.items():
                kinds = set(frame.geom_type.dropna()) if "geometry" in frame else set()
                pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG",
                                        append=tmp.exists(), promote_to_multi=len(kinds) > 1)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    counts = {name: len(frame) for name, frame in frames.items()}
    log.info("wrote %s: %s", target, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts
