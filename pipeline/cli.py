"""`sig2osm`: one click group, thin subcommands over the runner (each command runs its stages of
the graph, `pipeline.graph.COMMANDS`).

Exit codes: 0 success; 1 any sig2osm error; 2 profile error; 3 source layer error; 4 OSM data
error (unreadable, partial or empty fetch); 5 export validation error; 6 PDF error; 73 an output
cannot be written (disk full…); 75 the run folder is being written by another run; 130
interrupted, 143 terminated; 70 internal error (a bug: please report it with the `-v` output).
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import ClassVar, NoReturn

import click

from conflation.policies import POLICIES
from conflation.policies import describe as describe_policy
from pipeline.check import describe_run
from pipeline.distributed import ClusterSettings
from pipeline.kernel import __version__
from pipeline.kernel.decisions import count_decisions
from pipeline.kernel.errors import ProfileError, Sig2osmError
from pipeline.profile import load_profile
from pipeline.runner import run_command
from pipeline.stages import (
    RunContext,
)

log = logging.getLogger("sig2osm")

profile_argument = click.argument(
    "profile", type=click.Path(dir_okay=False, path_type=Path))
out_option = click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("out"),
    show_default=True, help="Output folder; the run folder is <out>/<profile name>/.")
osm_option = click.option(
    "--osm", "osm_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Local OSM extract or recorded Overpass answer, instead of the profile's OSM source.")
refresh_option = click.option(
    "--refresh", is_flag=True, help="Ignore cached Overpass answers and downloads.")
wait_option = click.option(
    "--wait", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="Seconds to wait while another run writes the same run folder (0: fail at once).")



def cluster_options(command: Callable[..., None]) -> Callable[..., None]:
    """--workers, --scheduler, --tile-size, --worker-memory: the conflation on Dask."""
    options = [
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Conflate on a Dask LocalCluster of N worker processes (same outputs "
                          "as without)."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Conflate on the Dask cluster at ADDRESS (tcp://host:8786)."),
        click.option("--tile-size", "tile_m", type=click.FloatRange(min=0, min_open=True),
                     default=None, metavar="METRES",
                     help="Side of a tile of the cluster's work (default: about 20 000 source "
                          "features a tile)."),
        click.option("--worker-memory", default=None, metavar="SIZE",
                     help="Memory limit of each local worker, e.g. 4GiB (default: the "
                          "machine's memory shared out)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _cluster(workers: int | None, scheduler: str | None, tile_m: float | None,
             memory: str | None) -> ClusterSettings | None:
    if workers is None and scheduler is None:
        if tile_m is not None or memory is not None:
            raise ProfileError("--tile-size and --worker-memory set how a Dask cluster works: "
                               "give --workers or --scheduler too.")
        return None
    return ClusterSettings(workers, scheduler, tile_m, memory)


def _configure_logging(verbose: int, quiet: int) -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(levelname)s %(message)s")
    # GDAL's reader logs every layer it reads; keep that for -vv.
    logging.getLogger("pyogrio").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)


class _Commands(click.Group):
    """The command groups that live in their own modules (PDF maps) are imported when used:
    their dependencies cost more start-up time than a whole small run."""

    lazy: ClassVar[dict[str, tuple[str, str]]] = {"pdf": ("pipeline.pdf.cli", "pdf")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, name = self.lazy[cmd_name]
            try:
                self.add_command(getattr(importlib.import_module(module), name))
            except ImportError:
                return None
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sig2osm")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", count=True, help="Less log output (-q warnings, -qq errors).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """Turn a city's GIS layers into reviewable OpenStreetMap change files and web maps."""
    _configure_logging(verbose, quiet)
    ctx.obj = {"quiet": quiet > 0}


def _context(profile: Path, out: Path, osm_file: Path | None = None,
             refresh: bool = False, cluster: ClusterSettings | None = None) -> RunContext:
    return RunContext(load_profile(profile), out, osm_file, refresh, cluster=cluster)


@cli.command()
@profile_argument
@out_option
@osm_option
@refresh_option
@wait_option
@cluster_options
def run(profile: Path, out: Path, osm_file: Path | None, refresh: bool, wait: float,
        workers: int | None, scheduler: str | None, tile_m: float | None,
        worker_memory: str | None) -> None:
    """Run every stage: ingest, fetch, conflate, export, map."""
    ctx = _context(profile, out, osm_file, refresh,
                   _cluster(workers, scheduler, tile_m, worker_memory))
    report = run_command(ctx, "run", wait)["export"].report
    counts = ", ".join(f"{n} {k}" for k, n in report["counts"].items() if n)
    click.echo(f"{ctx.profile.name}: {counts}")
    if report["exports"]["nothing_to_upload"]:
        click.echo("  nothing to upload: no create or modify, so no change file, chunk or "
                   f"MapRoulette task; review file: {ctx.run_dir / 'review.geojson'}")
    else:
        click.echo(f"  change files and review: {ctx.run_dir}")
    click.echo(f"  reviewer map: {ctx.run_dir / 'map.html'}")
    if ctx.profile.map is not None:
        click.echo(f"  council map: {ctx.run_dir / 'council-map.html'} (+ map.umap)")
    click.echo(f"  index of runs: {ctx.out / 'index.html'}")


