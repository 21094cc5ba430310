"""Extraction: one PDF page → georeferenced, classified features with labels and provenance.

`extract_pdf` is the public entry (used by `sig2osm pdf extract`); `page_shapes` reads the
shapes and labels in page coordinates (used by `sig2osm pdf styles` and by `extract_pdf`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf
import pypdf
import shapely
from shapely.geometry import Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from pipeline.kernel.errors import PdfError
from pipeline.pdf.accounting import StyleCount, count_by_style
from pipeline.pdf.classify import Legend, style_layers
from pipeline.pdf.content import page_painting
from pipeline.pdf.georef import DEFAULT_MAX_RMS, Georeference, PageFrame, check_rms, georeference
from pipeline.pdf.shapes import Shape, Style, merge_fill_and_stroke, polygonal, shape_of
from pipeline.pdf.structure import StructFeature, page_features
from pipeline.pdf.symbols import (
    Label,
    attach_labels,
    merge_composites,
    page_labels,
    symbols_to_points,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractOptions:
    page: int = 1  # 1-based page number
    gcps: Path | None = None  # QGIS Georeferencer .points file
    gcp_crs: str | None = None  # CRS of the .points map coordinates when the file has no #CRS
    gcp_dpi: float = 72.0  # resolution the page was rendered at when the points were taken
    transform: str | None = None  # helmert, affine, polynomial, projective; None: by point count
    max_rms: float = DEFAULT_MAX_RMS  # metres
    force: bool = False  # accept an RMS error above max_rms
    legend: Legend = field(default_factory=Legend)
    ignore_georef: bool = False  # ignore the PDF's own georeferencing


@dataclass(frozen=True)
class Feature:
    """An extracted feature in map coordinates (page coordinates when not georeferenced)."""

    pdf_id: str
    category: str
    geometry: BaseGeometry
    shape: Shape
    tags: dict[str, str]
    label: str | None
    attributes: dict[str, Any] = field(default_factory=dict)  # from the logical structure


@dataclass(frozen=True)
class Extraction:
    path: Path
    page: int
    georef: Georeference
    features: list[Feature]
    labels: list[tuple[Label, BaseGeometry, str | None]]  # label, map point, attached pdf_id
    frame: Polygon | None
    counts_by_style: list[StyleCount] = field(default_factory=list)  # drawings vs features

    @property
    def counts(self) -> Counter[str]:
        return Counter(f.category for f in self.features)


@dataclass(frozen=True)
class PageContent:
    shapes: list[Shape]  # every drawing, symbols already turned into points, before clipping
    labels: list[Label]
    frame: PageFrame
    clip_frame: Polygon | None  # the clip region most drawings are drawn in, if any
    parts: list[tuple[Shape, Shape]] = field(default_factory=list)  # (part, its symbol)
    structure: dict[int, StructFeature] = field(default_factory=dict)  # features by MCID
    mcids: dict[int, int] = field(default_factory=dict)  # drawing seqno → MCID


def _open(path: Path) -> tuple[pymupdf.Document, pypdf.PdfReader]:
    if not path.is_file():
        raise PdfError(f"PDF {path}: no such file.")
    try:
        return pymupdf.open(path), pypdf.PdfReader(path)
    except Exception as exc:  # PyMuPDF and pypdf raise their own types for broken files
        raise PdfError(f"PDF {path}: not a readable PDF ({exc}).") from exc


def _page_index(doc: pymupdf.Document, path: Path, page: int) -> int:
    if not 1 <= page <= doc.page_count:
        raise PdfError(f"PDF {path}: no page {page}; the document has {doc.page_count} page(s).")
    return page - 1


def _show_all_layers(doc: pymupdf.Document) -> None:
    """Hidden optional-content layers are data too: make MuPDF draw them."""
    for config in doc.layer_ui_configs():
        if config.get("type") == "checkbox" and not config.get("on"):
            doc.set_layer_ui_config(config["number"], 0)


@dataclass(frozen=True)
class _Marks:
    layers: list[str | None]  # the OCG of each drawing
    mcids: list[int | None]  # the marked-content id of each drawing (logical structure)


def _marks(drawings: list[dict[str, Any]], reader: pypdf.PdfReader, index: int,
           where: str) -> _Marks:
    """The OCG and marked-content id of each drawing, from the content streams (PyMuPDF's
    own layer names when the streams and the drawings do not line up)."""
    own = _Marks([d.get("layer") or None for d in drawings], [None] * len(drawings))
    try:
        painting = page_painting(reader, index)
    except Exception as exc:  # a content stream the walker cannot read: PyMuPDF's layers
        log.warning("%s: optional-content layers not read (%s)", where, exc)
        return own
    needed = sum(2 if d.get("type") == "fs" else 1 for d in drawings)
    if needed != len(painting.layers):
        log.warning("%s: %d painting operators but %d drawings; layer names from PyMuPDF only",
                    where, len(painting.layers), needed)
        return own
    layers, mcids, i = [], [], 0
    for d in drawings:
        layers.append(painting.layers[i] or d.get("layer") or None)
        mcids.append(painting.mcids[i])
        i += 2 if d.get("type") == "fs" else 1
    return _Marks(layers, mcids)


def _dominant_clip(extended: list[dict[str, Any]], frame: PageFrame) -> Polygon | None:
    """The clip rectangle the most drawings are painted inside (the map frame of a layout)."""
    stack: dict[int, tuple[float, ...]] = {}
    counts: Counter[tuple[float, ...]] = Counter()
    for item in extended:
        level = int(item.get("level", 0))
        if item.get("type") == "clip":
            stack = {k: v for k, v in stack.items() if k < level}
            stack[level] = tuple(round(float(c), 1) for c in item["scissor"])
        elif item.get("type") in ("f", "s", "fs"):
            for rect in {v for k, v in stack.items() if k < level}:
                counts[rect] += 1
    page_area = frame.page_box.area
    for rect, _ in counts.most_common():
        poly = Polygon(frame.from_unrotated(np.array(
            [[rect[0], rect[1]], [rect[2], rect[1]], [rect[2], rect[3]], [rect[0], rect[3]]])))
        if 0.1 * page_area <= poly.area <= 0.9 * page_area:
            return poly
    return None


def page_shapes(path: Path, page: int = 1, legend: Legend | None = None) -> PageContent:
    """Shapes and labels of one page, in page coordinates."""
    legend = legend or Legend()
    doc, reader = _open(path)
    index = _page_index(doc, path, page)
    where = f"PDF {path} page {page}"
    _show_all_layers(doc)
    pdf_page = doc[index]
    frame = PageFrame(pdf_page)
    extended = pdf_page.get_drawings(extended=True)
    drawings = [d for d in extended if d.get("type") in ("f", "s", "fs")]
    marks = _marks(drawings, reader, index, where)
    shapes = [s for d, layer in zip(drawings, marks.layers, strict=True)
              for s in shape_of(d, layer, frame)]
    shapes = merge_fill_and_stroke(shapes)
    shapes = symbols_to_points(shapes, legend.symbol_size, legend.point_styles(shapes))
    shapes, parts = merge_composites(shapes)
    log.info("%s: %d drawings → %d shapes (%d parts of composite symbols)", where,
             len(drawings), len(shapes), len(parts))
    mcids = {int(d.get("seqno", 0)): m for d, m in zip(drawings, marks.mcids, strict=True)
             if m is not None}
    return PageContent(shapes, page_labels(pdf_page, frame), frame,
                       _dominant_clip(extended, frame), parts,
                       _structure(reader, index, mcids, where), mcids)


def _structure(reader: pypdf.PdfReader, index: int, mcids: dict[int, int],
               where: str) -> dict[int, StructFeature]:
    """The page's features in the logical structure, by MCID; those that draw nothing said."""
    try:
        features = page_features(reader, index)
    except Exception as exc:  # a damaged structure tree: the drawings alone
        log.warning("%s: logical structure not read (%s)", where, exc)
        return {}
    undrawn = sorted(set(features) - set(mcids.values()))
    if undrawn:
        names = ", ".join(f"{features[m].layer}/{features[m].name}" for m in undrawn[:5])
        log.warning("%s: %d feature(s) of the logical structure draw nothing (%s%s): kept "
                    "without geometry", where, len(undrawn), names,
                    "…" if len(undrawn) > 5 else "")
    return features


