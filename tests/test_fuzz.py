"""Fuzzing the two readers of text from outside: the profile loader and the Overpass JSON
reader. Whatever the input, the result is a value or an error of ours (a clear message, an
exit code other than 70), never another exception; a profile that loads holds only finite
numbers in range and a run name that is a plain folder name."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.kernel.errors import ProfileError, Sig2osmError
from pipeline.osm_files import read_osm_file
from pipeline.profile import MAX_DISTANCE_M, _name_problem, load_profile

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

NASTY = st.sampled_from([
    ".nan", ".inf", "-.inf", "1e308", "-1e308", "1e-400", "0", "-1", "1e3", "2", "-0.0",
    "99999999999999999999999999", "!!python/name:os.system", '!!int "thirty"', "!!binary aGk=",
    "!!float x", "!!python/object:os.system {}", "!!set {a}", "~", "null", "true", "[]", "{}",
    "[1, 2]", "[1, 2, 3, 4]", "[-200, 0, 200, 1]", "{a: 1}", '"\\0"', '"\\ud800"', '"a/b"',
    '".."', "index.html", "&x 1", "*x", "'", "{", "]", "a: b: c", "- x", '"' + "a" * 300 + '"',
    "!!timestamp 2020-13-45", "0x1F", "1_000", "+.5", "<<: *x", "@", "`", "%", "|\n  x",
])
TEXT = st.text(max_size=12).map(json.dumps)


def _value(valid: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(valid), NASTY, TEXT)


PROFILE = """name: {name}
source:
  path: {path}
  id: {id}
osm:
  match: {match}
  file: {file}
  bounds: {bounds}
  timeout: {timeout}
  maxsize: {maxsize}
  expect_empty: {expect}
tags: {tags}
match:
  distance: {distance}
  match_threshold: {mt}
  review_threshold: {rt}
  review_margin: {rm}
  radii: {radii}
  area: {area}
changeset:
  chunk_size: {chunk}
  hashtags: {hashtags}
"""
FIELDS = {"name": "benches", "path": "layer.geojson", "id": "ID",
          "match": "{amenity: bench}", "file": "osm.json", "bounds": "[5, 45, 6, 46]",
          "timeout": "180", "maxsize": "536870912", "expect": "false",
          "tags": "{amenity: bench}", "distance": "30", "mt": "0.6", "rt": "0.35", "rm": "0.1",
          "radii": "{node: 20}", "area": "null", "chunk": "1000", "hashtags": "[]"}


def _write(text: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sig2osm-fuzz-"))
    path = folder / "profile.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def _check_loaded(path: Path) -> None:
    try:
        profile = load_profile(path)
    except ProfileError:
        return
    m, osm = profile.match, profile.osm
    assert 0 < m.distance <= MAX_DISTANCE_M
    assert all(0 <= v <= 1 for v in (m.match_threshold, m.review_threshold, m.review_margin))
    assert all(math.isfinite(v) and 0 < v <= MAX_DISTANCE_M for v in m.radii.values())
    assert all(math.isfinite(v) for v in [*(osm.bounds or []), *(m.area or [])])
    assert 1 <= osm.timeout <= 86_400 and _name_problem(profile.name) is None


@FUZZ
@given(st.fixed_dictionaries({key: _value(valid) for key, valid in FIELDS.items()}))
def test_no_profile_value_crashes_the_loader(values: dict[str, str]) -> None:
    _check_loaded(_write(PROFILE.format(**values)))


@FUZZ
@given(st.text(max_size=300))
def test_no_profile_text_crashes_the_loader(text: str) -> None:
    _check_loaded(_write(text))


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                 st.lists(st.integers(-3, 3), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
DEGREES = st.one_of(st.floats(-200, 200), JUNK)
REF = st.one_of(st.integers(-5, 5), JUNK)
TAGS = st.one_of(st.dictionaries(st.sampled_from(["amenity", "ref:x", "name", "type"]),
                                 st.one_of(st.sampled_from(["bench", "multipolygon", "x"]), JUNK),
                                 max_size=3), JUNK)
POINT = st.one_of(st.fixed_dictionaries({"lat": DEGREES, "lon": DEGREES}), JUNK)
MEMBER = st.one_of(st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["node", "way", "relation"]), JUNK), "ref": REF},
    optional={"role": st.one_of(st.just("outer"), JUNK),
              "geometry": st.one_of(st.lists(POINT, max_size=4), JUNK)}), JUNK)
ELEMENT = st.one_of(st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["node", "way", "relation", "area", "count"]), JUNK),
     "id": st.one_of(st.integers(-2**70, 2**70), JUNK)},
    optional={"version": st.one_of(st.integers(-2, 2**40), JUNK), "lat": DEGREES, "lon": DEGREES,
              "tags": TAGS, "nodes": st.one_of(st.lists(REF, max_size=5), JUNK),
              "members": st.one_of(st.lists(MEMBER, max_size=3), JUNK),
              "geometry": st.one_of(st.lists(POINT, max_size=5), JUNK)}), JUNK)
PAYLOAD = st.fixed_dictionaries(
    {"elements": st.one_of(st.lists(ELEMENT, max_size=8), JUNK)},
    optional={"osm3s": st.one_of(st.fixed_dictionaries({"timestamp_osm_base": JUNK}), JUNK),
              "remark": JUNK, "generator": JUNK, "version": JUNK})


def _read(payload: Any) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sig2osm-fuzz-"))
    path = folder / "answer.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    try:
        data = read_osm_file(path, {"amenity": "*"}, "ref:x", [0.0, 0.0, 1.0, 1.0])
    except Sig2osmError:
        return
    json.dumps(data.to_json(), allow_nan=False)  # what the cache keeps


@FUZZ
@given(PAYLOAD)
def test_no_overpass_answer_crashes_the_reader(payload: dict[str, Any]) -> None:
    _read(payload)


@FUZZ
@given(st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["node", "way", "relation"]), "id": st.integers(1, 6),
     "version": st.integers(1, 3), "lat": st.floats(-1, 2), "lon": st.floats(-1, 2),
     "tags": st.just({"amenity": "bench", "type": "multipolygon"}),
     "nodes": st.lists(st.integers(1, 6), max_size=5),
     "members": st.lists(st.fixed_dictionaries({"type": st.just("way"), "ref": st.integers(1, 6),
                                                "role": st.just("outer")}), max_size=3)}),
    max_size=10))
def test_no_well_formed_answer_crashes_the_builder(elements: list[dict[str, Any]]) -> None:
    """Well-typed elements in odd combinations (ways of missing or repeated nodes, relations
    of any ways) reach the geometry builder."""
    _read({"osm3s": {"timestamp_osm_base": "x"}, "elements": elements})
