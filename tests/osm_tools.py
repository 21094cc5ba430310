"""Debian's osmium-tool and JOSM, driven by the tests to check change files as reviewers' tools
read them. `make tools` installs both; a test that needs one fails (never skips) without it.

JOSM starts a Java VM (about ten seconds): `josm_validate` validates many files in one run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import osmium
import pytest

from pipeline.kernel.osm import OsmElement

_ORDER = {"node": 0, "way": 1, "relation": 2}


def require(command: str, package: str) -> str:
    path = shutil.which(command)
    if path is None:
        pytest.fail(f"'{command}' is missing: the tests check change files with Debian's "
                    f"{package}; install it with `make tools` (apt-get install {package}).",
                    pytrace=False)
    return path


def osmium_tool(*args: object) -> subprocess.CompletedProcess[str]:
    command = require("osmium", "osmium-tool")
    return subprocess.run([command, *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


_FILEINFO = re.compile(r"^  (Objects ordered \(by type and id\)|Multiple versions of same object|"
                       r"Number of (?:nodes|ways|relations)): (\S+)$", re.M)


def fileinfo(path: Path) -> dict[str, Any]:
    """`osmium fileinfo --extended`: whether the objects are ordered (libosmium's order, which
    its other commands need), whether one object comes twice, and the counts, e.g.
    {"ordered": True, "multiple_versions": False, "nodes": 3, "ways": 0, "relations": 0}.
    (Its --json form fails on a file without nodes: an osmChange of modified ways.)"""
    done = osmium_tool("fileinfo", "-e", path)
    assert done.returncode == 0, f"osmium fileinfo {path.name}: {done.stderr}"
    found = dict(_FILEINFO.findall(done.stdout))
    assert len(found) == 5, f"osmium fileinfo {path.name}: unexpected output {done.stdout}"
    return {"ordered": found["Objects ordered (by type and id)"] == "yes",
            "multiple_versions": found["Multiple versions of same object"] == "yes",
            **{kind: int(found[f"Number of {kind}"]) for kind in ("nodes", "ways", "relations")}}


_MISSING = re.compile(r"^(Nodes|Ways|Relations)\s+in (ways|relations)\s+missing: (\d+)$", re.M)


def missing_references(path: Path) -> dict[str, int]:
    """`osmium check-refs --check-relations`: missing objects, e.g. {"nodes in ways": 0, …}
    (what JOSM would load as incomplete). Fails on a file the command refuses (unsorted)."""
    done = osmium_tool("check-refs", "-r", path)
    counts = {f"{kind.lower()} in {where}": int(n)
              for kind, where, n in _MISSING.findall(done.stderr)}
    assert len(counts) == 4, f"osmium check-refs {path.name} refused the file: {done.stderr}"
    return counts


def apply_changes(base: Path, changes: Sequence[Path], target: Path) -> Path:
    """`osmium apply-changes`: each change file applied in turn, as uploads would be."""
    current = base
    for number, change in enumerate(changes):
        step = target if number == len(changes) - 1 else target.with_name(
            f"{target.stem}.{number}{target.suffix}")
        done = osmium_tool("apply-changes", current, change, "-o", step, "-O")
        assert done.returncode == 0, f"osmium apply-changes {change.name}: {done.stderr}"
        current = step
    return target


def same_data(first: Path, second: Path) -> bool:
    """`osmium diff --quiet`: whether two files hold the same objects."""
    return osmium_tool("diff", "-q", first, second).returncode == 0


def write_osm(objects: Iterable[OsmElement], target: Path,
              bounds: tuple[float, float, float, float] | None = None) -> Path:
    """An .osm file of `objects` in libosmium's order (for an Overpass JSON input, which
    neither osmium nor JOSM reads)."""
    header = osmium.io.Header()
    if bounds is not None:
        header.add_box(osmium.osm.Box(*bounds))
    target.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(target), header=header)
    try:
        for obj in sorted(objects, key=lambda o: (_ORDER[o.type], o.id > 0, abs(o.id))):
            common = {"id": obj.id, "version": obj.version, "tags": obj.tags}
            if obj.type == "node":
                writer.add_node(osmium.osm.mutable.Node(location=(obj.lon, obj.lat), **common))
            elif obj.type == "way":
                writer.add_way(osmium.osm.mutable.Way(nodes=list(obj.nodes), **common))
            else:
                members = [(t[0], ref, role) for t, ref, role in obj.members]
                writer.add_relation(osmium.osm.mutable.Relation(members=members, **common))
    finally:
        writer.close()
    return target


# --- JOSM's validator ------------------------------------------------------------------------


@dataclass
class Validation:
    """One file JOSM validates: `data` with `changes` applied in order; issues go to `output`."""

    data: Path
    output: Path
    changes: list[Path] = field(default_factory=list)


def josm_validate(jobs: Sequence[Validation]) -> None:
    """`josm validate`, headless, every job in one run (JOSM keys its options by input file
    name, so each job needs a file of its own: copy the data first)."""
    command = require("josm", "josm")
    names = [str(job.data) for job in jobs]
    assert len(set(names)) == len(names), "one input file per validation"
    args: list[str] = [command, "validate"]
    for job in jobs:
        args += ["--input", str(job.data)]
        for change in job.changes:
            args += ["--change-file", str(change)]
        args += ["--output", str(job.output)]
    env = {**os.environ, "JAVA_OPTS": "-Djava.awt.headless=true"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env,
                          check=False)
    missing = [job.output.name for job in jobs if not job.output.is_file()]
    assert done.returncode == 0 and not missing, (
        f"josm validate failed ({done.returncode}), no output for {missing}: "
        f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


@dataclass(frozen=True)
class Issue:
    """A validator issue: severity, test, message, the OSM objects it names (JOSM's own ids of
    new objects are left out, they differ from run to run) and how many new objects."""

    severity: str
    test: str
    message: str
    objects: tuple[str, ...]
    new_objects: int

    def __str__(self) -> str:
        return (f"{self.severity}: {self.test}: {self.message} ({', '.join(self.objects)}"
                f"{f' + {self.new_objects} new' if self.new_objects else ''})")


def josm_issues(output: Path) -> Counter[Issue]:
    """The issues of a `josm validate` output (line-by-line GeoJSON, one issue a line: its
    first feature carries the message, each feature one object)."""
    issues: Counter[Issue] = Counter()
    for line in output.read_text(encoding="utf-8").split("\n"):  # tag values hold U+2028…
        line = line.strip("\x1e")
        if not line:
            continue
        features = json.loads(line)["features"]
        first: Mapping[str, Any] = features[0]["properties"]
        ids = [f["properties"]["@id"] for f in features]
        issues[Issue(str(first.get("severity")), str(first.get("test")),
                     str(first.get("message")), tuple(sorted(i for i in ids if "/-" not in i)),
                     sum(1 for i in ids if "/-" in i))] += 1
    return issues


WARNINGS = ("Errors", "Warnings")  # JOSM's "Other" issues are hints, not warnings


def new_warnings(before: Path, after: Path) -> list[Issue]:
    """Errors and warnings JOSM finds in `after` that it did not find in `before`."""
    new = josm_issues(after) - josm_issues(before)
    return sorted((i for i in new.elements() if i.severity in WARNINGS), key=str)


def new_hints(before: Path, after: Path) -> Counter[str]:
    """JOSM's "Other" issues that are new in `after`, counted by test."""
    new = josm_issues(after) - josm_issues(before)
    return Counter(i.test for i in new.elements() if i.severity not in WARNINGS)
