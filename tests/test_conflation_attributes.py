"""Attribute-only sources: a street-name table without geometry matched to OSM ways by name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from exports.osmchange import build_changes, osmchange_xml
from exports.review import review_feature
from pipeline.ingest import ingest
from pipeline.kernel.decisions import Decision, count_decisions
from pipeline.kernel.errors import InputError, ProfileError
from pipeline.profile import load_profile
from pipeline.runner import run_stages
from pipeline.stages import RunContext

LON0, LAT0 = -1.70, 48.10  # Rennes


def _lonlat(x: float, y: float) -> tuple[float, float]:
    """x metres east, y metres north of the origin."""
    return LON0 + x / 74_300, LAT0 + y / 111_200


NODES = {1: (0, 0), 2: (100, 0), 3: (200, 0), 4: (300, 0), 5: (0, 300), 6: (200, 300),
         7: (0, 600), 8: (100, 600), 9: (2000, 600), 10: (2100, 600), 11: (0, 900),
         12: (100, 900), 13: (500, 0), 14: (3500, 0), 15: (3600, 0), 16: (0, 1200),
         17: (100, 1200), 18: (0, 1500), 19: (100, 1500)}
# way id -> (version, nodes, tags)
WAYS = {
    10: (3, (1, 2), {"highway": "residential", "name": "Rue de la Paix"}),
    11: (1, (2, 3), {"highway": "residential", "name": "Rue de la Paix",
                     "name:br": "Straed ar Peoc'h"}),
    12: (2, (3, 4), {"highway": "residential", "name": "Rue de la Paix"}),
    20: (1, (5, 6), {"highway": "primary", "name": "Avenue Jean Jaurès"}),
    30: (1, (7, 8), {"highway": "residential", "name": "Rue de la Gare"}),
    31: (1, (9, 10), {"highway": "residential", "name": "Rue de la Gare"}),  # 1.9 km away
    40: (1, (11, 12), {"highway": "residential", "name": "Rue Gambette"}),
    60: (1, (14, 15), {"highway": "residential", "name": "Rue Hors Zone"}),  # outside match.area
    70: (1, (16, 17), {"highway": "residential", "name": "Rue Double"}),
    80: (1, (18, 19), {"highway": "pedestrian", "name": "Place Conflit", "name:br": "Plasenn X"}),
}
BUS_STOP = '<node id="13" version="1" lat="{lat:.7f}" lon="{lon:.7f}"><tag k="highway" ' \
           'v="bus_stop"/><tag k="name" v="Rue Inconnue"/></node>'
# Headerless, ';'-separated, like Rennes' toponymes.csv; a trailing empty column too.
TABLE = """1;Rue de la Paix;Straed ar Peoc'h;
2;Av. Jean-Jaurès;Bali Jean Jaurès;
3;Rue de la Gare;Straed an Ti-gar;
4;Rue Gambetta;Straed Gambetta;
5;Rue Inconnue;Straed Dianav;
6;Rue Hors Zone;Straed Er-maez;
7;Rue Double;Straed Doubl;
8;rue double;Straed Doubl;
9;;Straed Hep Anv;
10;Place Conflit;Plasenn Y;
"""
PROFILE = """name: streets
source:
  path: streets.csv
  id: id
  geometry: none
  columns: [id, name, name_br]
osm:
  match: {{highway: "*"}}
  file: map.osm
{diff}tags:
  name: "{{name}}"
  name:br: "{{name_br}}"
