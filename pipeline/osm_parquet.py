"""The OSM candidates of an extract as GeoParquet, for runs on a cluster (`--workers`,
`--scheduler`): a country's `.osm.pbf` is read once with libosmium, filtered to the profile's
candidates, and kept under `<out>/.cache/osm/<key>/`, one folder per tile of
`TILE_DEGREES`° (`tile=<n>/part.parquet`, a partitioned GeoParquet dataset any GIS reader
opens), beside `_osm.json` (the area the data covers, where it comes from, and the objects the
candidates refer to). The key holds the extracts' and diffs' digests and what is filtered
(`osm.match`, `osm.related`, `match.ref`, `osm.bounds`): a later run, of this profile or of
another with the same OSM section, loads the candidates in seconds instead of reading the
extract again. Written whole into a temporary folder, then renamed: a killed run leaves no
half cache behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.kernel.osm import OsmData, OsmElement

log = logging.getLogger(__name__)

TILE_DEGREES = 0.25  # a tile of the cache: about 28 × 18 km in France
PARQUET_FORMAT = 1
_SIDECAR = "_osm.json"  # "_": not a part of the dataset for GeoParquet readers


def cache_folder(cache: Path, key: object) -> Path:
    text = json.dumps([PARQUET_FORMAT, key], sort_keys=True, default=str)
    return cache / "osm" / hashlib.sha256(text.encode()).hexdigest()[:24]


def load(folder: Path) -> OsmData | None:
    """The candidates kept in `folder`, or None when there is no such cache."""
    sidecar = folder / _SIDECAR
    if not sidecar.is_file():
        return None
    import geopandas as gpd  # heavy: only for a run on a cluster

    header = OsmData.from_json(json.loads(sidecar.read_text(encoding="utf-8")))
    parts = sorted(folder.glob("tile=*/part.parquet"))
    frames = [gpd.read_parquet(part) for part in parts]
    elements = [element for frame in frames for element in _elements(frame)]
    elements.sort(key=lambda e: (("node", "way", "relation").index(e.type), e.id))
    log.info("fetch: %d OSM candidates from the GeoParquet cache %s (%d tiles)", len(elements),
             folder, len(parts))
    return OsmData(tuple(elements), header.coverage, header.coverage_origin, header.meta,
                   header.context)


def store(data: OsmData, folder: Path) -> None:
    """Keep `data` in `folder` as GeoParquet partitioned by tile (see the module text)."""
    import geopandas as gpd

    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        frame = gpd.GeoDataFrame(_columns(data.elements), geometry="geometry", crs="EPSG:4326")
        for tile, rows in frame.groupby("tile", sort=True):
            part = building / f"tile={tile}" / "part.parquet"
            part.parent.mkdir()
            rows.drop(columns="tile").to_parquet(part, index=False)
        header = OsmData((), data.coverage, data.coverage_origin, data.meta, data.context)
        (building / _SIDECAR).write_text(json.dumps(header.to_json()), encoding="utf-8")
        try:
            building.rename(folder)
        except OSError:  # another run stored the same candidates meanwhile: theirs stands
            shutil.rmtree(building, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    log.info("fetch: %d OSM candidates kept as GeoParquet in %s", len(data.elements), folder)


def _tile(geometry: Any) -> int:
    """The tile of a geometry's centre: rows of 1 440 tiles from the south-west of the world."""
    if geometry is None:
        return -1
    west, south, east, north = geometry.bounds
    column = math.floor(((west + east) / 2 + 180) / TILE_DEGREES)
    row = math.floor(((south + north) / 2 + 90) / TILE_DEGREES)
    return row * round(360 / TILE_DEGREES) + column


def _columns(elements: tuple[OsmElement, ...]) -> dict[str, Any]:
    return {
        "type": [e.type for e in elements],
        "id": np.array([e.id for e in elements], dtype=np.int64),
        "version": np.array([e.version for e in elements], dtype=np.int64),
        "tags": [json.dumps(e.tags, ensure_ascii=False) for e in elements],
        "nodes": [json.dumps(list(e.nodes)) if e.nodes else "" for e in elements],
        "members": [json.dumps([list(m) for m in e.members]) if e.members else ""
                    for e in elements],
        "tile": [_tile(e.geometry) for e in elements],
        "geometry": np.array([*(e.geometry for e in elements), None], dtype=object)[:-1],
    }


def _elements(frame: Any) -> list[OsmElement]:
    geometries = list(frame.geometry)
    return [
        OsmElement(kind, int(ident), int(version), json.loads(tags), geometry,
                   tuple(json.loads(nodes)) if nodes else (),
                   tuple((m[0], int(m[1]), m[2]) for m in json.loads(members)) if members else ())
        for kind, ident, version, tags, nodes, members, geometry in zip(
            frame["type"], frame["id"].tolist(), frame["version"].tolist(), frame["tags"],
            frame["nodes"], frame["members"], geometries, strict=True)]
