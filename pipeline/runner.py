"""The runner: executes the stage graph (`pipeline.graph`) for a command — one stage, a few, or a
whole run — and is the only writer of the run folder.

For each stage it needs, in the graph's order, the runner loads the value kept in
`<run>/work/<stage>.json` when the stage's key (its own parts and its inputs' keys, with the
cache format) is the one kept beside it, else computes it and keeps it. The files the stages
give go into one new generation of the run folder, made current in one step once every stage
has succeeded (`pipeline.kernel.generations`), under the run folder's lock.

Speed is the runner's business too, so the stages stay plain functions:
- a machine has two cores: when two stages can run at once and one of them is worth a second
  process (`Stage.side`: reading the layer, the review file and maps), that stage and the ones
  that follow from it alone run in a forked process (`pipeline.background`), writing their files
  into the same generation;
- a layer crosses between processes with its geometries as one WKB array (`_pickle_layer`);
- values kept for later runs are saved by the second process when one starts next;
- Python's cycle collector is paused during a run (`_without_cycle_collection`).
"""

from __future__ import annotations

import copyreg
import gc
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from maps.index import IndexedRun, index_html
from pipeline.background import Background
from pipeline.graph import COMMANDS, GRAPH, Stage
from pipeline.ingest import SourceFeature, SourceLayer
from pipeline.kernel import __version__
from pipeline.kernel.atomic import write_atomic
from pipeline.kernel.errors import ProfileError, Sig2osmError
from pipeline.kernel.generations import Generation, clean_stale
from pipeline.run_lock import RunFolderLock
from pipeline.stages import RunContext

log = logging.getLogger(__name__)

# Bumped when what a stage keeps in work/ changes form: older caches are then not read at all.
CACHE_FORMAT = 3
# What a folder under <out> holds when sig2osm made it a run folder (older versions: work/ and
# report.json; now also the lock and the generations).
_RUN_FOLDER_MARKS = (".lock", ".current", ".generations", "work", "report.json")
INDEX_LOCK = ".index.lock"
INDEX = "index.html"


def run_command(ctx: RunContext, command: str, wait: float = 0.0) -> dict[str, Any]:
    """Run a command's stages (`pipeline.graph.COMMANDS`) and return the values of those
    computed in this process."""
    with run_folder_held(ctx, wait), _without_cycle_collection():
        return Runner(ctx).run(COMMANDS[command])


def run_stages(ctx: RunContext, targets: Sequence[str]) -> dict[str, Any]:
    """The values of some stages (and what they need), as a command would compute them."""
    with run_folder_held(ctx):
        return Runner(ctx).run(targets)


@dataclass
class _Work:
    """The state of one execution of the graph."""

    targets: set[str] = field(default_factory=set)
    order: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str | None] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    unsaved: list[tuple[str, str, Any]] = field(default_factory=list)  # (stage, key, value)
    files: dict[str, Mapping[str, str]] = field(default_factory=dict)  # stage -> its files


