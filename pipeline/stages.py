"""The stages of a run as functions: each takes the run's context and the values of the stages
it needs, and returns its own value; none writes into the run folder (the runner does, see
`pipeline.graph` for how they connect and `pipeline.runner` for how they are run).

    read_layer      the source layer (downloaded first for `source.url`) → `SourceLayer`
    fetch_osm       OSM candidates of a local extract or Overpass → `OsmData`
    project_candidates  the candidates in a metric CRS, ahead of the conflation
    decide_stage    one decision per source feature (`conflation`) → decisions
    export_stage    change files, chunks, tasks, report, import plan, read back through pyosmium
    review_stage    review.geojson
    context_stage   the maps' background (streets, buildings, water) around the features
    maps_stage      the reviewer map, and the council map with a `map:` section

`check` decides through the same functions (`decide`, `osm_from_files`).
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import shapely
from shapely.geometry.base import BaseGeometry

from conflation.facts import RunFacts
from conflation.feedback import ReviewerDecision, ReviewerDecisionError, parse_decisions
from conflation.matching import ProjectedOsm, conflate, project_osm
from exports.bundle import build_exports
from exports.review import review_features, review_lines
from exports.screening import refuse_unwritable
from pipeline import osm_parquet
from pipeline.distributed import ClusterSettings, conflate_on_cluster, connected
from pipeline.ingest import SourceLayer, file_digest, ingest, metric_crs_around
from pipeline.kernel import __version__
from pipeline.kernel.decisions import Decision, count_decisions, decisions_json
from pipeline.kernel.errors import ExportError, InputError, InputNotFoundError, OsmDataError
from pipeline.kernel.osm import (
    OSM_DATA_FORMAT,
    OsmData,
    candidate_kinds,
    describe_match,
    suspiciously_empty,
)
from pipeline.kernel.reasons import Reason, reason
from pipeline.kernel.settings import Profile
from pipeline.map_context import MapContext, context_from_files, context_from_overpass, map_box
from pipeline.osm_files import is_overpass_answer, read_osm_file, read_osm_files_with_diffs
from pipeline.placement import LOW_PRECISION_M, check_placement
from pipeline.readback import validate_file

log = logging.getLogger(__name__)

NETWORK_BUDGET_S = 3 * 3600.0  # a run's network requests, retries and waits included
REVIEW_FILE = "review.geojson"


@dataclass
class RunContext:
    """One run of one profile: where it writes and what overrides the command line gave."""

    profile: Profile
    out: Path
    osm_override: Path | None = None
    refresh: bool = False  # bypass caches (stage results, Overpass answers, downloads)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, by the runner
    cluster: ClusterSettings | None = None  # conflate on Dask (--workers, --scheduler)
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


def _digest(path: Path) -> dict[str, Any]:
    return file_digest(path) if path.is_file() else {"path": str(path)}


# --- layer ---------------------------------------------------------------------------------


def source_path(ctx: RunContext) -> Path:
    """The local file of the source layer, downloading `source.url` when the profile gives one
    (the download is cached: asking again costs nothing)."""
    src = ctx.profile.source
    if src.path is not None:
        return src.path
    from pipeline.download import DEFAULT_SETTINGS, download_source  # requests: on demand

    assert src.url is not None
    return download_source(src.url, ctx.cache / "downloads", ctx.profile.name, refresh=ctx.refresh,
                           settings=replace(DEFAULT_SETTINGS, ends_at=ctx.network_ends))


def layer_key(ctx: RunContext) -> object:
    p = ctx.profile
    return (asdict(p.source), p.tags, p.values, asdict(p.map) if p.map else None,
            _digest(source_path(ctx)))


def read_layer(ctx: RunContext) -> SourceLayer:
    path = source_path(ctx)
    layer = ingest(ctx.profile, path)
    if ctx.profile.source.url:
        layer.info["url"] = ctx.profile.source.url
    skipped = len(layer.features) - len(layer.usable)
    log.info("ingest: %d source features (%d usable, %d skipped) from %s", len(layer.features),
             len(layer.usable), skipped, path)
    return layer


def layer_json(layer: SourceLayer) -> dict[str, Any]:
    return layer.to_json()


def layer_from_json(data: dict[str, Any]) -> SourceLayer:
    return SourceLayer.from_json(data)


# --- osm -----------------------------------------------------------------------------------


def osm_files(ctx: RunContext) -> list[Path]:
    """The local OSM files of the run (none: Overpass)."""
    return [ctx.osm_override] if ctx.osm_override else list(ctx.profile.osm.file or [])


def osm_inputs(ctx: RunContext) -> tuple[str, ...]:
    """Overpass is asked about the layer's area; a local extract needs nothing."""
    return () if osm_files(ctx) else ("ingest",)


