"""The stage runner: ingest → fetch → conflate → export → map, each writing into the run folder.

Every stage saves its result under `<out>/<name>/work/` with a key made of its inputs (profile
section, file digests, the previous stage's result); a stage whose key did not change is loaded
instead of recomputed, so a stage can run alone and re-runs are cheap.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from conflation.decisions import Decision, count_decisions, decisions_json
from conflation.feedback import ReviewerDecision, ReviewerDecisionError, parse_decisions
from conflation.matching import MatchSettings, ProjectedOsm, conflate, project_osm
from exports.atomic import Staging, write_all_atomic, write_atomic
from exports.bundle import build_exports, remove_stale_outputs
from exports.review import review_features, review_geojson, review_lines
from exports.screening import refuse_unwritable
from pipeline import __version__
from pipeline.background import Background
from pipeline.errors import ExportError, InputError, InputNotFoundError, Sig2osmError
from pipeline.ingest import SourceLayer, file_digest, ingest, metric_crs_around
from pipeline.osm_files import read_osm_file
from pipeline.osm_model import OSM_DATA_FORMAT, OsmData
from pipeline.profile import Profile

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """One run of one profile: where it writes and what overrides the command line gave."""

    profile: Profile
    out: Path
    osm_override: Path | None = None
    refresh: bool = False  # bypass caches (Overpass answers, downloads)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.out / self.profile.name

    @property
    def work(self) -> Path:
        return self.run_dir / "work"

    @property
    def cache(self) -> Path:
        return self.out / ".cache"


def _key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(ctx: RunContext, stage: str, key: str) -> dict[str, Any] | None:
    result = ctx.work / f"{stage}.json"
    stamp = ctx.work / f"{stage}.key"
    if result.is_file() and stamp.is_file() and stamp.read_text() == key and not ctx.refresh:
        log.debug("%s: inputs unchanged, reusing %s", stage, result)
        data: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
        return data
    return None


def _store(ctx: RunContext, stage: str, key: str, data: dict[str, Any]) -> None:
    write_atomic(ctx.work / f"{stage}.json", json.dumps(data, ensure_ascii=False))
    write_atomic(ctx.work / f"{stage}.key", key)


def _timed(ctx: RunContext, stage: str, started: float) -> None:
    ctx.timings[stage] = round(time.perf_counter() - started, 3)


# --- stages ----------------------------------------------------------------------------------


def source_path(ctx: RunContext) -> Path:
    """The local file of the source layer, downloading `source.url` when the profile gives one."""
    src = ctx.profile.source
    if src.path is not None:
        return src.path
    from pipeline.download import download_source

    assert src.url is not None
    return download_source(src.url, ctx.cache / "downloads", ctx.profile.name, refresh=ctx.refresh)


def run_ingest(ctx: RunContext) -> SourceLayer:
    started = time.perf_counter()
    path = source_path(ctx)
    digest = file_digest(path) if path.is_file() else {"path": str(path)}
    key = _key("ingest", __version__, asdict(ctx.profile.source), ctx.profile.tags,
               ctx.profile.values, digest)
    cached = _cached(ctx, "ingest", key)
    if cached is not None:
        layer = SourceLayer.from_json(cached)
    else:
        layer = ingest(ctx.profile, path)
        if ctx.profile.source.url:
            layer.info["url"] = ctx.profile.source.url
        _store(ctx, "ingest", key, layer.to_json())
    skipped = len(layer.features) - len(layer.usable)
    log.info("ingest: %d source features (%d usable, %d skipped) from %s", len(layer.features),
             len(layer.usable), skipped, path)
    _timed(ctx, "ingest", started)
    return layer


def _osm_files(ctx: RunContext) -> list[Path]:
    """The local OSM files of the run (none: Overpass)."""
    return [ctx.osm_override] if ctx.osm_override else list(ctx.profile.osm.file or [])


def run_fetch(ctx: RunContext, layer: SourceLayer | None) -> OsmData:
    """The OSM candidates; `layer` (for the area to ask Overpass about) may be None when the
    data comes from local files."""
    started = time.perf_counter()
    osm = ctx.profile.osm
    files = _osm_files(ctx)
    match_ref = ctx.profile.match.ref
    if files:
        digests = [file_digest(f) if f.is_file() else {"path": str(f)} for f in files]
        key = _key("fetch", __version__, OSM_DATA_FORMAT, asdict(osm), match_ref, digests, [
            file_digest(d) for d in (osm.diff or []) if d.is_file()])
        cached = _cached(ctx, "fetch", key)
        if cached is not None:
            data = OsmData.from_json(cached)
        else:
            data = _read_local(ctx, files)
            if _worth_caching(ctx, files, data):
                _store(ctx, "fetch", key, data.to_json())
        if not data.elements:
            log.warning("fetch: %s holds no OSM object matching osm.match or carrying %s",
                        ", ".join(str(f) for f in files), match_ref or "a ref")
    else:
        from pipeline.overpass import fetch_from_overpass

        assert layer is not None, "Overpass is asked about the layer's area"
        data = fetch_from_overpass(ctx.profile, layer, ctx.cache / "overpass", refresh=ctx.refresh)
    if data.coverage is None:
        log.warning("fetch: the OSM data declares no area: every source feature will be skipped; "
                    "give osm.bounds in the profile")
    log.info("fetch: %d OSM candidates; area: %s", len(data.elements), data.coverage_origin)
    _timed(ctx, "fetch", started)
    return data


# Reading an extract costs about its size, loading the cache about the candidates it holds: a
# file that is mostly candidates (PBF spends a few bytes a node) reads as fast as its cache.
_CACHE_FROM_BYTES_PER_CANDIDATE = 200


def _worth_caching(ctx: RunContext, files: list[Path], data: OsmData) -> bool:
    if len(files) > 1 or ctx.profile.osm.diff:
        return True  # merging extracts and applying diffs is slow whatever the size
    size = sum(f.stat().st_size for f in files if f.is_file())
    return size > _CACHE_FROM_BYTES_PER_CANDIDATE * len(data.elements)


def _read_local(ctx: RunContext, files: list[Path]) -> OsmData:
    osm = ctx.profile.osm
    if len(files) > 1 or osm.diff:
        from pipeline.osm_files import read_osm_files_with_diffs

        return read_osm_files_with_diffs(files, osm.diff or [], osm.match, ctx.profile.match.ref,
                                         osm.bounds)
    return read_osm_file(files[0], osm.match, ctx.profile.match.ref, osm.bounds)


def match_settings(profile: Profile, layer: SourceLayer) -> MatchSettings:
    low = profile.source.low_precision
    if low is None:
        low = bool(layer.info.get("pdf_derived"))
    m = profile.match
    return MatchSettings(distance=m.distance, ref_key=m.ref, authoritative=tuple(m.authoritative),
                         policies=dict(m.policies), removable=tuple(m.remove), low_precision=low,
                         match_threshold=m.match_threshold, review_threshold=m.review_threshold,
                         review_margin=m.review_margin, radii=dict(m.radii),
                         label_keys=tuple(m.labels),
                         by_name=profile.source.geometry == "none",
                         area=_box(m.area or profile.osm.bounds))


def _box(values: list[float] | None) -> tuple[float, float, float, float] | None:
    if not values:
        return None
    west, south, east, north = values
    return west, south, east, north


def reviewer_decisions(profile: Profile) -> dict[str, ReviewerDecision]:
    """The reviewers' verdicts of earlier runs (`match.decisions`, YAML or CSV), by source id."""
    path = profile.match.decisions
    if path is None:
        return {}
    if not path.is_file():
        raise InputNotFoundError(f"Decisions file {path} (match.decisions): no such file.")
    kind = "csv" if path.suffix.lower() == ".csv" else "yaml"
    try:
        return parse_decisions(path.read_text(encoding="utf-8"), kind, str(path))
    except (ReviewerDecisionError, UnicodeDecodeError) as exc:
        raise InputError(f"Decisions file {path} (match.decisions): {exc}.") from exc


