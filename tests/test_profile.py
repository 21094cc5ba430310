"""The profile: typed, frozen, validated with key, line and suggestion."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
import yaml

from pipeline.kernel.errors import ProfileError
from pipeline.pdf.classify import load_legend
from pipeline.profile import load_profile

GOOD = """\
name: benches
source:
  path: layer.geojson
  id: ID
osm:
  match: {amenity: bench, backrest: [yes, no], material: "*"}
  file: extract.osm.pbf
tags:
  amenity: bench
  ref:bench: "{ID}"
match:
  distance: 15
  ref: ref:bench
  authoritative: [backrest]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_profile_is_typed_frozen_and_resolves_paths(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD))
    assert profile.name == "benches"
    assert profile.source.path == tmp_path / "layer.geojson"
    assert profile.osm.file == [tmp_path / "extract.osm.pbf"]
    assert profile.osm.match == {"amenity": "bench", "backrest": ["yes", "no"], "material": "*"}
    assert profile.match.distance == 15.0
    assert profile.match.authoritative == ["backrest"]
    assert profile.changeset.chunk_size == 1000  # default
    with pytest.raises(FrozenInstanceError):
        profile.name = "other"  # type: ignore[misc]


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    text = GOOD.replace("  distance: 15", "  distanse: 15")
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, text))
    message = str(err.value)
    assert "match.distanse (line 12)" in message
    assert "did you mean 'distance'?" in message


def test_missing_required_key(tmp_path: Path) -> None:
    text = GOOD.replace("  id: ID\n", "")
    with pytest.raises(ProfileError, match=r"source.id \(line 3\): missing required key"):
        load_profile(write(tmp_path, text))


def test_wrong_type_names_key_line_and_expectation(tmp_path: Path) -> None:
    text = GOOD.replace("distance: 15", "distance: far")
    with pytest.raises(ProfileError, match=r"match.distance \(line 12\): expected a number, got 'far'"):
        load_profile(write(tmp_path, text))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("distance: 15", "distance: far").replace("name: benches", "nam: benches")
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, text))
    message = str(err.value)
    assert "2 problem(s)" in message
    assert "nam (line 1): unknown key; did you mean 'name'?" in message
    assert "match.distance (line 12)" in message


def test_malformed_yaml_gives_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"malformed YAML at line 4, column 5"):
        load_profile(write(tmp_path, "name: x\nsource:\n  path: [a\n  id: b\n"))


def test_source_needs_path_or_url(tmp_path: Path) -> None:
    text = GOOD.replace("  path: layer.geojson\n", "")
    with pytest.raises(ProfileError, match="exactly one of 'path' or 'url'"):
        load_profile(write(tmp_path, text))


def test_unknown_policy_is_suggested(tmp_path: Path) -> None:
    text = GOOD + "  policies: {name: keep_osm}\n"
    with pytest.raises(ProfileError, match="did you mean 'keep-osm'"):
        load_profile(write(tmp_path, text))


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(tmp_path / "nope.yml")


EXAMPLES = Path(__file__).parents[1] / "examples"
SHARED_DATA = Path(__file__).parents[2] / "shared" / "data"
DEMO_OUTPUTS = Path(__file__).parents[1] / "out"  # inputs `make demo` derives first


@pytest.mark.parametrize("profile", sorted(EXAMPLES.glob("**/*.yml")), ids=lambda p: p.name)
def test_examples_load_and_point_at_real_inputs(profile: Path) -> None:
    if "legend" in profile.name:  # a PDF legend, not a run profile
        legend = load_legend(profile)
        assert legend.categories and all(c.tags for c in legend.categories)
        return
    loaded = load_profile(profile)
    assert loaded.name == yaml.safe_load(profile.read_text(encoding="utf-8"))["name"]
    assert loaded.tags and loaded.osm.match
    inputs = [p for p in (loaded.source.path, *(loaded.osm.file or ())) if p is not None]
    for path in inputs:  # shared data that exists, or a file the demo derives from it
        assert path.is_relative_to(DEMO_OUTPUTS) or (
            path.is_relative_to(SHARED_DATA.resolve()) and path.is_file()), path
    if loaded.source.url:  # online-only examples download over HTTPS
        assert loaded.source.url.startswith("https://")
    else:
        assert inputs, "an offline example needs its source and OSM files"