class Runner:
    def __init__(self, ctx: RunContext, graph: Mapping[str, Stage] = GRAPH) -> None:
        self.ctx = ctx
        self.graph = graph

    def run(self, targets: Sequence[str]) -> dict[str, Any]:
        order = self._plan(targets)
        work = _Work(targets=set(targets), order=order)
        generation = Generation(self.ctx.run_dir) if self._writes(order) else None
        try:
            self._execute(order, work, generation)
            self._save(work.unsaved)
        except BaseException:
            if generation is not None:
                generation.discard()
            raise
        if generation is not None:
            ran = [self.graph[name] for name in order]
            generation.carry_over(lambda name: not any(s.owns(name) for s in ran))
            generation.commit()
            self._remove_plain_leftovers(ran)
            self._write_index()
        # A target computed in the second process stays there unless later stages needed it
        # (the review file and maps of a run: written, not sent back).
        return {name: work.values[name] for name in targets if name in work.values}

    # --- the plan ----------------------------------------------------------------------------

    def _plan(self, targets: Sequence[str]) -> list[str]:
        """The stages to run for `targets`, each after the ones it takes."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            for needed in self.graph[name].inputs(self.ctx):
                visit(needed)
            order.append(name)

        for name in targets:
            visit(name)
        return order

    def _writes(self, order: Sequence[str]) -> bool:
        return any(self.graph[name].files is not None for name in order)

    def _execute(self, order: list[str], work: _Work, generation: Generation | None) -> None:
        pending = list(order)
        while pending:
            ready = [n for n in pending if set(self._inputs(n)) <= work.done]
            side = self._side_branch(ready, pending, work)
            if side:
                pending = [n for n in pending if n not in side]
                self._beside(side, pending, work, generation)
                continue
            name = ready[0]
            pending.remove(name)
            self._obtain(name, work, generation)

    def _inputs(self, name: str) -> tuple[str, ...]:
        return self.graph[name].inputs(self.ctx)

    def _side_branch(self, ready: list[str], pending: list[str], work: _Work) -> list[str]:
        """A stage worth a second process, with the stages that follow from it alone, when
        other work can go on meanwhile; [] otherwise."""
        for name in ready:
            if not self.graph[name].side:
                continue
            branch = [name]
            for other in pending:  # the graph's order: a follower comes after what it takes
                if other not in branch and set(self._inputs(other)) <= work.done | set(
                        branch) and set(self._inputs(other)) & set(branch):
                    branch.append(other)
            if any(n not in branch for n in pending):
                return branch
        return []

    # --- one stage ---------------------------------------------------------------------------

    def _obtain(self, name: str, work: _Work, generation: Generation | None) -> None:
        """The stage's value, from its cache or computed; its files into the generation."""
        stage = self.graph[name]
        started = time.perf_counter()
        key = self._key(stage, work)
        value = self._cached(stage, key)
        if value is None:
            value = stage.compute(self.ctx, *(work.values[n] for n in self._inputs(name)))
            if key is not None and stage.save is not None and stage.worth_saving(self.ctx,
                                                                                 value):
                work.unsaved.append((name, key, value))
        if key is None and stage.key_of_value is not None:
            key = _hash(name, stage.key_of_value(value))
        work.values[name], work.keys[name] = value, key
        if stage.files is not None and generation is not None:
            generation.write(stage.files(self.ctx, value))
        self.ctx.timings.setdefault(name, round(time.perf_counter() - started, 3))
        work.done.add(name)
        self._forget(work)

    def _forget(self, work: _Work) -> None:
        """Free the values nothing left needs (the candidates' spatial index before the export
        builds its files): memory is the limit of a big run."""
        needed = {n for p in work.order if p not in work.done for n in self._inputs(p)}
        for name in [n for n in work.values if n not in needed and n not in work.targets]:
            if not any(name == u[0] for u in work.unsaved):
                del work.values[name]

    def _key(self, stage: Stage, work: _Work) -> str | None:
        if stage.key is None:
            return None
        inputs = [work.keys.get(n) for n in stage.inputs(self.ctx)]
        if any(k is None for k in inputs):
            return None  # an input that cannot be keyed: nothing after it is kept either
        return _hash(CACHE_FORMAT, __version__, stage.name, stage.key(self.ctx), inputs)

    def _cached(self, stage: Stage, key: str | None) -> Any:
        if key is None or stage.load is None or self.ctx.refresh:
            return None
        result, stamp = self.ctx.work / f"{stage.name}.json", self.ctx.work / f"{stage.name}.key"
        if not (result.is_file() and stamp.is_file() and stamp.read_text() == key):
            return None
        try:
            value = stage.load(json.loads(result.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            log.warning("%s: %s cannot be read (%s); computing it again", stage.name, result,
                        exc)
            return None
        log.debug("%s: inputs unchanged, reusing %s", stage.name, result)
        return value

    def _save(self, unsaved: list[tuple[str, str, Any]]) -> None:
        """Keep values for later runs (the stages' own files, never the run folder's outputs)."""
        for name, key, value in unsaved:
            save = self.graph[name].save
            assert save is not None
            write_atomic(self.ctx.work / f"{name}.json",
                         json.dumps(save(value), ensure_ascii=False))
            write_atomic(self.ctx.work / f"{name}.key", key)
        unsaved.clear()

    # --- a second process ---------------------------------------------------------------------

    def _beside(self, branch: list[str], pending: list[str], work: _Work,
                generation: Generation | None) -> None:
        """Run `branch` in a second process while this one runs what does not need it; the
        values the rest needs come back when it is first needed."""
        wanted = [n for n in branch if any(n in self._inputs(p) for p in pending)]
        unsaved, work.unsaved = work.unsaved, []
        side = Background(partial(self._branch, branch, wanted, unsaved, work, generation),
                          "+".join(branch))
        try:
            self._meanwhile(pending, work, generation)
        except BaseException as exc:
            if isinstance(exc, Sig2osmError):
                side.result()  # the branch's own error first, as when the stages run in turn
            side.cancel()  # if still running
            raise
        values, keys, timings = side.result()
        work.values.update(values)
        work.keys.update(keys)
        work.done.update(branch)
        self.ctx.timings.update(timings)
        self._execute(pending, work, generation)
        pending.clear()

    def _meanwhile(self, pending: list[str], work: _Work, generation: Generation | None) -> None:
        """The stages that do not need the second process's branch, run here meanwhile."""
        while True:
            ready = [n for n in pending if set(self._inputs(n)) <= work.done]
            if not ready:
                return  # what is left needs the branch
            pending.remove(ready[0])
            self._obtain(ready[0], work, generation)

    def _branch(self, branch: list[str], wanted: list[str], unsaved: list[tuple[str, str, Any]],
                work: _Work, generation: Generation | None
                ) -> tuple[dict[str, Any], dict[str, str | None], dict[str, float]]:
        """What the second process does: run the branch, save what the first had not saved yet
        (after the branch's own values are freed: the two never weigh at once), and send back
        the values (and keys, timings) the first needs."""
        # Its own state: in a second process a copy anyway, but the same objects when the
        # branch runs in this process (SIG2OSM_SERIAL, no fork), where freeing a value of the
        # branch's would free it for the rest of the run too.
        work = replace(work, targets=set(wanted), values=dict(work.values), keys=dict(work.keys),
                       done=set(work.done), unsaved=[])
        for name in branch:
            self._obtain(name, work, generation)
        self._save([*unsaved, *work.unsaved])
        return ({n: work.values[n] for n in wanted}, {n: work.keys[n] for n in branch},
                {n: self.ctx.timings[n] for n in branch if n in self.ctx.timings})

    # --- the output folder --------------------------------------------------------------------

    def _remove_plain_leftovers(self, ran: Sequence[Stage]) -> None:
        """Plain files of the stages that ran, where the new set has no link (a run folder of
        an older sig2osm, or one copied through its links): they would pass for this run's."""
        folder = self.ctx.run_dir
        for path in sorted(folder.rglob("*"), reverse=True):
            name = path.relative_to(folder).as_posix()
            if path.is_symlink() or name.startswith((".", "work/")) or "/." in name:
                continue
            if path.is_file() and any(s.owns(name) for s in ran):
                path.unlink()
            elif path.is_dir() and name != "work" and not any(path.iterdir()):
                path.rmdir()

    def _write_index(self) -> None:
        """<out>/index.html, written by one run at a time (runs of other profiles share it)."""
        out = self.ctx.out
        locale = self.ctx.profile.map.locale if self.ctx.profile.map else "fr"
        with RunFolderLock(out, wait=60.0, file_name=INDEX_LOCK):
            runs = [_indexed(report.parent) for report in sorted(out.glob("*/report.json"))]
            write_atomic(out / INDEX, index_html(runs, locale))


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


def _indexed(folder: Path) -> IndexedRun:
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("index: %s is unreadable (%s); listing the folder without counts",
                    folder / "report.json", exc)
        report = {}
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    return IndexedRun(folder.name, report if isinstance(report, dict) else {}, files)


def _hash(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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


# --- values between processes -----------------------------------------------------------------


def _pickle_layer(layer: SourceLayer) -> tuple[Callable[..., SourceLayer], tuple[Any, ...]]:
    """A layer crosses to the other process with every geometry in one WKB array: shapely
    pickles geometries one by one, ten times slower."""
    geometries = np.empty(len(layer.features), dtype=object)
    geometries[:] = [f.geometry for f in layer.features]
    rows = [(f.source_id, f.tags, f.attributes, f.skip_reason) for f in layer.features]
    return _unpickle_layer, (shapely.to_wkb(geometries), rows, layer.metric_crs, layer.info,
                             layer.sample, layer.gdal)


def _unpickle_layer(wkb: np.ndarray, rows: list[tuple[str, dict[str, str], dict[str, Any],
                                                      str | None]],
                    metric_crs: str, info: dict[str, Any], sample: Any, gdal: str
                    ) -> SourceLayer:
    geometries = shapely.from_wkb(wkb).tolist()
    features = tuple(SourceFeature(source_id, geometry, tags, attributes, skip_reason)
                     for geometry, (source_id, tags, attributes, skip_reason)
                     in zip(geometries, rows, strict=True))
    return SourceLayer(features, metric_crs, info, sample, gdal)


copyreg.pickle(SourceLayer, _pickle_layer)
