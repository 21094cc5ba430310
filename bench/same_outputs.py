"""Outputs of two source trees, compared byte for byte: `python -m bench.same_outputs OTHER`.

Runs the example profiles (the demo, on one extraction of its GeoPDF) and the data of
`bench.conflation_speed` (scale 1, or the scale given: `… OTHER 10`) with this tree and
with OTHER (another checkout, e.g. the commit before a refactoring, made with
`git worktree add`), with the same Python, and compares every file of
each run folder (`work/`, the stage cache, aside). `report.json` is compared without its
`timings_s`, which differ from run to run. Prints each difference; exit 1 if there is one.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.conflation_speed import write_inputs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["grenoble/parking-meters.yml", "bondy/parking-meters.yml", "bondy/council-map.yml",
            "grenoble/parking-meters-from-pdf.yml", "bondy/addresses-on-buildings.yml",
            "rennes/breton-street-names.yml"]
GEOPDF = ROOT.parent / "shared/data/geopdf/iso32000/grenoble_horodateurs_ISO32000_L93.pdf"


def _sig2osm(tree: Path, *args: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-m", "pipeline.cli", "-qq", *args], check=True, env=env,
                   cwd=cwd, stdout=subprocess.DEVNULL)


def _run_all(tree: Path, out: Path, speed: Path, layer: Path) -> None:
    """The demo's runs and the speed data's run, with `tree`'s code, into `out`. The GeoPDF's
    layer (`layer`, extracted once: a GeoPackage records when it was written) is put in
    `tree`/out/pdf, where the example profile reads it, as `make demo` does."""
    target = tree / "out/pdf/grenoble-horodateurs.gpkg"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layer, target)
    subprocess.run([sys.executable, str(tree / "examples/rennes/make_inputs.py"),
                    str(tree / "out/rennes")], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(tree)})
    for example in EXAMPLES:
        _sig2osm(tree, "run", str(tree / "examples" / example), "--out", str(out), cwd=out)
    _sig2osm(tree, "run", str(speed), "--out", str(out), cwd=out)


def _comparable(path: Path, tree: Path) -> bytes:
    """report.json without its timings, the trees' own paths as "<tree>"."""
    report = json.loads(path.read_text(encoding="utf-8").replace(str(tree), "<tree>"))
    report.pop("timings_s", None)
    return json.dumps(report, sort_keys=True).encode()


def _visible(root: Path) -> set[Path]:
    """The files a user sees under `root`, through the run folders' links (their hidden
    generations, the lock and the stage caches of work/ aside)."""
    found = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "work"]
        found.update(Path(folder, f).relative_to(root) for f in files if not f.startswith("."))
    return found


def compare(a: Path, b: Path, tree_a: Path, tree_b: Path) -> list[str]:
    differences = []
    files_a, files_b = _visible(a), _visible(b)
    for name in sorted(files_a ^ files_b):
        differences.append(f"only in {'this tree' if name in files_a else 'the other'}: {name}")
    for name in sorted(files_a & files_b):
        same = (filecmp.cmp(a / name, b / name, shallow=False) if name.name != "report.json"
                else _comparable(a / name, tree_a) == _comparable(b / name, tree_b))
        if not same:
            differences.append(f"differs: {name}")
    return differences


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) not in (1, 2):
        print("usage: python -m bench.same_outputs OTHER_TREE [SPEED_SCALE]", file=sys.stderr)
        return 2
    other = Path(args[0]).resolve()
    scale = args[1] if len(args) == 2 else "1"  # "10": the dense data, every point in one group
    with tempfile.TemporaryDirectory(prefix="sig2osm-same-") as tmp:
        folder = Path(tmp)
        speed = write_inputs(int(scale.rstrip("w")), scale.endswith("w"), folder)
        layer = folder / "grenoble-horodateurs.gpkg"
        _sig2osm(ROOT, "pdf", "extract", str(GEOPDF), "--legend",
                 str(ROOT / "examples/grenoble/pdf-legend.yml"), "--out", str(layer), cwd=folder)
        for name, tree in (("this", ROOT), ("other", other)):
            (folder / name).mkdir()
            _run_all(tree, folder / name, speed, layer)
        differences = compare(folder / "this", folder / "other", ROOT, other)
    for line in differences:
        print(line)
    print(f"{len(differences)} difference(s) between {ROOT} and {other}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
