"""Areas matched to areas: overlap dominates names, far scraps do not compete, and an object of a
related kind with the same name (a garden for a park) is a review, never a duplicate."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely
from shapely import affinity

from conflation.matching import conflate
from pipeline.ingest import SourceFeature
from pipeline.kernel.decisions import CREATE, REVIEW, UNCHANGED
from pipeline.kernel.osm import OsmData, candidate_kinds
from pipeline.osm_files import read_osm_file
from tests.conftest import matching

CRS = "EPSG:32632"  # Heidelberg
PARKS = {"leisure": "park"}
RELATED = [{"leisure": "garden"}, {"leisure": "playground"}]


@pytest.fixture(scope="module")
def heidelberg(data: Path) -> OsmData:
    return read_osm_file(data / "osm" / "heidelberg.osm.pbf", candidate_kinds(PARKS, RELATED),
                         None)


def _parks_only(osm: OsmData) -> OsmData:
    from dataclasses import replace

    return replace(osm, elements=tuple(e for e in osm.elements if e.tags.get("leisure") == "park"))


def _element(osm: OsmData, key: str):  # type: ignore[no-untyped-def]
    return next(e for e in osm.elements if e.key == key)


def _redrawn(geometry: shapely.Geometry) -> shapely.Geometry:
    """The park as a city GIS draws it: a little smaller and shifted (IoU ≈ 0.83)."""
    return affinity.translate(affinity.scale(geometry, 0.96, 0.96), 0.00008, 0.00004)


def test_overlap_outweighs_a_partly_different_name(heidelberg: OsmData) -> None:
    osm = _parks_only(heidelberg)
    park = _element(osm, "way/24688866")  # Menzerpark
    feature = SourceFeature("P1", _redrawn(park.geometry),
                            {"leisure": "park", "name": "Menzer Park Anlage"}, {})
    decision = conflate([feature], osm, CRS, matching(PARKS, related=RELATED))[0]
    assert decision.decision == UNCHANGED and decision.osm_key == "way/24688866"
    assert "OSM's value kept: name 'Menzerpark' (source 'Menzer Park Anlage')" in decision.reason


def test_unnamed_scraps_beyond_the_distance_do_not_compete(heidelberg: OsmData) -> None:
    osm = _parks_only(heidelberg)
    park = _element(osm, "way/75246883")  # Schlossgarten; an unnamed park lies 126 m away
    feature = SourceFeature("P2", _redrawn(park.geometry),
                            {"leisure": "park", "name": "Schlossgarten Schwetzingen"}, {})
    decision = conflate([feature], osm, CRS, matching(PARKS, related=RELATED))[0]
    assert decision.decision == UNCHANGED and decision.osm_key == "way/75246883"
    scrap = next(c for c in decision.candidates if c.osm_key == "way/123815173")
    assert scrap.distance_m > 100 and scrap.score < 0.2  # was 0.52: a review of a scrap


def test_a_related_kind_with_the_same_name_is_a_review(heidelberg: OsmData) -> None:
    garden = _element(heidelberg, "way/29295506")  # leisure=garden, Nibelungengarten
    point = affinity.translate(garden.geometry.representative_point(), 0.0001, 0)
    feature = SourceFeature("P3", point, {"leisure": "park", "name": "Nibelungen-Garten"}, {})
    alone = conflate([feature], _parks_only(heidelberg), CRS, matching(PARKS))[0]
    assert alone.decision == CREATE  # without osm.related the garden is not even read
    decision = conflate([feature], heidelberg, CRS, matching(PARKS, related=RELATED))[0]
    assert decision.decision == REVIEW and decision.proposed == CREATE
    assert decision.reason.startswith("OSM has way/29295506 (leisure=garden) named "
                                      "'Nibelungengarten'")
    assert decision.osm is None  # a related object is never modified
