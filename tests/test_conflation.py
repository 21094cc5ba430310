"""Conflation engine: candidates, scoring, one-to-one assignment, doubts, reviewer decisions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from conflation.assignment import assign
from conflation.facts import RunFacts
from conflation.feedback import ReviewerDecisionError, parse_decisions
from conflation.matching import conflate
from conflation.names import name_similarity, normalise_name
from pipeline.kernel.osm import OsmData, OsmElement
from tests.conftest import matching

CRS = "EPSG:32631"  # UTM 31N, around Grenoble
REF = "ref:test"  # matched objects get it, so a match is a modify
LON, LAT = 5.72, 45.18
M_LON = 1 / (111_320 * math.cos(math.radians(LAT)))
M_LAT = 1 / 111_132


def at(x: float, y: float = 0.0) -> Point:
    """A point x metres east and y metres north of the test origin."""
    return Point(LON + x * M_LON, LAT + y * M_LAT)


@dataclass(frozen=True)
class Src:
    source_id: str
    geometry: BaseGeometry | None
    tags: dict[str, str] = field(default_factory=lambda: {"amenity": "bench"})
    skip_reason: str | None = None


def node(i: int, geometry: BaseGeometry, **tags: str) -> OsmElement:
    return OsmElement("node", i, 1, tags or {"amenity": "bench"}, geometry)


def way(i: int, geometry: BaseGeometry, **tags: str) -> OsmElement:
    return OsmElement("way", i, 3, tags, geometry, nodes=tuple(range(1, 5)))


def osm(*elements: OsmElement) -> OsmData:
    area = box(LON - 0.01, LAT - 0.01, LON + 0.01, LAT + 0.01)
    return OsmData(tuple(elements), area, "test box")


def by_id(decisions: list) -> dict:
    return {d.source_id: d for d in decisions}


def test_names_normalise_case_accents_punctuation_and_abbreviations() -> None:
    assert normalise_name("Av. Jean-Jaurès") == normalise_name("AVENUE JEAN JAURES")
    assert normalise_name("Bd St-Michel") == "boulevard saint michel"
    assert normalise_name("R. de la Paix") == "rue de la paix"
    assert name_similarity("Dior", "Diro") >= 0.95  # two letters swapped: one typo
    assert name_similarity("Parking 1", "Parking 2") <= 0.5  # numbers make different objects
    assert name_similarity("Hotel Metropole", "Hotel Ambassador") < 0.6


def test_greedy_would_be_wrong_the_assignment_is_globally_optimal() -> None:
    # S1 is 1 m from O1 and 24 m from O2; S2 is 20 m from O1 and far from O2. Nearest-first
    # gives O1 to S1 and leaves S2 to be created: a duplicate of O1. The optimum swaps them.
    sources = [Src("S1", at(-1)), Src("S2", at(20))]
    data = osm(node(1, at(0)), node(2, at(-25)))
    decisions = by_id(conflate(sources, data, CRS, matching(ref=REF)))
    assert (decisions["S1"].decision, decisions["S1"].osm_key) == ("modify", "node/2")
    assert (decisions["S2"].decision, decisions["S2"].osm_key) == ("modify", "node/1")


def test_assignment_maximises_the_total_score() -> None:
    import numpy as np

    # pairs (source, osm, score): greedy by score takes (0, 0, 0.95) and strands source 1.
    result = assign(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([0.95, 0.9, 0.93]), 0.1)
    assert result.chosen == {0: 1, 1: 2}
    assert result.rivals == {}


def test_two_candidates_with_close_scores_go_to_review_naming_both() -> None:
    sources = [Src("S1", at(0))]
    data = osm(node(1, at(5)), node(2, at(-6)))
    decision = conflate(sources, data, CRS, matching(ref=REF))[0]
    assert decision.decision == "review"
    assert "node/1" in decision.reason and "node/2" in decision.reason
    assert decision.proposed == "modify"


def test_several_sources_wanting_one_osm_object_go_to_review() -> None:
    sources = [Src("S1", at(-4)), Src("S2", at(4))]
    decisions = by_id(conflate(sources, osm(node(1, at(0))), CRS, matching(ref=REF)))
    assert {d.decision for d in decisions.values()} == {"review"}
    assert "S2" in decisions["S1"].reason and "S1" in decisions["S2"].reason


def test_names_separate_neighbours_and_a_different_name_is_not_a_match() -> None:
    shop = {"shop": "bakery"}
    sources = [Src("S1", at(8), {**shop, "name": "BOULANGERIE ST-MICHEL"}),
               Src("S2", at(2), {**shop, "name": "Au Bon Pain"})]
    data = osm(node(1, at(0), **shop, name="Boulangerie Saint-Michel"),
               node(2, at(30), **shop, name="Boulangerie du Port"))
    decisions = by_id(conflate(sources, data, CRS, matching(policies={"name": "keep-osm"})))
    assert (decisions["S1"].decision, decisions["S1"].osm_key) == ("unchanged", "node/1")
    assert decisions["S2"].decision == "create"
    assert "Boulangerie Saint-Michel" in decisions["S2"].reason


def test_point_polygon_and_line_pairings() -> None:
    school = Polygon([(at(-40).x, at(0, -40).y), (at(40).x, at(0, -40).y),
                      (at(40).x, at(0, 40).y), (at(-40).x, at(0, 40).y)])
    street = LineString([at(-200, 100), at(200, 100)])
    sources = [
        Src("poi", at(10), {"amenity": "school", "name": "École Jean Macé"}),
        Src("area", school.buffer(0.00005), {"amenity": "school", "name": "Ecole J. Macé"}),
        Src("line", LineString([at(-150, 103), at(150, 104)]),
            {"highway": "residential", "name": "R. Jean Macé", "name:br": "Straed Jean Macé"}),
    ]
    data = osm(way(10, school, amenity="school", name="École Jean Macé"),
               way(11, street, highway="residential", name="Rue Jean Macé"))
    settings = matching(policies={"name": "keep-osm"})
    decisions = by_id(conflate(sources, data, CRS, settings))
    assert decisions["line"].osm_key == "way/11"
    assert decisions["line"].decision == "modify"
    assert decisions["line"].merge is not None and "name:br" in decisions["line"].merge.new
    # The point inside the school grounds (distance 0) and the school's outline both want the
    # school: the better fit gets it, the other is a doubt, never a silent duplicate.
    assert (decisions["poi"].osm_key, decisions["poi"].distance_m) == ("way/10", 0.0)
    assert decisions["area"].decision == "review" and decisions["area"].proposed == "create"
    assert "way/10" in decisions["area"].reason and "poi" in decisions["area"].reason


def test_ref_is_decisive_and_never_given_to_another_feature() -> None:
    ref = "ref:test"
    sources = [Src("A", at(50), {"amenity": "bench", ref: "A"}),
               Src("B", at(1), {"amenity": "bench", ref: "B"})]
    data = osm(node(1, at(0), amenity="bench", **{ref: "A"}),
               node(2, at(300), amenity="bench", **{ref: "GONE"}))
    decisions = conflate(sources, data, CRS, matching(ref=ref))
    found = by_id(decisions)
    assert (found["A"].decision, found["A"].osm_key) == ("unchanged", "node/1")
    # node/1 at 1 m belongs to A: never given to B, but creating B beside it could be a
    # duplicate, so a person decides (as on the run that first matched node/1).
    assert (found["B"].decision, found["B"].proposed, found["B"].osm_key) == (
        "review", "create", None)
    assert "node/1" in found["B"].reason and "belongs to source feature A" in found["B"].reason
    missing = [d for d in decisions if d.decision == "missing"]
    assert [d.osm_key for d in missing] == ["node/2"]


def test_outside_coverage_and_unusable_features_are_skipped() -> None:
    sources = [Src("far", Point(LON + 1, LAT)), Src("bad", None, skip_reason="empty geometry")]
    decisions = by_id(conflate(sources, osm(node(1, at(0))), CRS, matching(ref=REF)))
    assert decisions["far"].decision == "skip" and "outside" in decisions["far"].reason
    assert decisions["bad"].decision == "skip"


def test_a_rejected_proposal_is_not_proposed_again() -> None:
    sources = [Src("S1", at(0)), Src("S2", at(100))]
    data = osm(node(1, at(3)), node(2, at(103)))
    first = by_id(conflate(sources, data, CRS, matching(ref=REF)))
    assert first["S1"].osm_key == "node/1" and first["S2"].osm_key == "node/2"
    verdicts = parse_decisions(
        "S1: {decision: reject, osm: node/1, date: 2024-05-02}\nS2: reject\n", "yaml", "d.yml")
    again = by_id(conflate(sources, data, CRS, matching(ref=REF), RunFacts(verdicts)))
    assert again["S1"].osm_key is None and again["S1"].decision == "create"
    assert all(c.osm_key != "node/1" for c in again["S1"].candidates)
    assert again["S2"].decision == "skip" and "rejected by reviewer" in again["S2"].reason


def test_forced_match_and_accept_are_kept() -> None:
    sources = [Src("S1", at(0)), Src("S2", at(100))]
    data = osm(node(1, at(3)), node(2, at(200)), node(3, at(95)), node(4, at(106)))
    verdicts = parse_decisions("source_id,decision,osm_id,date\nS1,node/2,,2024-05-02\n"
                               "S2,accept,,2024-05-02\n", "csv", "d.csv")
    decisions = by_id(conflate(sources, data, CRS, matching(ref=REF), RunFacts(verdicts)))
    assert (decisions["S1"].decision, decisions["S1"].osm_key) == ("modify", "node/2")
    assert "reviewer on 2024-05-02" in decisions["S1"].reason
    # S2 sat between node/3 and node/4 (a review); the reviewer accepted the proposal.
    assert decisions["S2"].decision == "modify" and decisions["S2"].osm_key == "node/3"


def test_decisions_file_errors_name_the_entry() -> None:
    with pytest.raises(ReviewerDecisionError, match=r"d.yml.*S9.*'maybe'"):
        parse_decisions("S9: maybe\n", "yaml", "d.yml")
    with pytest.raises(ReviewerDecisionError, match="source_id"):
        parse_decisions("id,what\n1,reject\n", "csv", "d.csv")


def test_a_projection_built_ahead_gives_the_same_decisions_and_a_wrong_one_is_ignored() -> None:
    """A run projects the OSM candidates while the layer is read, guessing its metric CRS."""
    from conflation.matching import project_osm

    data = osm(node(1, at(2)), node(2, at(40)), node(3, at(-25)),
               node(4, at(300), **{REF: "S9", "amenity": "bench"}))
    sources = [Src("S1", at(0)), Src("S2", at(38)), Src("S3", at(-20)), Src("S4", at(200))]
    settings = matching(ref=REF)
    plain = conflate(sources, data, CRS, settings)
    assert conflate(sources, data, CRS, settings, projected=project_osm(data, CRS)) == plain
    wrong_zone = project_osm(data, "EPSG:32630")  # UTM 30N: not the layer's CRS, not used
    assert conflate(sources, data, CRS, settings, projected=wrong_zone) == plain
    free = osm(node(1, at(2)), node(2, at(40)), node(3, at(-25)))  # no object held by a ref
    assert conflate(sources, free, CRS, settings, projected=project_osm(free, CRS)) == conflate(
        sources, free, CRS, settings)
