"""Changeset chunks: the change split into spatially compact parts of at most `chunk_size`
elements, each to be uploaded as one changeset (`chunks/NNN.osc` and `chunks/NNN.osm`).

Without a chunk layer the split is a k-d tree: the set is cut across its longer side at the
point that leaves whole chunks on each side, until every part fits. With a chunk layer
(quartiers, communes) each change goes to the polygon holding it first, and a polygon with too
many changes is cut the same way. The objects of one decision always stay in one chunk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from exports.osmchange import ChangeGroup, ChangeSet, XmlFragments, josm_xml, osmchange_xml


@dataclass(frozen=True)
class Chunk:
    number: int  # 1, 2, … in upload order
    area: str  # the chunk layer's polygon name, or "grid"
    changes: ChangeSet

    @property
    def stem(self) -> str:
        return f"{self.number:03d}"

    @property
    def elements(self) -> int:
        return sum(len(g.objects) for g in self.changes.groups)


@dataclass(frozen=True)
class Area:
    """A polygon of the chunk layer, in EPSG:4326."""

    name: str
    geometry: BaseGeometry


def split_into_chunks(changes: ChangeSet, limit: int, areas: Sequence[Area] = ()) -> list[Chunk]:
    """Chunks of at most `limit` elements (a single decision larger than that stays whole)."""
    parts: list[tuple[str, list[ChangeGroup]]] = []
    remaining = _placed(changes.groups)
    for area in sorted(areas, key=lambda a: a.name):
        inside = _inside(remaining, area.geometry)
        chosen = [g for g, hit in zip(remaining, inside, strict=True) if hit]
        remaining = [g for g, hit in zip(remaining, inside, strict=True) if not hit]
        parts += [(area.name, cell) for cell in _kd_split(chosen, limit)]
    outside = "outside the chunk layer" if areas else "grid"
    parts += [(outside, cell) for cell in _kd_split(remaining, limit)]
    return [Chunk(i, name, changes.subset(cell)) for i, (name, cell) in enumerate(parts, 1)]


@dataclass(frozen=True)
class _Placed:
    """A group with the point that places it (0, 0 without geometry), its size and tie-break,
    computed once rather than at every level of the split."""

    group: ChangeGroup
    x: float
    y: float
    size: int
    key: tuple[int, int]


def _placed(groups: Sequence[ChangeGroup]) -> list[_Placed]:
    geometries = np.array([g.geometry for g in groups] + [None], dtype=object)[:-1]
    points = shapely.point_on_surface(geometries)  # representative_point(), all at once
    empty = shapely.is_empty(geometries)
    xs = np.where(empty, 0.0, shapely.get_x(points)).tolist()
    ys = np.where(empty, 0.0, shapely.get_y(points)).tolist()
    return [_Placed(g, x, y, len(g.objects), _stable_key(g))
            for g, x, y in zip(groups, xs, ys, strict=True)]


def _inside(placed: Sequence[_Placed], polygon: BaseGeometry) -> list[bool]:
    if not placed:
        return []
    x, y = [p.x for p in placed], [p.y for p in placed]
    return [bool(v) for v in shapely.contains_xy(polygon, x, y)]


def _kd_split(placed: list[_Placed], limit: int) -> list[list[ChangeGroup]]:
    total = sum(p.size for p in placed)
    if not placed:
        return []
    if total <= limit or len(placed) == 1:
        return [[p.group for p in placed]]
    xs, ys = [p.x for p in placed], [p.y for p in placed]
    mean_lat = sum(ys) / len(ys)
    width = (max(xs) - min(xs)) * math.cos(math.radians(mean_lat))
    height = max(ys) - min(ys)
    along_x = width >= height
    ordered = sorted(placed, key=lambda p: ((p.x, p.y) if along_x else (p.y, p.x), p.key))
    wanted = math.ceil(total / limit)
    target = total * (wanted // 2) / wanted  # whole chunks on the first side
    cut, running = 0, 0
    while cut < len(ordered) - 1 and running + ordered[cut].size <= target:
        running += ordered[cut].size
        cut += 1
    cut = max(cut, 1)
    return _kd_split(ordered[:cut], limit) + _kd_split(ordered[cut:], limit)


def _stable_key(group: ChangeGroup) -> tuple[int, int]:
    main = group.main
    return (0 if main.id < 0 else 1, abs(main.id))


def chunk_files(chunks: Sequence[Chunk], tags: Mapping[str, str],
                fragments: XmlFragments | None = None,
                josm_tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """`chunks/NNN.osc`, `chunks/NNN.osm` (with the changeset tags JOSM is given, `josm_tags`,
    by default `tags`) and `chunks/index.json`; `fragments`: the objects' XML as the whole
    change files have it."""
    import json

    files: dict[str, str] = {}
    for chunk in chunks:
        files[f"chunks/{chunk.stem}.osc"] = osmchange_xml(chunk.changes, fragments)
        files[f"chunks/{chunk.stem}.osm"] = josm_xml(chunk.changes, josm_tags or tags, fragments)
    files["chunks/index.json"] = json.dumps(chunk_index(chunks, tags), ensure_ascii=False,
                                            indent=2) + "\n"
    return files


def chunk_index(chunks: Sequence[Chunk], tags: Mapping[str, str]) -> dict[str, Any]:
    entries = []
    for chunk in chunks:
        box = chunk.changes.bbox()
        entries.append({
            "number": chunk.number,
            "osc": f"{chunk.stem}.osc",
            "josm": f"{chunk.stem}.osm",
            "area": chunk.area,
            "bbox": [round(v, 7) for v in box] if box else None,
            "elements": chunk.elements,
            "features": len(chunk.changes.groups),
            "counts": chunk.changes.counts(),
            "changeset_tags": dict(tags),
        })
    return {"chunks": len(chunks), "elements": sum(c.elements for c in chunks),
            "changeset_tags": dict(tags), "index": entries}
