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

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from conflation.facts import RunFacts
from conflation.feedback import ReviewerDecision, ReviewerDecisionError, parse_decisions
from conflation.matching import ProjectedOsm, conflate, project_osm
from exports.bundle import UPLOAD_FILES, build_exports, remove_stale_outputs
from exports.review import review_features, review_geojson, review_lines
from exports.screening import refuse_unwritable
from pipeline.background import Background
from pipeline.ingest import SourceLayer, file_digest, ingest, metric_crs_around
from pipeline.kernel import __version__
from pipeline.kernel.atomic import write_atomic
from pipeline.kernel.decisions import Decision, count_decisions, decisions_json
from pipeline.kernel.errors import (
    ExportError,
    InputError,
    InputNotFoundError,
    OsmDataError,
    ProfileError,
    Sig2osmError,
)
from pipeline.kernel.generations import Generation, clean_stale, commit_files
from pipeline.kernel.osm import (
    OSM_DATA_FORMAT,
    OsmData,
    candidate_kinds,
    describe_match,
    suspiciously_empty,
)
from pipeline.kernel.settings import Profile
from pipeline.osm_files import read_osm_file
from pipeline.placement import LOW_PRECISION_M, check_placement
from pipeline.run_lock import RunFolderLock

log = logging.getLogger(__name__)


NETWORK_BUDGET_S = 3 * 3600.0  # a run's network requests, retries and waits included


@dataclass
class RunContext:
    """One run of one profile: where it writes and what overrides the command line gave."""

    profile: Profile
    out: Path
    osm_override: Path | None = None
    refresh: bool = False  # bypass caches (Overpass answers, downloads)
    timings: dict[str, float] = field(default_factory=dict)
    # When every network request of the run must be done (downloads and Overpass together).
    network_ends: float = field(default_factory=lambda: time.monotonic() + NETWORK_BUDGET_S)

    @property
    def run_dir(self) -> Path:
        return self.out / self.profile.name

    @property
    def work(self) -> Path:
        return self.run_dir / "work"

    @property
    def cache(self) -> Path:
        return self.out / ".cache"


# What a folder under <out> holds when sig2osm made it a run folder (older versions: work/ and
# report.json; now also the lock and the generations).
_RUN_FOLDER_MARKS = (".lock", ".current", ".generations", "work", "report.json")
INDEX_LOCK = ".index.lock"


@contextmanager
def run_folder_held(ctx: RunContext, wait: float = 0.0) -> Iterator[None]:
    """This process is the run folder's only writer until the block ends (another run waits
    up to `wait` seconds, then fails naming the holder); what a killed run left is removed."""
    _check_run_folder(ctx)
    with RunFolderLock(ctx.run_dir, wait):
        clean_stale(ctx.run_dir)
        yield


def _check_run_folder(ctx: RunContext) -> None:
    path = ctx.run_dir
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ProfileError(f"name: {ctx.profile.name!r}: {path} exists and is not a folder; "
                           "a run folder cannot take its place. Choose another name or --out.")
    if path.is_dir() and any(path.iterdir()) and not any(
            (path / mark).exists() for mark in _RUN_FOLDER_MARKS):
        raise ProfileError(f"name: {ctx.profile.name!r}: {path} is a folder that sig2osm did not "
                           "make (no work/, report.json or .lock in it); nothing was written. "
                           "Choose another name or --out.")


def _write_index(ctx: RunContext) -> None:
    """<out>/index.html, written by one run at a time (runs of other profiles share it)."""
    from maps.index import write_index

    with RunFolderLock(ctx.out, wait=60.0, file_name=INDEX_LOCK):
        write_index(ctx.out, ctx.profile.map.locale if ctx.profile.map else "fr")


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
    from pipeline.download import DEFAULT_SETTINGS, download_source

    assert src.url is not None
    return download_source(src.url, ctx.cache / "downloads", ctx.profile.name, refresh=ctx.refresh,
                           settings=replace(DEFAULT_SETTINGS, ends_at=ctx.network_ends))


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
            data = osm_from_files(ctx.profile, files)
            if _worth_caching(ctx, files, data):
                _store(ctx, "fetch", key, data.to_json())
    else:
        from pipeline.overpass import DEFAULT_SETTINGS, fetch_from_overpass

        assert layer is not None, "Overpass is asked about the layer's area"
        declared = ctx.profile.match.area or osm.bounds
        if declared and ctx.profile.source.geometry != "none":
            check_where_layer_lies(layer, shapely.box(*declared),
                                   f"the profile's area {list(declared)}")
        # The server may take osm.timeout to answer: each attempt is given that, and the
        # usual silence on top, at least.
        settings = replace(DEFAULT_SETTINGS, ends_at=ctx.network_ends, deadline=max(
            DEFAULT_SETTINGS.deadline, osm.timeout + DEFAULT_SETTINGS.timeout))
        data = fetch_from_overpass(ctx.profile, layer, ctx.cache / "overpass", refresh=ctx.refresh,
                                   settings=settings)
    if data.coverage is None:
        log.warning("fetch: the OSM data declares no area: every source feature will be skipped; "
                    "give osm.bounds in the profile")
    log.info("fetch: %d OSM candidates; area: %s", len(data.elements), data.coverage_origin)
    _timed(ctx, "fetch", started)
    return data


