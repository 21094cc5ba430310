"""Where a layer lies: outliers, coordinate precision, CRS diagnosis, where OSM data lies."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from conflation.policies import merge_tags
from pipeline.kernel.errors import InputError
from pipeline.kernel.settings import MatchConfig
from pipeline.osm_files import read_osm_file
from pipeline.placement import (
    RawSample,
    check_placement,
    coordinate_quantum,
    find_outliers,
    footprint,
)

GRENOBLE = "grenoble-horodateurs/INPUT/data-grenoble.json"


@pytest.fixture(scope="module")
def meters(data: Path) -> np.ndarray:
    frame = gpd.read_file(data / GRENOBLE)
    points = shapely.point_on_surface(frame.geometry.values)
    return np.column_stack([shapely.get_x(points), shapely.get_y(points)])


def test_outliers_are_far_small_groups_not_distant_parts(meters: np.ndarray) -> None:
    spoiled = np.vstack([meters, [[45.18, 5.72], [0.0, 0.0], [0.0, 0.0]]])
    found = find_outliers(spoiled[:, 0], spoiled[:, 1])
    assert sorted(o.index for o in found) == [851, 852, 853]
    assert {o.group for o in found} == {1, 2}  # the swapped one alone, the two at 0,0 together
    assert all(o.km > 3000 for o in found)
    assert find_outliers(meters[:, 0], meters[:, 1]) == []
    # A national layer: Grenoble's meters and the same pattern shifted 7 000 km (an overseas
    # department) are two parts, not an outlier.
    overseas = np.vstack([meters, meters + np.array([-61.0, -29.0])])
    assert find_outliers(overseas[:, 0], overseas[:, 1]) == []


def test_coordinate_quantum() -> None:
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(5.6, 5.8, 200), rng.uniform(45.1, 45.3, 200)
    assert coordinate_quantum(lon, lat, geographic=True) is None  # full precision
    assert coordinate_quantum(lon.round(4), lat.round(4), True) == pytest.approx(11.132)
    assert coordinate_quantum(np.round(lon * 1e5, -1), np.round(lat * 1e5, -1), False) == 10.0


def test_a_swapped_layer_is_diagnosed(meters: np.ndarray) -> None:
    swapped = meters[:, ::-1]
    sample = RawSample("EPSG:4326", tuple(swapped[:, 0]), tuple(swapped[:, 1]))
    area = shapely.box(5.6776, 45.1541, 5.7531, 45.2140)
    with pytest.raises(InputError, match="set source.swap_axes: true"):
        check_placement(swapped, sample, area, "the area", "layer")
    right = RawSample("EPSG:4326", tuple(meters[:, 0]), tuple(meters[:, 1]))
    assert check_placement(meters, right, area, "the area", "layer") is None  # all inside


def test_where_osm_data_lies_not_what_the_header_says(data: Path) -> None:
    """heidelberg.osm.pbf declares a header box far larger than its data."""
    osm = read_osm_file(data / "osm" / "heidelberg.osm.pbf", {"amenity": "bench"}, None)
    assert osm.coverage is not None and "reduced to where the data lies" in osm.coverage_origin
    west, south, east, north = osm.coverage.bounds
    assert east - west < 2 and north - south < 2  # the region, not half the planet
    assert osm.coverage.contains(shapely.Point(8.6944, 49.4094))  # Heidelberg's old town
    assert footprint(np.array([]), np.array([])) is None


def test_values_equal_after_normalising_are_no_difference() -> None:
    merge = merge_tags({"name": "BURGER KING", "brand": "Mars", "addr:street": "Av. Jean-Jaurès"},
                       {"name": "Burger King", "brand": "mars",
                        "addr:street": "Avenue Jean Jaures"},
                       MatchConfig(policies={"name": "review-if-different"},
                                   authoritative=["brand"]))
    assert merge.tags["name"] == "BURGER KING" and merge.tags["brand"] == "Mars"
    assert not merge.changes_anything and not merge.conflicts and not merge.kept
    different = merge_tags({"name": "Chez Paul"}, {"name": "Le Bistrot"})
    assert different.tags["name"] == "Chez Paul" and not different.conflicts  # kept, shown
    assert different.kept == {"name": ("Chez Paul", "Le Bistrot")}


def test_osm_bounds_far_larger_than_a_recorded_answer_is_said(
        data: Path, caplog: pytest.LogCaptureFixture) -> None:
    answer = data / "grenoble-horodateurs/INPUT/osm-raw-data.json"
    read_osm_file(answer, {"amenity": "vending_machine"}, None, [5.6776, 45.1541, 5.7531, 45.2140])
    assert "of osm.bounds" not in caplog.text  # the commune's box: the meters are its centre
    read_osm_file(answer, {"amenity": "vending_machine"}, None, [5.3, 44.9, 6.1, 45.5])
    assert "its 17 candidates lie in 0.3 % of osm.bounds" in caplog.text