def map_frame(content: PageContent, georef: Georeference, legend: Legend) -> Polygon | None:
    """The map frame: the legend's, the georeference's neatline, or the dominant clip."""
    if legend.frame is not None:
        x0, y0, x1, y1 = legend.frame
        return box(x0, -y1, x1, -y0)  # legend frames are given with y downwards
    return georef.frame or content.clip_frame


def clip_to_frame(shapes: list[Shape], frame: Polygon | None) -> list[tuple[Shape, BaseGeometry]]:
    if frame is None:
        return [(s, s.geometry) for s in shapes]
    prepared = shapely.prepare(frame) or frame
    kept = []
    for shape in shapes:
        geom = shape.geometry
        if not frame.intersects(geom):
            continue
        if shape.kind == "polygon" and frame.intersection(geom).area >= 0.9 * frame.area:
            continue  # the frame's border or background, not data
        if shape.kind != "point" and not frame.contains(geom):
            geom = _same_dimension(shape.kind, frame.intersection(geom))
            if geom is None:
                continue
        kept.append((shape, geom))
    del prepared
    return kept


def _same_dimension(kind: str, geom: BaseGeometry) -> BaseGeometry | None:
    wanted = 2 if kind == "polygon" else 1
    parts = [g for g in getattr(geom, "geoms", [geom]) if shapely.get_dimensions(g) == wanted]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    merged = shapely.union_all(parts)
    return polygonal(merged) if kind == "polygon" else shapely.line_merge(merged)