def check_not_empty(profile: Profile, data: OsmData, layer: SourceLayer) -> None:
    """Invariant 4 for recorded Overpass answers, by the rule of the live path: an answer with
    no candidate around a non-trivial layer is an error unless `osm.expect_empty`. (An extract
    holds everything of its area: none there is a fact of OSM, only warned about.)"""
    from pipeline.osm_files import is_overpass_answer

    files = [Path(f) for f in data.meta.get("files", [data.meta.get("file")]) if f]
    if not files or data.elements:
        return
    osm = profile.osm
    names = ", ".join(str(f) for f in files)
    wanted = describe_match(osm.match)
    answers = [f for f in files if f.is_file() and is_overpass_answer(f)]
    if not answers or not suspiciously_empty(0, len(layer.usable), osm.expect_empty):
        log.warning("fetch: %s holds no OSM object matching %s or carrying %s", names, wanted,
                    profile.match.ref or "a ref")
        return
    raise OsmDataError(f"Recorded Overpass answer {names} holds no candidate ({wanted}, or "
                       f"{profile.match.ref or 'a ref key'}) for {len(layer.usable)} usable "
                       "source features. Treating that as 'nothing in OSM' would propose a "
                       "duplicate of everything mapped already: check that the file covers the "
                       "layer and was queried for these tags, or set osm.expect_empty: true if "
                       "OSM really has none there yet.")


# Reading an extract costs about its size, loading the cache about the candidates it holds: a
# file that is mostly candidates (PBF spends a few bytes a node) reads as fast as its cache.
_CACHE_FROM_BYTES_PER_CANDIDATE = 200


def _worth_caching(ctx: RunContext, files: list[Path], data: OsmData) -> bool:
    if len(files) > 1 or ctx.profile.osm.diff:
        return True  # merging extracts and applying diffs is slow whatever the size
    size = sum(f.stat().st_size for f in files if f.is_file())
    return size > _CACHE_FROM_BYTES_PER_CANDIDATE * len(data.elements)


def osm_from_files(profile: Profile, files: list[Path]) -> OsmData:
    """The OSM candidates of local files: one extract or answer, or several read as one with
    the profile's diffs applied."""
    osm = profile.osm
    kinds = candidate_kinds(osm.match, osm.related)
    if len(files) > 1 or osm.diff:
        from pipeline.osm_files import read_osm_files_with_diffs

        return read_osm_files_with_diffs(files, osm.diff or [], kinds, profile.match.ref,
                                         osm.bounds)
    return read_osm_file(files[0], kinds, profile.match.ref, osm.bounds)


def check_where_layer_lies(layer: SourceLayer, area: BaseGeometry, area_label: str) -> None:
    """Stop when the layer is not where `area` is (naming the fix: swapped axes, another CRS);
    warn when part of it lies outside (those features are skipped)."""
    points = [f.geometry.representative_point() for f in layer.usable if f.geometry is not None]
    if not points or layer.sample is None:
        return
    label = layer.info.get("path", "layer") + (f" layer '{layer.info['layer']}'"
                                               if layer.info.get("layer") else "")
    warning = check_placement(np.array([(p.x, p.y) for p in points]), layer.sample, area,
                              area_label, label)
    if warning:
        log.warning("%s", warning)


def run_facts(profile: Profile, layer: SourceLayer) -> RunFacts:
    """What the conflation needs beyond the profile: the reviewers' verdicts and the layer's
    precision."""
    low, note = _precision(profile, layer)
    return RunFacts(reviewer_decisions(profile), low, note)


def _precision(profile: Profile, layer: SourceLayer) -> tuple[bool, str]:
    """Whether the source is low precision (every create or modify reviewed), and why."""
    step = layer.info.get("coordinate_step_m")
    if profile.source.low_precision is not None:
        return profile.source.low_precision, "source.low_precision"
    if layer.info.get("pdf_derived"):
        return True, "a layer extracted from a PDF map"
    if step is not None and step > LOW_PRECISION_M:
        return True, f"coordinates rounded to {step:.0f} m"
    return False, ""


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
    decisions = decide(ctx.profile, layer, osm, projected)
    log.info("conflate: %s", ", ".join(f"{n} {k}" for k, n in count_decisions(decisions).items()))
    _timed(ctx, "conflate", started)
    return decisions


