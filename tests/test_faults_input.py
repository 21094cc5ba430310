"""Fault injection, inputs: every bad profile, OSM file, review file and text that used to crash
(exit 70) or pass silently, each now a clear error with its exit code, naming the file, key,
element or field; the outputs of an earlier run stay as they were and no process is left."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import re
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.faults import NAME, children_of, grenoble_profile, visible_digests

ANSWER = "grenoble-horodateurs/INPUT/osm-raw-data.json"


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """`out/` after one good run of the Grenoble example, and what its files hold."""
    folder = tmp_path_factory.mktemp("inputs")
    assert main(["-q", "run", str(grenoble_profile(folder)), "--out", str(folder / "out")]) == 0
    return folder / "out", visible_digests(folder / "out" / NAME)


def _refused(profile: Path, out: Path, code: int, message: str,
             capsys: pytest.CaptureFixture[str], command: str = "run") -> None:
    capsys.readouterr()
    assert main(["-q", command, str(profile), "--out", str(out)]) == code
    err = " ".join(capsys.readouterr().err.split())
    assert re.search(message, err), err
    assert "internal error" not in err
    assert not multiprocessing.active_children() and not children_of(os.getpid())


def _osm_answer(data: Path, tmp_path: Path, edit: object = None, name: str = "answer.json"
                ) -> Path:
    payload = json.loads((data / ANSWER).read_bytes())
    if callable(edit):
        edit(payload)
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return path


LONG = "a" * 300
PROFILE_CASES = {
    "distance NaN": ("distance: 30", "distance: .nan",
                     r"match\.distance \(line 25\): expected a finite number \(metres\) greater "
                     r"than 0 and at most 50000, got nan"),
    "distance inf": ("distance: 30", "distance: .inf", r"match\.distance \(line 25\).* got inf"),
    "distance 1e308": ("distance: 30", "distance: 1e308",
                       r"match\.distance \(line 25\).* got 1e\+308"),
    "python tag": ("distance: 30", "distance: !!python/name:os.system",
                   r"match\.distance \(line 25\): YAML tag '!!python/name:os\.system' is not "
                   r"allowed"),
    "int thirty": ("distance: 30", 'distance: !!int "thirty"',
                   r"match\.distance \(line 25\): expected a number, got 'thirty' that YAML "
                   r"cannot read as !!int"),
    "name with NUL": ("name: grenoble-parking-meters", 'name: "grenoble\\0x"',
                      r"name \(line 3\): 'grenoble\\x00x' holds a NUL character; expected "
                      r"plain text"),
    "name of 300": ("name: grenoble-parking-meters", f"name: {LONG}",
                    r"name \(line 3\): 'a{60}'… \(300 characters\) is too long"),
    "name index.html": ("name: grenoble-parking-meters", "name: index.html",
                        r"name \(line 3\): 'index\.html' is a reserved name"),
    "bounds NaN": ("bounds: [5.6776, 45.1541, 5.7531, 45.2140]",
                   "bounds: [5.6776, 45.1541, .nan, 45.2140]",
                   r"osm\.bounds \(line 16\): expected \[west, south, east, north\] in degrees"),
    "bounds off the globe": ("bounds: [5.6776, 45.1541, 5.7531, 45.2140]",
                             "bounds: [5.6776, 45.1541, 500, 45.2140]",
                             r"osm\.bounds \(line 16\).*\(longitudes -180 to 180"),
    "threshold 2": ("  distance: 30", "  distance: 30\n  match_threshold: 2",
                    r"match\.match_threshold \(line 26\): expected a finite number \(score\) at "
                    r"least 0 and at most 1, got 2\.0"),
    "timeout 0": ("  file: ", "  timeout: 0\n  file: ",
                  r"osm\.timeout \(line 13\): expected a finite number \(seconds\) at least 1"),
    "aliases without end": ("\ntags:", "\nx0: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"x{i}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 10)}]\n" for i in range(1, 8))
        + "tags:", r"more than 100000 values once YAML aliases are expanded"),
}


@pytest.mark.parametrize("case", PROFILE_CASES, ids=list(PROFILE_CASES))
def test_a_bad_profile_is_a_profile_error(case: str, earlier: tuple[Path, dict[str, str]],
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    old, new, message = PROFILE_CASES[case]
    out, before = earlier
    profile = grenoble_profile(tmp_path, **{old: new})
    _refused(profile, out, 2, message, capsys)
    assert visible_digests(out / NAME) == before


def _version_abc(payload: dict) -> None:  # type: ignore[type-arg]
    payload["elements"][0]["version"] = "abc"


def _id_2_70(payload: dict) -> None:  # type: ignore[type-arg]
    payload["elements"][0]["id"] = 2**70


def _no_candidate(payload: dict) -> None:  # type: ignore[type-arg]
    payload["elements"] = []


@pytest.mark.parametrize(("edit", "message"), [
    (_version_abc, r"answer\.json: element 1 \(node/2826869155\): 'version' is 'abc'; expected "
                   r"an integer"),
    (_id_2_70, r"element 1 \(node/1180591620717411303424\): 'id' 1180591620717411303424 is out "
               r"of range"),
    (_no_candidate, r"Recorded Overpass answer .*answer\.json holds no candidate \(amenity="
                    r"vending_machine, vending=parking_tickets, or ref:FR:Grenoble:horodateur\) "
                    r"for 851 usable source features"),
], ids=["version-abc", "id-2^70", "no-candidate"])
def test_a_bad_recorded_answer_is_an_osm_data_error(
        edit: object, message: str, earlier: tuple[Path, dict[str, str]], tmp_path: Path,
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, before = earlier
    answer = _osm_answer(data, tmp_path, edit)
    profile = grenoble_profile(tmp_path, **{str(data / ANSWER): str(answer)})
    _refused(profile, out, 4, message, capsys)
    assert visible_digests(out / NAME) == before


def test_an_empty_answer_is_accepted_when_the_profile_expects_it(
        tmp_path: Path, data: Path) -> None:
    answer = _osm_answer(data, tmp_path, _no_candidate)
    profile = grenoble_profile(tmp_path, **{str(data / ANSWER): str(answer),
                                            "  file: ": "  expect_empty: true\n  file: "})
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / NAME / "report.json").read_text())
    assert report["counts"]["create"] == 851


@pytest.mark.parametrize(("content", "message"), [
    (b"not gzip at all", r"bad\.osm\.gz: cannot be read as a \.gz file \(Not a gzipped file"),
    (gzip.compress(b'{"elements": [')[:20], r"bad\.osm\.gz: cannot be read as a \.gz file"),
], ids=["not-gzip", "cut-gzip"])
def test_a_gz_file_that_is_not_gzip_is_named(content: bytes, message: str,
                                             earlier: tuple[Path, dict[str, str]],
                                             tmp_path: Path, data: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out, before = earlier
    (tmp_path / "bad.osm.gz").write_bytes(content)
    profile = grenoble_profile(tmp_path, **{str(data / ANSWER): str(tmp_path / "bad.osm.gz")})
    _refused(profile, out, 4, message, capsys)
    assert visible_digests(out / NAME) == before


@pytest.mark.parametrize("damage", ["cut", "foreign", "older key"])
def test_a_damaged_stage_cache_is_computed_again(damage: str,
                                                 earlier: tuple[Path, dict[str, str]],
                                                 tmp_path: Path) -> None:
    """`map` alone reads the conflation's kept decisions; a cut, foreign or outdated cache is
    never read (nor read by a second reader): the stage is computed again, same outputs."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(earlier[0], out, symlinks=True)
    kept, key = out / NAME / "work" / "conflate.json", out / NAME / "work" / "conflate.key"
    if damage == "cut":  # its key still says it is the right one
        kept.write_text(kept.read_text()[:100])
    elif damage == "foreign":
        kept.write_text('{"type": "Feature"}')
    else:
        key.write_text(key.read_text()[::-1])  # as an older cache format's key would differ
    before = visible_digests(out / NAME)
    assert main(["-q", "map", str(grenoble_profile(tmp_path)), "--out", str(out)]) == 0
    assert visible_digests(out / NAME) == before  # the same pages again
    assert len(json.loads(kept.read_text())) == 851  # kept anew