match:
  area: {area}
{extra}"""


def _osm_xml() -> str:
    west, south = _lonlat(-500, -500)
    east, north = _lonlat(4000, 2000)
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">',
             f'<bounds minlat="{south:.7f}" minlon="{west:.7f}" maxlat="{north:.7f}" '
             f'maxlon="{east:.7f}"/>']
    for i, (x, y) in NODES.items():
        lon, lat = _lonlat(x, y)
        if i == 13:
            lines.append(BUS_STOP.format(lon=lon, lat=lat))
        else:
            lines.append(f'<node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for i, (version, nodes, tags) in WAYS.items():
        lines.append(f'<way id="{i}" version="{version}">')
        lines += [f'<nd ref="{n}"/>' for n in nodes]
        lines += [f'<tag k="{k}" v="{v}"/>'.replace("'", "&apos;") for k, v in tags.items()]
        lines.append("</way>")
    return "\n".join([*lines, "</osm>"]) + "\n"


def _area() -> str:
    west, south = _lonlat(-500, -500)
    east, north = _lonlat(3000, 2000)  # way 60 at 3.5 km lies outside
    return json.dumps([round(v, 7) for v in (west, south, east, north)])


def _setup(folder: Path, extra: str = "", diff: str = "", name: str = "streets.yml") -> Path:
    (folder / "map.osm").write_text(_osm_xml(), encoding="utf-8")
    (folder / "streets.csv").write_text(TABLE, encoding="utf-8")
    profile = folder / name
    profile.write_text(PROFILE.format(area=_area(), extra=extra, diff=diff), encoding="utf-8")
    return profile


def _decide(profile: Path) -> list[Decision]:
    ctx = RunContext(load_profile(profile), profile.parent / "out")
    return run_stages(ctx, ["conflate"])["conflate"]


def _by_id(decisions: list[Decision]) -> dict[str | None, Decision]:
    return {d.source_id: d for d in decisions}


def test_headerless_table_is_read_with_the_given_column_names(tmp_path: Path) -> None:
    profile = load_profile(_setup(tmp_path))
    assert profile.source.path is not None
    layer = ingest(profile, profile.source.path)
    assert len(layer.features) == 10  # the first line is a row, not a header
    first = layer.features[0]
    assert first.geometry is None and first.skip_reason is None
    assert first.attributes["name_br"] == "Straed ar Peoc'h"
    assert "column_4" in first.attributes  # the trailing empty column gets a name
    assert first.tags == {"name": "Rue de la Paix", "name:br": "Straed ar Peoc'h"}
    assert layer.metric_crs == "EPSG:32630"  # from match.area: UTM 30N around Rennes


def test_more_column_names_than_columns_is_an_error(tmp_path: Path) -> None:
    path = _setup(tmp_path)
    path.write_text(path.read_text().replace("[id, name, name_br]",
                                             "[id, name, name_br, a, b]"), encoding="utf-8")
    profile = load_profile(path)
    assert profile.source.path is not None
    with pytest.raises(InputError, match="names 5 columns but the rows have 4"):
        ingest(profile, profile.source.path)


def test_profile_checks_geometry_and_area(tmp_path: Path) -> None:
    path = _setup(tmp_path)
    text = path.read_text().replace("geometry: none", "geometry: lines")
    text = text.replace(f"area: {_area()}", "area: [1, 2, 0, 3]")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as error:
        load_profile(path)
    assert "source.geometry: expected 'file' or 'none'" in str(error.value)
    assert re.search(r"match\.area \(line \d+\): expected \[west, south, east, north\]",
                     str(error.value))


def test_one_decision_per_row_by_name_within_the_area(tmp_path: Path) -> None:
    decisions = _decide(_setup(tmp_path))
    assert len(decisions) == 10  # every row exactly one decision (no match.ref: no missing)
    got = _by_id(decisions)
    assert {k: d.decision for k, d in got.items()} == {
        "1": "modify", "2": "modify", "3": "review", "4": "review", "5": "skip", "6": "skip",
        "7": "review", "8": "review", "9": "skip", "10": "unchanged"}
    assert "no OSM street named 'Rue Inconnue' in the area" in got["5"].reason  # not the bus stop
    assert "no OSM street named 'Rue Hors Zone'" in got["6"].reason  # outside match.area
    assert "2 groups of OSM ways named 'Rue de la Gare'" in got["3"].reason
    assert set(got["3"].osm_keys) == {"way/30", "way/31"}  # accept takes both, a way one of them
    assert "closest 'Rue Gambette' (way/40)" in got["4"].reason and got["4"].proposed == "modify"
    assert "rows 7, 8 all name the OSM street 'Rue Double'" in got["7"].reason
    assert got["7"].osm is None and got["8"].osm is None
    # A different value is OSM's to keep (add-if-missing), shown, not a review.
    assert "OSM's value kept: name:br 'Plasenn X' (source 'Plasenn Y')" in got["10"].reason
    assert "no name to find the street by" in got["9"].reason


def test_a_street_of_several_ways_is_one_decision_modifying_the_ways_that_change(
        tmp_path: Path) -> None:
    paix = _by_id(_decide(_setup(tmp_path)))["1"]
    assert paix.osm_keys == ["way/10", "way/12", "way/11"]  # changed ways first
    assert "sets name:br on 2 of 3 way(s)" in paix.reason
    assert paix.tags["name:br"] == "Straed ar Peoc'h" and paix.tags["name"] == "Rue de la Paix"
    assert paix.geometry is not None and paix.geometry.length > 0.003  # the three ways' union
    osc = osmchange_xml(build_changes([paix]))
    assert '<way id="10" version="3">' in osc and '<way id="12" version="2">' in osc
    assert 'way id="11"' not in osc  # already has the tag: not touched
    review = review_feature(paix)["properties"]
    assert review["osm_id"] == "way/10"
    assert review["osm_ids"] == ["way/10", "way/12", "way/11"]
    again = Decision.from_json(json.loads(json.dumps(paix.to_json())))
    assert again.extra_osm == paix.extra_osm and again.extra_tags == paix.extra_tags
    old = {k: v for k, v in paix.to_json().items() if k not in ("extra_osm", "extra_tags")}
    assert Decision.from_json(old).extra_osm == ()  # files written before the field still load


def test_names_differing_in_case_accents_abbreviations_and_articles_match(
        tmp_path: Path) -> None:
    jaures = _by_id(_decide(_setup(tmp_path)))["2"]
    assert jaures.decision == "modify" and jaures.osm_key == "way/20"
    assert "name" not in jaures.merge.new and jaures.tags["name"] == "Avenue Jean Jaurès"  # type: ignore[union-attr]


def test_run_apply_run_again_gives_nothing_to_do_and_reviewer_answers_hold(
        tmp_path: Path) -> None:
    decisions_file = tmp_path / "decisions.yml"
    decisions_file.write_text('"3": way/31\n"4": accept\n"5": create\n"7": reject\n',
                              encoding="utf-8")
    extra = "  ref: ref:test\n  decisions: decisions.yml\n"
    first = _by_id(_decide(_setup(tmp_path, extra)))
    assert first["3"].decision == "modify" and first["3"].osm_keys == ["way/31"]
    assert first["4"].decision == "modify" and first["4"].osm_key == "way/40"
    assert first["5"].decision == "skip" and "cannot be created" in first["5"].reason
    assert first["7"].decision == "skip"
    assert first["8"].decision == "modify"  # row 7 rejected: row 8 alone names 'Rue Double'
    osc = osmchange_xml(build_changes(list(first.values())))
    (tmp_path / "changes.osc").write_text(osc, encoding="utf-8")
    again = _decide(_setup(tmp_path, extra, "  diff: changes.osc\n", "again.yml"))
    counts = count_decisions(again)
    assert counts["modify"] == 0 and counts["create"] == 0 and counts["missing"] == 0
    assert counts["unchanged"] == 6  # rows 1–4, 8 and 10 (OSM keeps its name:br), by ref:test
    assert "same ref:test" in _by_id(again)["1"].reason