def extract_pdf(path: Path, options: ExtractOptions | None = None) -> Extraction:
    """Georeference, extract and classify one page of a PDF map."""
    options = options or ExtractOptions()
    where = f"PDF {path} page {options.page}"
    doc, reader = _open(path)
    index = _page_index(doc, path, options.page)
    georef = georeference(reader, doc[index], index, where, gcps=options.gcps,
                          gcp_crs=options.gcp_crs, gcp_dpi=options.gcp_dpi,
                          transform=options.transform, ignore_embedded=options.ignore_georef)
    check_rms(georef, options.max_rms, options.force, where)
    content = page_shapes(path, options.page, options.legend)
    frame = map_frame(content, georef, options.legend)
    clipped = clip_to_frame(content.shapes, frame)
    labels = [lab for lab in content.labels if frame is None or frame.contains(lab.point)]
    features = _classify(clipped, labels, content, options, georef)
    features += _undrawn(content, features, options.page)
    log.info("%s: %d features in %d categories, %d labels", where, len(features),
             len({f.category for f in features}), len(labels))
    counts = count_by_style(content, clipped, features, where)
    return Extraction(path, options.page, georef, features,
                      _map_labels(labels, features, clipped, options, georef), frame, counts)


def _classify(clipped: list[tuple[Shape, BaseGeometry]], labels: list[Label],
              content: PageContent, options: ExtractOptions, georef: Georeference
              ) -> list[Feature]:
    legend = options.legend
    attached = attach_labels([s for s, _ in clipped], labels, legend.label_distance)
    categories = [legend.category_of(shape) for shape, _ in clipped]
    others = style_layers((shape.style, shape.kind) for (shape, _), category
                          in zip(clipped, categories, strict=True) if category is None)
    features = []
    for i, ((shape, geom), category) in enumerate(zip(clipped, categories, strict=True)):
        if category is None and not legend.keep_others:
            continue
        name = category.name if category else others[(shape.style, shape.kind)]
        texts = [labels[j].text for j in attached.get(i, [])]
        source = content.structure.get(content.mcids.get(shape.seqno, -1))
        features.append(Feature(
            _pdf_id(options.page, shape), name,
            shapely.transform(geom, georef.to_map), shape,
            dict(category.tags) if category else {}, "; ".join(texts) or None,
            dict(source.attributes) if source else {}))
    return features