def run_conflate(ctx: RunContext, layer: SourceLayer, osm: OsmData,
                 projected: ProjectedOsm | None = None) -> list[Decision]:
    """`projected`: the OSM candidates already projected (see `conflation.matching`)."""
    started = time.perf_counter()
    settings = replace(match_settings(ctx.profile, layer),
                       reviewer=reviewer_decisions(ctx.profile))
    decisions = conflate(layer.features, osm, layer.metric_crs, settings, projected)
    counts = count_decisions(decisions)
    _check_reconciles(counts, layer)
    log.info("conflate: %s", ", ".join(f"{n} {k}" for k, n in counts.items()))
    _timed(ctx, "conflate", started)
    return decisions


# What `sig2osm conflate` writes: every field of every decision. `run` hands the decisions to
# the export in memory (review.geojson shows them) and does not spend time and space on it.
DECISION_TABLE = "work/conflate.json"


def decision_table(decisions: list[Decision]) -> str:
    return json.dumps(decisions_json(decisions), ensure_ascii=False)


def _check_reconciles(counts: dict[str, int], layer: SourceLayer) -> None:
    accounted = sum(n for k, n in counts.items() if k != "missing")
    if accounted != len(layer.features):
        raise ExportError(f"decisions cover {accounted} source features but the layer has "
                          f"{len(layer.features)}; nothing was written.")