def osm_key(ctx: RunContext) -> object | None:
    """Local files: their digests; Overpass: None (its answers are cached by request)."""
    files = osm_files(ctx)
    if not files:
        return None
    osm = ctx.profile.osm
    return (OSM_DATA_FORMAT, asdict(osm), ctx.profile.match.ref, [_digest(f) for f in files],
            [_digest(d) for d in osm.diff or []])


def osm_value_key(data: OsmData) -> object:
    return data.meta.get("answers_sha256") or data.meta.get("query")


def fetch_osm(ctx: RunContext, layer: SourceLayer | None = None) -> OsmData:
    """The OSM candidates: local files, or Overpass around the layer."""
    files = osm_files(ctx)
    if files and ctx.cluster is not None:
        data = _osm_from_parquet_cache(ctx, files)
    elif files:
        data = osm_from_files(ctx.profile, files)
    else:
        assert layer is not None, "Overpass is asked about the layer's area"
        data = _fetch_from_overpass(ctx, layer)
    if data.coverage is None:
        log.warning("fetch: the OSM data declares no area: every source feature will be skipped; "
                    "give osm.bounds in the profile")
    log.info("fetch: %d OSM candidates; area: %s", len(data.elements), data.coverage_origin)
    return data


def _osm_from_parquet_cache(ctx: RunContext, files: list[Path]) -> OsmData:
    """A run on a cluster keeps an extract's candidates as GeoParquet (`pipeline.osm_parquet`),
    for every later run and profile with the same OSM section."""
    osm = ctx.profile.osm
    key = (OSM_DATA_FORMAT, candidate_kinds(osm.match, osm.related), ctx.profile.match.ref,
           osm.bounds, [file_digest(f)["sha256"] for f in files],
           [file_digest(d)["sha256"] for d in osm.diff or []])
    folder = osm_parquet.cache_folder(ctx.cache, key)
    data = None if ctx.refresh else osm_parquet.load(folder)
    if data is None:
        data = osm_from_files(ctx.profile, files)
        if ctx.refresh:
            shutil.rmtree(folder, ignore_errors=True)
        osm_parquet.store(data, folder)
    return data


def _fetch_from_overpass(ctx: RunContext, layer: SourceLayer) -> OsmData:
    from pipeline.overpass import DEFAULT_SETTINGS, fetch_from_overpass  # requests: on demand

    osm = ctx.profile.osm
    declared = ctx.profile.match.area or osm.bounds
    if declared and ctx.profile.source.geometry != "none":
        check_where_layer_lies(layer, shapely.box(*declared),
                               f"the profile's area {list(declared)}")
    # The server may take osm.timeout to answer: each attempt is given that, and the usual
    # silence on top, at least.
    settings = replace(DEFAULT_SETTINGS, ends_at=ctx.network_ends, deadline=max(
        DEFAULT_SETTINGS.deadline, osm.timeout + DEFAULT_SETTINGS.timeout))
    return fetch_from_overpass(ctx.profile, layer, ctx.cache / "overpass", refresh=ctx.refresh,
                               settings=settings)


def osm_json(data: OsmData) -> dict[str, Any]:
    return data.to_json()


def osm_from_json(data: dict[str, Any]) -> OsmData:
    return OsmData.from_json(data)


def project_candidates(ctx: RunContext, osm: OsmData) -> ProjectedOsm | None:
    """The candidates in the metric CRS the layer will most likely get (that of the OSM area):
    built while the layer is still being read, used by the conflation if the layer's CRS is that
    one."""
    if osm.coverage is None or not osm.elements:
        return None
    return project_osm(osm, metric_crs_around([osm.coverage]))


# --- checks of a run's data ------------------------------------------------------------