def _undrawn(content: PageContent, features: list[Feature], page: int) -> list[Feature]:
    """Features of the logical structure that draw nothing (GDAL writes an empty drawing for a
    geometry it cannot draw): kept with their attributes and no geometry, in the layer their
    drawn siblings went to, so nothing of the source is lost silently."""
    drawn = set(content.mcids.values())
    missing = [f for mcid, f in sorted(content.structure.items()) if mcid not in drawn]
    if not missing:
        return []
    sibling: dict[str | None, Counter[str]] = defaultdict(Counter)
    for feature in features:
        source = content.structure.get(content.mcids.get(feature.shape.seqno, -1))
        if source is not None:
            sibling[source.layer][feature.category] += 1
    out = []
    for source in missing:
        categories = sibling.get(source.layer)
        category = categories.most_common(1)[0][0] if categories else "pdf_undrawn"
        shape = Shape(-1, Point(), "point", Style(None, None, None, None, source.layer))
        out.append(Feature(f"{page}-m{source.mcid:06d}", category, Point(), shape, {},
                           None, dict(source.attributes)))
    return out


def _pdf_id(page: int, shape: Shape) -> str:
    """Stable feature id: page, painting order, part."""
    return f"{page}-{shape.seqno:06d}" + (f"-{shape.part}" if shape.part else "")


def _map_labels(labels: list[Label], features: list[Feature],
                clipped: list[tuple[Shape, BaseGeometry]], options: ExtractOptions,
                georef: Georeference) -> list[tuple[Label, BaseGeometry, str | None]]:
    kept = {f.shape.key: f.pdf_id for f in features}
    shapes = [s for s, _ in clipped if s.key in kept]
    owner: dict[int, str] = {}
    for si, label_ids in attach_labels(shapes, labels, options.legend.label_distance).items():
        for li in label_ids:
            owner[li] = kept[shapes[si].key]
    return [(lab, shapely.transform(lab.point, georef.to_map), owner.get(i))
            for i, lab in enumerate(labels)]


def layer_extents(path: Path, page: int = 1) -> tuple[Georeference, dict[str, Polygon]]:
    """Map extent of each optional-content layer's drawings inside the frame (a fast check of
    georeferencing and layer reading, without building every geometry)."""
    doc, reader = _open(path)
    index = _page_index(doc, path, page)
    where = f"PDF {path} page {page}"
    georef = georeference(reader, doc[index], index, where)
    _show_all_layers(doc)
    pdf_page = doc[index]
    frame = PageFrame(pdf_page)
    drawings = pdf_page.get_drawings()
    clip = georef.frame or frame.page_box
    boxes: dict[str, list[Polygon]] = {}
    for drawing, layer in zip(drawings, _marks(drawings, reader, index, where).layers,
                              strict=True):
        r = drawing["rect"]
        corners = frame.from_unrotated(np.array([[r.x0, r.y0], [r.x1, r.y1]]))
        part = box(*corners.min(axis=0), *corners.max(axis=0)).intersection(clip)
        if layer and not part.is_empty:
            boxes.setdefault(layer, []).append(part)
    return georef, {name: shapely.transform(shapely.envelope(shapely.union_all(parts)),
                                            georef.to_map) for name, parts in boxes.items()}
