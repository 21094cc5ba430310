"""The Overpass client against a loopback server replaying recorded answers and faults."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point

from pipeline.http import HttpSettings
from pipeline.ingest import SourceFeature, SourceLayer
from pipeline.kernel.errors import FetchError, InputError, OsmDataError
from pipeline.kernel.settings import Profile
from pipeline.overpass import build_query, fetch_from_overpass, query_bbox, slot_wait, tiles
from pipeline.profile import load_profile
from tests.loopback import Loopback, Reply, overpass_replay, overpass_server, refused_url

FIXTURES = Path(__file__).parent / "fixtures" / "overpass"
PATH = "/api/interpreter"
FAST = HttpSettings(timeout=0.4, retries=3, backoff=0.01, max_wait=0.05)


@pytest.fixture(scope="module")
def grenoble_answer(data: Path) -> bytes:
    return (data / "grenoble-horodateurs" / "INPUT" / "osm-raw-data.json").read_bytes()


@pytest.fixture
def server() -> Any:
    with overpass_server() as loopback:
        yield loopback


def make_profile(tmp_path: Path, url: str, **osm: Any) -> Profile:
    extra = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in osm.items())
    text = f"""
name: meters
source: {{path: source.geojson, id: ID}}
osm:
  match: {{amenity: vending_machine, vending: parking_tickets}}
  overpass_url: {url}
{extra}tags: {{amenity: vending_machine}}
match: {{distance: 30, ref: "ref:FR:Grenoble:horodateur"}}
"""
    path = tmp_path / "profile.yml"
    path.write_text(text, encoding="utf-8")
    return load_profile(path)


def layer_of(count: int) -> SourceLayer:
    """`count` points in central Grenoble, 0.001° apart (the real meters are there too)."""
    features = tuple(SourceFeature(str(i), Point(5.72 + 0.001 * i, 45.188), {}, {})
                     for i in range(count))
    return SourceLayer(features, "EPSG:2154")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fetch(profile: Profile, tmp_path: Path, layer: SourceLayer | None = None,
          sleeps: Sleeps | None = None, **kw: Any) -> Any:
    return fetch_from_overpass(profile, layer or layer_of(3), tmp_path / "cache", settings=FAST,
                               sleep=sleeps if sleeps is not None else Sleeps(), **kw)


# --- faults ------------------------------------------------------------------------------


def test_429_then_success_is_retried_after_a_pause(tmp_path: Path, server: Loopback,
                                                    grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(429, "Too many requests", "text/plain"),
                         Reply(body=grenoble_answer)])
    sleeps = Sleeps()
    data = fetch(make_profile(tmp_path, server.url(PATH)), tmp_path, sleeps=sleeps)
    assert len(data.elements) == 17
    assert server.count(PATH) == 2
    assert sleeps == [0.01]


def test_429_honours_retry_after_within_the_bound(tmp_path: Path, server: Loopback,
                                                  grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(429, "", "text/plain", {"Retry-After": "30"}),
                         Reply(body=grenoble_answer)])
    sleeps = Sleeps()
    fetch(make_profile(tmp_path, server.url(PATH)), tmp_path, sleeps=sleeps)
    assert sleeps == [FAST.max_wait]  # 30 s asked, capped by the client's bound


def test_504_three_times_then_success(tmp_path: Path, server: Loopback,
                                      grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(504, "Gateway Timeout", "text/html")] * 3
                  + [Reply(body=grenoble_answer)])
    sleeps = Sleeps()
    data = fetch(make_profile(tmp_path, server.url(PATH)), tmp_path, sleeps=sleeps)
    assert len(data.elements) == 17
    assert server.count(PATH) == 4
    assert sleeps == [0.01, 0.02, 0.04]  # exponential backoff


def test_504_every_time_fails_clearly(tmp_path: Path, server: Loopback) -> None:
    server.script(PATH, [Reply(504, "Gateway Timeout", "text/html")])
    with pytest.raises(FetchError, match=r"failed after 4 attempts; last problem: HTTP 504"):
        fetch(make_profile(tmp_path, server.url(PATH)), tmp_path)
    assert server.count(PATH) == 4


def test_a_hang_past_the_timeout_is_retried(tmp_path: Path, server: Loopback,
                                            grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(body=grenoble_answer, delay=1.0), Reply(body=grenoble_answer)])
    data = fetch(make_profile(tmp_path, server.url(PATH)), tmp_path)
    assert len(data.elements) == 17
    assert server.count(PATH) == 2


def test_hangs_only_fail_with_the_timeout_named(tmp_path: Path, server: Loopback) -> None:
    server.script(PATH, [Reply(body=b"{}", delay=1.0)])
    slow = HttpSettings(timeout=0.3, retries=1, backoff=0.01, max_wait=0.05)
    with pytest.raises(FetchError, match=r"no answer within 0.3 s"):
        fetch_from_overpass(make_profile(tmp_path, server.url(PATH)), layer_of(3),
                            tmp_path / "cache", settings=slow, sleep=Sleeps())


@pytest.mark.parametrize("honest_length", [True, False])
def test_truncated_json_is_retried_and_never_cached(tmp_path: Path, server: Loopback,
                                                    grenoble_answer: bytes,
                                                    honest_length: bool) -> None:
    server.script(PATH, [Reply(body=grenoble_answer, truncate_at=300,
                               honest_length=honest_length), Reply(body=grenoble_answer)])
    profile = make_profile(tmp_path, server.url(PATH))
    assert len(fetch(profile, tmp_path).elements) == 17
    assert server.count(PATH) == 2
    assert len(fetch(profile, tmp_path).elements) == 17  # the cache holds the whole answer
    assert server.count(PATH) == 2


def test_truncated_json_every_time_fails_clearly(tmp_path: Path, server: Loopback,
                                                 grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(body=grenoble_answer, truncate_at=300)])
    with pytest.raises(FetchError, match=r"not complete JSON .*truncated"):
        fetch(make_profile(tmp_path, server.url(PATH)), tmp_path)


def test_runtime_error_remark_in_a_200_answer_is_an_error(tmp_path: Path, server: Loopback,
                                                          grenoble_answer: bytes) -> None:
    payload = json.loads(grenoble_answer)
    payload["elements"] = payload["elements"][:3]
    payload["remark"] = ('runtime error: Query timed out in "query" at line 3 after 181 '
                         'seconds.')
    server.script(PATH, [Reply(body=json.dumps(payload))])
    profile = make_profile(tmp_path, server.url(PATH))
    with pytest.raises(FetchError, match=r"runtime error: Query timed out"):
        fetch(profile, tmp_path)
    assert server.count(PATH) == 1  # the same query would time out again: no retry
    with pytest.raises(FetchError):
        fetch(profile, tmp_path)
    assert server.count(PATH) == 2  # and the partial answer was not cached


def test_connection_refused_fails_after_the_retries(tmp_path: Path) -> None:
    sleeps = Sleeps()
    with pytest.raises(FetchError, match=r"4 attempts; last problem: connection failed"):
        fetch(make_profile(tmp_path, refused_url(PATH)), tmp_path, sleeps=sleeps)
    assert len(sleeps) == 3


def test_content_type_with_charset_is_accepted(tmp_path: Path, server: Loopback,
                                               grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(body=grenoble_answer,
                               content_type="application/json; charset=utf-8")])
    data = fetch(make_profile(tmp_path, server.url(PATH)), tmp_path)
    assert len(data.elements) == 17
    assert data.meta["osm_base"] == "2019-02-06T09:03:02Z"


def test_an_html_page_with_200_is_an_error(tmp_path: Path, server: Loopback) -> None:
    server.script(PATH, [Reply(body="<html><body>Maintenance</body></html>",
                               content_type="text/html; charset=utf-8")])
    with pytest.raises(FetchError, match=r"HTML page instead of data: Maintenance"):
        fetch(make_profile(tmp_path, server.url(PATH)), tmp_path)


def test_syntax_error_400_names_the_server_explanation(tmp_path: Path, server: Loopback) -> None:
    server.script(PATH, [Reply(400, "<p><strong>Error</strong>: line 2: parse error</p>",
                               "text/html")])
    with pytest.raises(FetchError, match=r"HTTP 400.*line 2: parse error"):
        fetch(make_profile(tmp_path, server.url(PATH)), tmp_path)
    assert server.count(PATH) == 1


# --- the empty-result guard ----------------------------------------------------------------


def _empty_answer(with_base: bool = True) -> str:
    answer: dict[str, Any] = {"version": 0.6, "generator": "Overpass API", "elements": []}
    if with_base:
        answer["osm3s"] = {"timestamp_osm_base": "2024-05-01T10:00:00Z"}
    return json.dumps(answer)


def test_no_candidate_for_a_non_trivial_layer_is_an_error(tmp_path: Path,
                                                          server: Loopback) -> None:
    server.script(PATH, [overpass_replay(_empty_answer(), GRENOBLE_LAND)])
    with pytest.raises(OsmDataError, match=r"no candidate .* around 12 usable source features"):
        fetch(make_profile(tmp_path, server.url(PATH)), tmp_path, layer=layer_of(12))


GRENOBLE_LAND = (5.6, 45.1, 5.8, 45.3)  # where the loopback server holds OSM data


def test_expect_empty_allows_an_empty_answer(tmp_path: Path, server: Loopback) -> None:
    server.script(PATH, [overpass_replay(_empty_answer(), GRENOBLE_LAND)])
    profile = make_profile(tmp_path, server.url(PATH), expect_empty=True)
    data = fetch(profile, tmp_path, layer=layer_of(12))
    assert data.elements == ()
    assert data.coverage is not None and data.coverage.contains(Point(5.72, 45.188))
    assert b"out+count" in server.requests[-1].body  # OSM's presence there was checked


def _swapped(layer: SourceLayer) -> SourceLayer:
    return SourceLayer(tuple(replace(f, geometry=Point(f.geometry.y, f.geometry.x))
                             for f in layer.features), layer.metric_crs)


def test_expect_empty_never_creates_a_swapped_layer(tmp_path: Path, server: Loopback) -> None:
    server.script(PATH, [overpass_replay(_empty_answer(), GRENOBLE_LAND)])
    profile = make_profile(tmp_path, server.url(PATH), expect_empty=True)
    with pytest.raises(InputError, match=r"swapped; set source.swap_axes: true"):
        fetch(profile, tmp_path, layer=_swapped(layer_of(12)))


def test_expect_empty_never_creates_where_osm_has_no_data(tmp_path: Path,
                                                          server: Loopback) -> None:
    server.script(PATH, [overpass_replay(_empty_answer(), (-10.0, 60.0, -9.0, 61.0))])
    profile = make_profile(tmp_path, server.url(PATH), expect_empty=True)
    with pytest.raises(InputError, match=r"holds no OSM data at all around the 12 usable"):
        fetch(profile, tmp_path, layer=layer_of(12))


def test_no_candidate_and_swapped_coordinates_name_the_fix(tmp_path: Path,
                                                          server: Loopback) -> None:
    server.script(PATH, [overpass_replay(_empty_answer(), GRENOBLE_LAND)])
    with pytest.raises(InputError, match=r"swapped; set source.swap_axes: true"):
        fetch(make_profile(tmp_path, server.url(PATH)), tmp_path, layer=_swapped(layer_of(12)))


def test_a_small_layer_may_have_no_candidate(tmp_path: Path, server: Loopback) -> None:
    server.script(PATH, [Reply(body=_empty_answer())])
    assert fetch(make_profile(tmp_path, server.url(PATH)), tmp_path).elements == ()


def test_an_answer_without_osm_base_is_an_error(tmp_path: Path, server: Loopback,
                                                grenoble_answer: bytes) -> None:
    payload = json.loads(grenoble_answer)
    del payload["osm3s"]
    server.script(PATH, [Reply(body=json.dumps(payload))])
    with pytest.raises(OsmDataError, match=r"without its osm3s/osm_base metadata"):
        fetch(make_profile(tmp_path, server.url(PATH)), tmp_path)


# --- politeness, cache, report --------------------------------------------------------------


def test_request_carries_user_agent_query_and_report_meta(tmp_path: Path, server: Loopback,
                                                         grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(body=grenoble_answer)])
    profile = make_profile(tmp_path, server.url(PATH), date="2019-02-06T00:00:00Z", timeout=25)
    data = fetch(profile, tmp_path)
    sent = next(r for r in server.requests if r.path == PATH)
    assert sent.method == "POST"
    assert sent.headers["User-Agent"].startswith("sig2osm/")
    assert sent.headers["User-Agent"].endswith("(+meters)")
    assert data.meta["server"] == server.url(PATH)
    assert data.meta["cache"] == "miss"
    query = data.meta["query"]
    assert query.startswith('[out:json][timeout:25][maxsize:536870912]'
                            '[date:"2019-02-06T00:00:00Z"];')
    assert '["amenity"="vending_machine"]["vending"="parking_tickets"]' in query
    assert 'nwr["ref:FR:Grenoble:horodateur"]' in query
    assert "(._;>;);\nout meta;" in query
    assert data.meta["osm_base"] == "2019-02-06T09:03:02Z"
    assert "query bbox" in data.coverage_origin


def test_second_fetch_comes_from_the_cache_and_refresh_bypasses_it(
        tmp_path: Path, server: Loopback, grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(body=grenoble_answer)])
    profile = make_profile(tmp_path, server.url(PATH))
    first = fetch(profile, tmp_path)
    before = server.count()
    second = fetch(profile, tmp_path)
    assert server.count() == before  # not even /api/status
    assert second.meta["cache"] == "hit"
    assert [e.key for e in second.elements] == [e.key for e in first.elements]
    fetch(profile, tmp_path, refresh=True)
    assert server.count(PATH) == 2


def test_waits_while_api_status_has_no_free_slot(tmp_path: Path, server: Loopback,
                                                 grenoble_answer: bytes) -> None:
    busy = ("Connected as: 1\nRate limit: 2\nSlot available after: 2024-05-01T10:00:07Z, in 7 "
            "seconds.\nSlot available after: 2024-05-01T10:00:30Z, in 30 seconds.\n")
    server.script("/api/status", [Reply(200, busy, "text/plain"),
                                  Reply(200, "Rate limit: 2\n1 slots available now.\n",
                                        "text/plain")])
    server.script(PATH, [Reply(body=grenoble_answer)])
    sleeps = Sleeps()
    patient = HttpSettings(timeout=0.5, retries=0, backoff=0.01, max_wait=60)
    fetch_from_overpass(make_profile(tmp_path, server.url(PATH)), layer_of(3),
                        tmp_path / "cache", settings=patient, sleep=sleeps)
    assert sleeps == [7.0]
    assert server.count("/api/status") == 2


def test_slot_wait_parses_the_status_page() -> None:
    assert slot_wait("Rate limit: 2\n2 slots available now.\n") == 0
    assert slot_wait("Rate limit: 0\n") == 0
    assert slot_wait("Rate limit: 2\nSlot available after: x, in 12 seconds.\n"
                     "Slot available after: y, in 4 seconds.\n") == 4
    assert slot_wait("<html>not a status page</html>") is None


def test_large_areas_are_tiled_and_merged_without_duplicates(
        tmp_path: Path, server: Loopback, grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(body=grenoble_answer)])
    profile = make_profile(tmp_path, server.url(PATH))
    layer = layer_of(30)  # 0.029° wide
    data = fetch(profile, tmp_path, layer=layer, tile_degrees=0.01)
    assert data.meta["tiles"] == server.count(PATH) == 3  # 0.03° wide, one tile high
    assert len(data.elements) == 17  # every tile answered the same 17 nodes: kept once
    assert len({e.key for e in data.elements}) == 17
    box = query_bbox(layer, 30)
    assert box is not None
    pieces = tiles(box, 0.01)
    assert pytest.approx(sum((e - w) * (n - s) for w, s, e, n in pieces)) == \
        (box[2] - box[0]) * (box[3] - box[1])


def test_only_tiles_holding_features_are_queried_and_their_number_is_capped(
        tmp_path: Path, server: Loopback, grenoble_answer: bytes) -> None:
    server.script(PATH, [Reply(body=grenoble_answer)])
    nice = SourceFeature("far", Point(7.2, 43.7), {}, {})
    two_towns = SourceLayer((*layer_of(3).features, nice), "EPSG:2154")
    data = fetch(make_profile(tmp_path, server.url(PATH)), tmp_path, layer=two_towns)
    assert data.meta["tiles"] == server.count(PATH) == 2  # not the 20 between Grenoble and Nice
    assert not data.coverage.contains(Point(6.5, 44.5))  # nothing was asked in between
    with pytest.raises(OsmDataError, match=r"needs 2 tiles of 0.5°, more than osm.max_tiles"):
        fetch(make_profile(tmp_path, server.url(PATH), max_tiles=1), tmp_path, layer=two_towns)


def test_query_escapes_values_and_lists(tmp_path: Path) -> None:
    profile = make_profile(tmp_path, "https://example.invalid/api/interpreter")
    osm = profile.osm.__class__(match={"recycling_type": "*", "name": 'a"b',
                                       "amenity": ["recycling", "waste.basket"]})
    text = build_query(osm, None, (5.0, 45.0, 5.1, 45.1))
    assert '["recycling_type"]' in text
    assert '["name"="a\\"b"]' in text
    assert '["amenity"~"^(recycling|waste\\\\.basket)$"]' in text
    assert "(45.0000000,5.0000000,45.1000000,5.1000000)" in text


def test_area_by_relation_id_gives_the_coverage(tmp_path: Path, server: Loopback,
                                                grenoble_answer: bytes) -> None:
    corners = [(5.67, 45.15), (5.76, 45.15), (5.76, 45.22)]
    # The boundary as `(._;>;); out;` answers it: the relation, its way, the way's nodes.
    outline = {"version": 0.6, "osm3s": {"timestamp_osm_base": "2024-05-01T10:00:00Z"},
               "elements": [
                   *({"type": "node", "id": i, "lon": x, "lat": y}
                     for i, (x, y) in enumerate(corners, 1)),
                   {"type": "way", "id": 1, "nodes": [1, 2, 3, 1]},
                   {"type": "relation", "id": 80348,
                    "tags": {"type": "boundary", "boundary": "administrative",
                             "name": "Grenoble", "admin_level": "8"},
                    "members": [{"type": "way", "ref": 1, "role": "outer"}]}]}
    server.script(PATH, [Reply(body=json.dumps(outline)), Reply(body=grenoble_answer)])
    profile = make_profile(tmp_path, server.url(PATH), area="relation/80348")
    data = fetch(profile, tmp_path)
    assert "relation/80348 (Grenoble)" in data.coverage_origin
    assert data.coverage.geom_type == "Polygon"
    assert b"rel(80348)" in server.requests[1].body or b"rel%2880348%29" in server.requests[1].body