def check_not_empty(profile: Profile, data: OsmData, layer: SourceLayer) -> None:
    """Invariant 4 for recorded Overpass answers, by the rule of the live path: an answer with
    no candidate around a non-trivial layer is an error unless `osm.expect_empty`. (An extract
    holds everything of its area: none there is a fact of OSM, only warned about.)"""
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


def osm_worth_saving(ctx: RunContext, data: OsmData) -> bool:
    files = osm_files(ctx)
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


def _precision(profile: Profile, layer: SourceLayer) -> tuple[bool, Reason | None]:
    """Whether the source is low precision (every create or modify reviewed), and why."""
    step = layer.info.get("coordinate_step_m")
    if profile.source.low_precision is not None:
        return profile.source.low_precision, reason("precision_profile")
    if layer.info.get("pdf_derived"):
        return True, reason("precision_pdf")
    if step is not None and step > LOW_PRECISION_M:
        return True, reason("precision_rounded", step=float(step))
    return False, None


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



# --- decisions -----------------------------------------------------------------------------


def decisions_key(ctx: RunContext) -> object:
    p = ctx.profile
    verdicts = p.match.decisions
    return (asdict(p.match), p.osm.match, p.osm.related, p.osm.bounds, p.source.geometry,
            p.source.low_precision, _digest(verdicts) if verdicts else None)


def decide_stage(ctx: RunContext, layer: SourceLayer, osm: OsmData,
                 projected: ProjectedOsm | None) -> list[Decision]:
    decisions = decide(ctx.profile, layer, osm, projected, ctx.cluster)
    log.info("conflate: %s", ", ".join(f"{n} {k}" for k, n in count_decisions(decisions).items()))
    return decisions


def decide(profile: Profile, layer: SourceLayer, osm: OsmData,
           projected: ProjectedOsm | None = None, cluster: ClusterSettings | None = None
           ) -> list[Decision]:
    """One decision per source feature (and `missing` ones), after checking that the layer
    lies where the OSM data is; `run` and `check` both decide through here. With `cluster`,
    region by region on a Dask cluster (`pipeline.distributed`): the same decisions."""
    check_not_empty(profile, osm, layer)
    if osm.coverage is not None:
        check_where_layer_lies(layer, osm.coverage, f"the area the OSM data covers "
                               f"({osm.coverage_origin})")
    facts = run_facts(profile, layer)
    if cluster is None:
        decisions = conflate(layer.features, osm, layer.metric_crs, profile, facts, projected)
    else:
        with connected(cluster) as client:
            decisions = conflate_on_cluster(client, layer.features, osm, layer.metric_crs,
                                            profile, facts, cluster.tile_m)
    _check_reconciles(count_decisions(decisions), layer)
    return decisions


def decisions_json_of(decisions: list[Decision]) -> list[dict[str, Any]]:
    return decisions_json(decisions)


def decisions_from_json(data: list[dict[str, Any]]) -> list[Decision]:
    return [Decision.from_json(d) for d in data]



def _check_reconciles(counts: dict[str, int], layer: SourceLayer) -> None:
    accounted = sum(n for k, n in counts.items() if k != "missing")
    if accounted != len(layer.features):
        raise ExportError(f"decisions cover {accounted} source features but the layer has "
                          f"{len(layer.features)}; nothing was written.")



def build_report(ctx: RunContext, layer: SourceLayer, osm: OsmData, counts: dict[str, int],
                 created: int, modified: int) -> dict[str, Any]:
    osm_inputs = []
    for name in ("file",):
        if osm.meta.get(name):
            path = Path(osm.meta[name])
            osm_inputs.append(_digest(path))
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
            "gdal": layer.gdal,  # known where the layer was read
        },
    }




# --- export, review, maps ------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    report: dict[str, Any]  # report.json's content
    files: dict[str, str]  # every file of the export (report.json included)