def decide(profile: Profile, layer: SourceLayer, osm: OsmData,
           projected: ProjectedOsm | None = None) -> list[Decision]:
    """One decision per source feature (and `missing` ones), after checking that the layer
    lies where the OSM data is; `run` and `check` both decide through here."""
    check_not_empty(profile, osm, layer)
    if osm.coverage is not None:
        check_where_layer_lies(layer, osm.coverage, f"the area the OSM data covers "
                               f"({osm.coverage_origin})")
    decisions = conflate(layer.features, osm, layer.metric_crs, profile,
                         run_facts(profile, layer), projected)
    _check_reconciles(count_decisions(decisions), layer)
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
    """The export's files as the run folder's new set; the map stage's files stay (the change
    files and chunks of an earlier export do not: this export wrote its own, or has nothing to
    upload)."""
    commit_files(ctx.run_dir, files,
                 keep=lambda name: not (name.startswith("chunks/") or name in UPLOAD_FILES))
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
            "low_precision": _precision(profile, layer)[0],
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
    from maps.publish import REVIEWER_PAGE, map_files

    started = time.perf_counter()
    text, collection = _read_review_file(ctx.run_dir / REVIEW_FILE)
    if ctx.profile.map is not None and layer is None:
        layer = run_ingest(ctx)
    commit_files(ctx.run_dir, map_files(ctx.profile, collection, text,
                                        layer.to_json() if layer is not None else None),
                 keep=lambda name: True)
    _write_index(ctx)
    _timed(ctx, "map", started)
    log.info("map: %d features on %s", len(collection["features"]), ctx.run_dir / REVIEWER_PAGE)
    return ctx.run_dir / REVIEWER_PAGE


def _read_review_file(review: Path) -> tuple[str, dict[str, Any]]:
    """review.geojson as text and as a feature collection; a missing, cut or foreign file is
    an error naming it."""
    if not review.is_file():
        raise ExportError(f"{review}: no review file yet; run 'sig2osm export' first.")
    try:
        text = review.read_text(encoding="utf-8")
        collection = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{review}: not a complete review file ({exc}); run 'sig2osm export' "
                          "again to rewrite it.") from exc
    features = collection.get("features") if isinstance(collection, dict) else None
    if not isinstance(features, list) or not all(
            isinstance(f, dict) and isinstance(f.get("properties"), dict) for f in features):
        raise ExportError(f"{review}: not a review file written by sig2osm (expected a GeoJSON "
                          "FeatureCollection with properties); run 'sig2osm export' again.")
    return text, collection


def run_all(ctx: RunContext) -> dict[str, Any]:
    """Every stage. The reviewers' view (review.geojson and the maps) needs only the decisions,
    so a second process builds and writes it while this one builds, checks and writes the change
    files, both into a new generation of the run folder, made current once both have
    succeeded (`pipeline.kernel.generations`)."""
    with _without_cycle_collection():
        return _run_stages(ctx)  # its data is freed before the collector is back


def _run_stages(ctx: RunContext) -> dict[str, Any]:
    layer, osm, projected = _layer_and_osm(ctx)
    decisions = run_conflate(ctx, layer, osm, projected)
    del projected  # the conflation's index: freed before the export builds its files
    generation = Generation(ctx.run_dir)  # both processes write there; current at the end
    side = Background(partial(_stage_review_files, ctx, layer, decisions, generation),
                      "review and map")
    try:
        report, files, _ = export_files(ctx, layer, osm, decisions)
        generation.write(files)
        side.result()
    except BaseException:
        side.cancel()  # if still running
        generation.discard()
        raise
    generation.commit()
    remove_stale_outputs(ctx.run_dir, files)
    (ctx.run_dir / DECISION_TABLE).unlink(missing_ok=True)  # an earlier conflate's, stale
    _write_index(ctx)
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
                        generation: Generation) -> None:
    """review.geojson and the map pages, from the decisions as the export writes them (after
    refusing unwritable changes; the export, in the other process, refuses the same ones)."""
    from maps.publish import REVIEWER_PAGE, map_files

    features = review_features(refuse_unwritable(decisions))
    text = review_lines(features)
    files = map_files(ctx.profile, {"type": "FeatureCollection", "features": features}, text,
                      layer.to_json() if ctx.profile.map is not None else None)
    files[REVIEW_FILE] = text
    generation.write(files)
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