REVIEW_FILE = "review.geojson"


def run_export(ctx: RunContext, layer: SourceLayer, osm: OsmData,
               decisions: list[Decision]) -> dict[str, Any]:
    """Build every output in memory, validate it, then write all files atomically."""
    report, files, written = export_files(ctx, layer, osm, decisions)
    files[REVIEW_FILE] = review_geojson(written)
    _write_outputs(ctx, files)
    return report


def export_files(ctx: RunContext, layer: SourceLayer, osm: OsmData, decisions: list[Decision]
                 ) -> tuple[dict[str, Any], dict[str, str], list[Decision]]:
    """report.json's content and every file of the export stage but review.geojson (see
    `run_export`), built and validated; and the decisions as written (unwritable changes
    refused)."""
    started = time.perf_counter()
    result = build_exports(ctx.profile, layer.info, osm, decisions)
    changes = result.changes
    counts = count_decisions(result.decisions)  # unwritable changes became skip or review
    _check_reconciles(counts, layer)
    _timed(ctx, "export", started)
    report = build_report(ctx, layer, osm, counts, len(changes.creates), len(changes.modifies))
    report["exports"] = result.summary()
    files = {**result.files,
             "report.json": json.dumps(report, ensure_ascii=False, indent=2) + "\n"}
    log.info("export: %d objects created, %d modified, in %s (%d chunks, %d MapRoulette tasks)",
             len(changes.creates), len(changes.modifies), ctx.run_dir, len(result.chunks),
             len(changes.groups))
    return report, files, result.decisions


def _write_outputs(ctx: RunContext, files: dict[str, str]) -> None:
    write_all_atomic(ctx.run_dir, files)
    remove_stale_outputs(ctx.run_dir, files)


def build_report(ctx: RunContext, layer: SourceLayer, osm: OsmData, counts: dict[str, int],
                 created: int, modified: int) -> dict[str, Any]:
    from importlib.metadata import version

    import osmium
    import pyogrio
    import shapely

    osm_inputs = []
    for name in ("file",):
        if osm.meta.get(name):
            path = Path(osm.meta[name])
            osm_inputs.append(file_digest(path) if path.is_file() else {"path": str(path)})
    profile = ctx.profile
    return {
        "name": profile.name,
        "counts": counts,
        "source_features": len(layer.features),
        "osm_objects": {"created": created, "modified": modified},
        "inputs": {
            "profile": file_digest(profile.path) if profile.path else None,
            "source": layer.info,
            "osm": osm_inputs,
        },
        "osm": {
            "candidates": len(osm.elements),
            "area": osm.coverage_origin,
            "area_bounds": list(osm.coverage.bounds) if osm.coverage is not None else None,
            **{k: v for k, v in osm.meta.items() if k != "file"},
        },
        "parameters": {
            "metric_crs": layer.metric_crs,
            "match": asdict(profile.match),
            "osm_match": profile.osm.match,
            "tags": profile.tags,
            "low_precision": match_settings(profile, layer).low_precision,
        },
        "timings_s": dict(ctx.timings),
        "versions": {
            "sig2osm": __version__,
            "python": platform.python_version(),
            "pyosmium": getattr(osmium, "__version__", "unknown"),
            "geopandas": version("geopandas"),  # not imported here when ingest ran on the side
            "shapely": shapely.__version__,
            "gdal": pyogrio.__gdal_version_string__,
        },
    }


