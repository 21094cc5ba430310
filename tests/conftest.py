"""Shared test fixtures: the real data in ../shared/data, referenced, never copied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.kernel.settings import MatchConfig, OsmConfig, Profile, SourceConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def data() -> Path:
    """The folder of real data sets (../shared/data from the project root)."""
    if not DATA.is_dir():
        pytest.fail(f"{DATA} is missing: the tests need ../shared beside the project")
    return DATA


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The Grenoble profile, its changed twin, and `out/` after one run (fault tests)."""
    from tests.faults import earlier_run

    return earlier_run(tmp_path_factory.mktemp("run-folder"))


def matching(kinds: Any = None, *, related: Any = (), geometry: str = "file",
             bounds: Any = None, **match: Any) -> Profile:
    """A profile holding only what the conflation reads: `kinds` (osm.match, amenity=* by
    default), `related`, the source's kind, and `match:` keys (ref, policies, labels, …)."""
    return Profile(name="test", source=SourceConfig(id="id", geometry=geometry),
                   osm=OsmConfig(match=kinds or {"amenity": "*"}, related=list(related),
                                 bounds=bounds),
                   tags={}, match=MatchConfig(**match))
