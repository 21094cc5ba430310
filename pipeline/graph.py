"""The stage graph: what each stage of a run takes, gives, keeps and writes.

    ingest ─────────────────┬─────────────┬─────────────────────────┐
      │ (Overpass only)     │             │                         │ (council map)
      ▼                     ▼             ▼                         ▼
    fetch ──► project ──► conflate ──► export                      map
      │                           └──► review ──► context ──────────▲
      └───────────────────────────────────────────┴─────────────────┘

Each stage's value: ingest the source layer, fetch the OSM candidates, project the candidates
in a metric CRS, conflate the decisions, export the change files and report, review the review
file, context the maps' background, map the map pages. The commands of the CLI run one
stage and what it needs (`COMMANDS`); `run` runs them all.

A stage declares its inputs (other stages' values), how its value is computed, its cache key,
how the value is saved to and loaded from `<run>/work/` (if it is kept at all), and which files
of the run folder it writes. The runner (`pipeline.runner`) executes the graph: one stage, a
command's few, or a whole run; which stages share a second process is its business, as is every
write into the run folder. Stage functions live in `pipeline.stages`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline import stages
from pipeline.stages import RunContext

# The files of the run folder each stage writes ("chunks/…" for the chunk files).
EXPORT_FILES = ("changes.osc", "changes.osm", "maproulette.geojsonl",
                "maproulette-challenge.json", "changeset-tags.json", "report.json",
                "import-plan.md", "import-plan.wiki")
MAP_FILES = ("map.html", "council-map.html", "council-map.geojson", "map.umap")
MAP_PARTS = "maps/"  # the parts of a big run's reviewer map (maps/parts.py)


@dataclass(frozen=True)
class Stage:
    name: str
    # The stages whose values this one takes (by name; they are passed as keyword arguments).
    inputs: Callable[[RunContext], tuple[str, ...]]
    compute: Callable[..., Any]  # (ctx, *the inputs' values, in order) -> value
    # The cache key's own parts (the inputs' keys are added by the runner); None: not cached.
    key: Callable[[RunContext], object] | None = None
    save: Callable[[Any], Any] | None = None  # value -> JSON (work/<name>.json)
    load: Callable[[Any], Any] | None = None  # JSON -> value
    worth_saving: Callable[[RunContext, Any], bool] = lambda ctx, value: True
    # A key for the stages after it, from the value, when `key` cannot be known beforehand.
    key_of_value: Callable[[Any], object] | None = None
    files: Callable[[RunContext, Any], Mapping[str, str]] | None = None  # run folder files
    owns: Callable[[str], bool] = lambda name: False  # the run folder files it (re)writes
    # Worth a second process when another stage can run meanwhile: importing GeoPandas and
    # reading a layer, or rendering maps, takes as long as the work beside it.
    side: bool = False


def _fixed(*names: str) -> Callable[[RunContext], tuple[str, ...]]:
    return lambda ctx: names


GRAPH: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("ingest", _fixed(), stages.read_layer, key=stages.layer_key,
          save=stages.layer_json, load=stages.layer_from_json, side=True),
    Stage("fetch", stages.osm_inputs, stages.fetch_osm, key=stages.osm_key,
          save=stages.osm_json, load=stages.osm_from_json, worth_saving=stages.osm_worth_saving,
          key_of_value=stages.osm_value_key),
    # Not kept (built again faster than loaded), but keyed: what follows it can be kept.
    Stage("project", _fixed("fetch"), stages.project_candidates, key=lambda ctx: ()),
    Stage("conflate", _fixed("ingest", "fetch", "project"), stages.decide_stage,
          key=stages.decisions_key, save=stages.decisions_json_of,
          load=stages.decisions_from_json),
    Stage("export", _fixed("ingest", "fetch", "conflate"), stages.export_stage,
          files=stages.export_files_of,
          owns=lambda name: name in EXPORT_FILES or name.startswith("chunks/")),
    Stage("review", _fixed("conflate"), stages.review_stage, files=stages.review_files_of,
          owns=lambda name: name == stages.REVIEW_FILE, side=True),
    # The maps' background, around what they show; not kept (the OSM files are the cache).
    Stage("context", _fixed("review", "fetch"), stages.context_stage),
    Stage("map", stages.maps_inputs, stages.maps_stage, files=stages.maps_files_of,
          owns=lambda name: name in MAP_FILES or name.startswith(MAP_PARTS)),
)}

# What each command runs (its targets; the runner adds what they need).
COMMANDS = {
    "run": ("export", "review", "map"),
    "ingest": ("ingest",),
    "fetch": ("fetch",),
    "conflate": ("conflate",),
    "export": ("export", "review"),
    "map": ("map",),
}