def export_stage(ctx: RunContext, layer: SourceLayer, osm: OsmData,
                 decisions: list[Decision]) -> Export:
    """Every change file, chunk, task and plan built and checked in memory, the change files
    read back through pyosmium: a failure leaves earlier outputs intact."""
    started = time.perf_counter()
    cs = ctx.profile.changeset
    areas = []
    if cs.chunk_layer:
        from pipeline.sources import read_chunk_areas  # GeoPandas: only for a chunk layer

        areas = read_chunk_areas(cs.chunk_layer, cs.chunk_layer_name, cs.chunk_field)
    result = build_exports(ctx.profile, layer.info, osm, decisions, areas)
    changes = result.changes
    if "changes.osc" in result.files:
        validate_file(result.files["changes.osc"], ".osc", changes.objects)
        validate_file(result.files["changes.osm"], ".osm", changes.objects + changes.context)
    counts = count_decisions(result.decisions)  # unwritable changes became skip or review
    _check_reconciles(counts, layer)
    ctx.timings["export"] = round(time.perf_counter() - started, 3)
    report = build_report(ctx, layer, osm, counts, len(changes.creates), len(changes.modifies))
    report["exports"] = result.summary()
    files = {**result.files,
             # default=str: the paths of the parameters (match.decisions) as text
             "report.json": json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n"}
    log.info("export: %d objects created, %d modified, in %s (%d chunks, %d MapRoulette tasks)",
             len(changes.creates), len(changes.modifies), ctx.run_dir, len(result.chunks),
             len(changes.groups))
    return Export(report, files)


def export_files_of(ctx: RunContext, export: Export) -> dict[str, str]:
    return export.files


@dataclass(frozen=True)
class Review:
    features: list[dict[str, Any]]
    text: str  # review.geojson as written


def review_stage(ctx: RunContext, decisions: list[Decision]) -> Review:
    """review.geojson, from the decisions as the export writes them (unwritable changes refused,
    as the export refuses them)."""
    features = review_features(refuse_unwritable(decisions))
    return Review(features, review_lines(features))


def review_files_of(ctx: RunContext, review: Review) -> dict[str, str]:
    return {REVIEW_FILE: review.text}


def context_stage(ctx: RunContext, review: Review, osm: OsmData) -> MapContext | None:
    """The background of the maps around the review's features: from `osm.context`, else the
    run's extract, else (with `osm.context_query`) one Overpass query; None without any."""
    box = map_box(f["geometry"] for f in review.features)
    if box is None:
        return None
    files = context_files(ctx)
    if files:
        context: MapContext | None = context_from_files(files, box)
    elif not osm_files(ctx) and ctx.profile.osm.context_query:
        context = context_from_overpass(ctx.profile, box, ctx.cache / "overpass", ctx.refresh,
                                        ctx.network_ends)
    else:
        return None
    if context is not None:
        log.info("map: background of %s from %s", context.counts(), context.origin)
    return context


def context_files(ctx: RunContext) -> list[Path]:
    """The OSM files of the background: `osm.context`, else the run's extracts."""
    chosen = ctx.profile.osm.context
    if chosen is not None:
        return list(chosen)
    return [f for f in osm_files(ctx) if f.is_file() and not is_overpass_answer(f)]


def maps_inputs(ctx: RunContext) -> tuple[str, ...]:
    """The maps show the OSM objects and their background; the council map (a `map:`
    section) the source layer."""
    shown = ("review", "fetch", "context")
    return (*shown, "ingest") if ctx.profile.map is not None else shown


def maps_stage(ctx: RunContext, review: Review, osm: OsmData, context: MapContext | None,
               layer: SourceLayer | None = None) -> Mapping[str, str]:
    from maps.publish import REVIEWER_PAGE, MapInputs, map_files  # Folium: off the start-up path

    config = ctx.profile.map
    background = None
    if config is not None and config.background is not None:
        from pipeline.sources import read_background  # GeoPandas: only for a background

        background = read_background(config.background, config.background_layer)
    inputs = MapInputs(
        review={"type": "FeatureCollection", "features": review.features},
        review_text=review.text, osm=osm, context=context.to_json() if context else None,
        layer=layer.to_json() if layer is not None else None, background=background,
        earlier={k: asdict(v) for k, v in reviewer_decisions(ctx.profile).items()})
    files = map_files(ctx.profile, inputs)
    log.info("map: %d features on %s", len(review.features), ctx.run_dir / REVIEWER_PAGE)
    return files


def maps_files_of(ctx: RunContext, files: Mapping[str, str]) -> Mapping[str, str]:
    return files