@cli.command()
@profile_argument
@out_option
@refresh_option
@wait_option
def ingest(profile: Path, out: Path, refresh: bool, wait: float) -> None:
    """Read the source layer and compute the proposed tags (kept in work/)."""
    run_command(_context(profile, out, refresh=refresh), "ingest", wait)


@cli.command()
@profile_argument
@out_option
@osm_option
@refresh_option
@wait_option
def fetch(profile: Path, out: Path, osm_file: Path | None, refresh: bool, wait: float) -> None:
    """Read the OSM candidates (local extract or Overpass; kept in work/)."""
    run_command(_context(profile, out, osm_file, refresh), "fetch", wait)


@cli.command()
@profile_argument
@out_option
@osm_option
@wait_option
@cluster_options
def conflate(profile: Path, out: Path, osm_file: Path | None, wait: float, workers: int | None,
             scheduler: str | None, tile_m: float | None, worker_memory: str | None) -> None:
    """Decide create / modify / unchanged / review / skip / missing for every feature (the
    decision table is kept in work/conflate.json)."""
    ctx = _context(profile, out, osm_file, cluster=_cluster(workers, scheduler, tile_m,
                                                            worker_memory))
    counts = count_decisions(run_command(ctx, "conflate", wait)["conflate"])
    click.echo(f"{ctx.profile.name}: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))


@cli.command()
@profile_argument
@out_option
@osm_option
@wait_option
def export(profile: Path, out: Path, osm_file: Path | None, wait: float) -> None:
    """Write changes.osc, changes.osm, review.geojson and report.json."""
    run_command(_context(profile, out, osm_file), "export", wait)


@cli.command(name="map")
@profile_argument
@out_option
@wait_option
def map_command(profile: Path, out: Path, wait: float) -> None:
    """Render the reviewer map, the council map (with a `map:` section) and the index page."""
    ctx = _context(profile, out)
    run_command(ctx, "map", wait)
    click.echo(ctx.run_dir / "map.html")


@cli.command(epilog="\b\nTag policies (match.policies):\n" + "\n".join(
    f"  {name:<20} {describe_policy(name)}" for name in POLICIES))
@profile_argument
def check(profile: Path) -> None:
    """Validate a profile and its inputs, and say what a run would do (with the tag policy
    each proposed key follows)."""
    click.echo(describe_run(load_profile(profile)))


def _paragraph(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=100)


class Terminated(BaseException):
    """SIGTERM: raised where the run is, so it cleans up (second process, unfinished outputs)
    as for Ctrl-C."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    if sys.platform == "win32" or not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (documented in this module's docstring)."""
    try:
        with _terminate_cleanly():
            cli.main(args=argv, prog_name="sig2osm", standalone_mode=False)
    except Sig2osmError as exc:
        click.echo(_paragraph(f"sig2osm: error: {exc}"), err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("sig2osm: aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("sig2osm: interrupted; earlier outputs are intact.", err=True)
        return 130
    except Terminated:
        click.echo("sig2osm: terminated (SIGTERM); earlier outputs are intact.", err=True)
        return 143
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return _internal_error(exc)
        click.echo(_paragraph(f"sig2osm: error: {exc.filename or 'an output'}: cannot be "
                              f"written ({exc.strerror}); earlier outputs are intact. Free some "
                              "space or choose another --out."), err=True)
        return 73
    except Exception as exc:  # a bug: say so plainly, details with -v
        return _internal_error(exc)
    return 0


def _internal_error(exc: Exception) -> int:
    log.debug("internal error", exc_info=exc)
    click.echo(_paragraph(f"sig2osm: internal error: {type(exc).__name__}: {exc}. This is a "
                          "bug; run again with -v and report the output."), err=True)
    return 70


def console() -> NoReturn:
    """The `sig2osm` command: `main`, then the process ends without the interpreter's module by
    module teardown (a third of a second with pandas, pyproj and GDAL loaded, for nothing: every
    output file is closed by then)."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