def test_nul_and_lone_surrogates_skip_their_feature_naming_the_field(tmp_path: Path) -> None:
    """Before: GDAL cut `Rue\\u0000Nul` to `Rue` and made `\\ud800` a U+FFFD; both were created."""
    (tmp_path / "layer.geojson").write_text("""{"type": "FeatureCollection", "features": [
{"type": "Feature", "properties": {"ID": "1", "NOM": "Rue\\u0000Nul", "NOTE": "a"},
 "geometry": {"type": "Point", "coordinates": [5.720131, 45.180172]}},
{"type": "Feature", "properties": {"ID": "2", "NOM": "Rue\\ud800X", "NOTE": "b"},
 "geometry": {"type": "Point", "coordinates": [5.721163, 45.181149]}},
{"type": "Feature", "properties": {"ID": "3", "NOM": "Rue \\ud83d\\ude00", "NOTE": "c\\u0000"},
 "geometry": {"type": "Point", "coordinates": [5.722187, 45.182131]}}]}""")
    (tmp_path / "osm.json").write_text(json.dumps({"version": 0.6, "generator": "Overpass API",
                                                   "osm3s": {"timestamp_osm_base": "x"},
                                                   "elements": []}))
    (tmp_path / "p.yml").write_text(f"""name: nul-values
source: {{path: layer.geojson, id: ID}}
osm: {{match: {{highway: street_lamp}}, file: {tmp_path / "osm.json"}, bounds: [5, 45, 6, 46]}}
tags: {{highway: street_lamp, name: "{{NOM}}"}}
""")
    assert main(["-q", "run", str(tmp_path / "p.yml"), "--out", str(tmp_path / "out")]) == 0
    decisions = {f["properties"]["source_id"]: f["properties"] for f in json.loads(
        (tmp_path / "out" / "nul-values" / "review.geojson").read_text())["features"]}
    assert decisions["1"]["decision"] == "skip"
    assert decisions["1"]["reason"].startswith("field NOM holds a NUL character at position 3")
    assert decisions["2"]["decision"] == "skip"
    assert decisions["2"]["reason"].startswith("field NOM holds a lone surrogate U+D800")
    assert decisions["3"]["decision"] == "create"  # an emoji (a valid pair); NOTE feeds no tag
    assert decisions["3"]["tags"]["name"] == "Rue 😀"
    osc = (tmp_path / "out" / "nul-values" / "changes.osc").read_text()
    assert 'v="Rue"' not in osc and "\ufffd" not in osc


@pytest.mark.parametrize(("text", "message"), [
    ("symbol_size: .nan", r"symbol_size is nan; expected a finite number of page points"),
    ("frame: [0, 0, .inf, 10]", r"frame is inf; expected a finite number"),
    ("categories: [{name: a, tolerance: abc}]", r"category 'a': tolerance is 'abc'"),
], ids=["nan", "inf", "text"])
def test_pdf_legend_numbers_are_finite(text: str, message: str, tmp_path: Path) -> None:
    from pipeline.kernel.errors import PdfError
    from pipeline.pdf.classify import load_legend

    (tmp_path / "legend.yml").write_text(text)
    with pytest.raises(PdfError, match=message):
        load_legend(tmp_path / "legend.yml")