def run_map(ctx: RunContext, layer: SourceLayer | None = None) -> Path:
    """map.html; with a `map:` section also council-map.html, its GeoJSON and map.umap; and
    <out>/index.html listing every run."""
    from maps.index import write_index
    from maps.publish import REVIEWER_PAGE, map_files

    started = time.perf_counter()
    review = ctx.run_dir / REVIEW_FILE
    if not review.is_file():
        raise ExportError(f"{review}: no review file yet; run 'sig2osm export' first.")
    text = review.read_text(encoding="utf-8")
    collection = json.loads(text)
    if ctx.profile.map is not None and layer is None:
        layer = run_ingest(ctx)
    write_all_atomic(ctx.run_dir, map_files(ctx.profile, collection, text,
                                            layer.to_json() if layer is not None else None))
    write_index(ctx.out, ctx.profile.map.locale if ctx.profile.map else "fr")
    _timed(ctx, "map", started)
    log.info("map: %d features on %s", len(collection["features"]), ctx.run_dir / REVIEWER_PAGE)
    return ctx.run_dir / REVIEWER_PAGE


def run_all(ctx: RunContext) -> dict[str, Any]:
    """Every stage. The reviewers' view (review.geojson and the maps) needs only the decisions,
    so a second process builds and writes it while this one builds, checks and writes the change
    files, both into a staging folder; the files move into place once both have succeeded."""
    with _without_cycle_collection():
        return _run_stages(ctx)  # its data is freed before the collector is back


def _run_stages(ctx: RunContext) -> dict[str, Any]:
    from maps.index import write_index  # not maps.publish: Folium is imported where it is used

    layer, osm, projected = _layer_and_osm(ctx)
    decisions = run_conflate(ctx, layer, osm, projected)
    del projected  # the conflation's index: freed before the export builds its files
    staging = Staging(ctx.run_dir)  # both processes write there; moved into place at the end
    side = Background(partial(_stage_review_files, ctx, layer, decisions, staging),
                      "review and map")
    try:
        report, files, _ = export_files(ctx, layer, osm, decisions)
        staging.write(files)
        side.result()
    except BaseException:
        side.cancel()  # if still running
        staging.discard()
        raise
    staging.commit()
    remove_stale_outputs(ctx.run_dir, files)
    (ctx.run_dir / DECISION_TABLE).unlink(missing_ok=True)  # an earlier conflate's, stale
    write_index(ctx.out, ctx.profile.map.locale if ctx.profile.map else "fr")
    return report


def _layer_and_osm(ctx: RunContext) -> tuple[SourceLayer, OsmData, ProjectedOsm | None]:
    """Ingest, then fetch; a local extract does not depend on the layer, so a second process
    reads the layer while this one reads the extract, then projects it for the conflation."""
    if not _osm_files(ctx):
        layer = run_ingest(ctx)
        return layer, run_fetch(ctx, layer), None
    reading = Background(partial(_ingest_and_time, ctx), "ingest")
    try:
        try:
            osm = run_fetch(ctx, None)
        except Sig2osmError:
            reading.result()  # a layer error first, as when the stages run in turn
            raise
        # Reading the layer takes longer (geopandas is imported for it): meanwhile, project the
        # candidates to the metric CRS the layer will most likely get, that of the OSM area.
        # The conflation uses the projection only if the layer's CRS is that one.
        projected = (project_osm(osm, metric_crs_around([osm.coverage]))
                     if osm.coverage is not None and osm.elements else None)
        layer, ctx.timings["ingest"] = reading.result()
    finally:
        reading.cancel()  # only if still running: the fetch failed
    return layer, osm, projected


def _ingest_and_time(ctx: RunContext) -> tuple[SourceLayer, float]:
    layer = run_ingest(ctx)
    return layer, ctx.timings["ingest"]


def _stage_review_files(ctx: RunContext, layer: SourceLayer, decisions: list[Decision],
                        staging: Staging) -> None:
    """review.geojson and the map pages, from the decisions as the export writes them (after
    refusing unwritable changes; the export, in the other process, refuses the same ones)."""
    from maps.publish import REVIEWER_PAGE, map_files

    features = review_features(refuse_unwritable(decisions))
    text = review_lines(features)
    files = map_files(ctx.profile, {"type": "FeatureCollection", "features": features}, text,
                      layer.to_json() if ctx.profile.map is not None else None)
    files[REVIEW_FILE] = text
    staging.write(files)
    log.info("map: %d features on %s", len(features), ctx.run_dir / REVIEWER_PAGE)


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """A run allocates millions of small objects that reference counting frees; Python's cycle
    collector would scan the live ones over and over (a tenth of a run's time) to find none."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
