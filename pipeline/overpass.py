"""OSM candidates from the Overpass API, fetched politely and never mistaken for "nothing there".

`fetch_from_overpass` builds one query from the profile (the `osm.match` tags and the
`match.ref` key over the source layer's bbox grown by `match.distance`, or over `osm.area`),
splits large areas into tiles, sends them through the shared `HttpClient` (timeout, User-Agent,
retries, on-disk cache) after checking the server's `/api/status` slots, and ends in the same
builder as local files (`osm_data_from_overpass_json`). A runtime-error remark, an answer
without its `osm3s`/`osm_base` metadata, or no candidate for a non-trivial layer is an error
unless the profile says `osm.expect_empty: true`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import shapely
from shapely.geometry.base import BaseGeometry

from pipeline.errors import FetchError, OsmDataError
from pipeline.http import (
    HttpClient,
    HttpRequest,
    HttpResponse,
    HttpSettings,
    RetryableAnswer,
    excerpt,
)
from pipeline.ingest import SourceLayer
from pipeline.osm_files import (
    merge_overpass_payloads,
    osm_data_from_overpass_json,
    overpass_xml_to_json,
)
from pipeline.osm_model import OsmData, suspiciously_empty
from pipeline.overpass_payload import check_payload
from pipeline.profile import OsmConfig, Profile

log = logging.getLogger(__name__)

DEFAULT_SETTINGS = HttpSettings(timeout=300.0)  # Overpass answers can take minutes to start
TILE_DEGREES = 0.5  # largest side of one query, in degrees; a métropole fits in one or a few
STATUS_CHECKS = 5  # how many times /api/status is asked before sending anyway

BBox = tuple[float, float, float, float]  # west, south, east, north


@dataclass(frozen=True)
class Answer:
    payload: dict[str, Any]
    response: HttpResponse


def fetch_from_overpass(
    profile: Profile,
    layer: SourceLayer,
    cache_dir: Path,
    refresh: bool = False,
    *,
    settings: HttpSettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
    tile_degrees: float = TILE_DEGREES,
) -> OsmData:
    """The OSM candidates around `layer` (or in `osm.area`), as the live Overpass server has them."""
    osm = profile.osm
    with HttpClient(cache_dir, profile.name, settings or DEFAULT_SETTINGS, refresh, sleep) as http:
        client = OverpassClient(http, osm.overpass_url, osm.expect_empty)
        coverage, origin = _area_of_interest(client, profile, layer)
        if coverage is None:
            return OsmData((), None, origin, {"source": "overpass", "server": osm.overpass_url})
        boxes = tiles(_bounds(coverage), tile_degrees)
        queries = [build_query(osm, profile.match.ref, box) for box in boxes]
        answers = [client.run(q) for q in queries]
    payload = merge_overpass_payloads([a.payload for a in answers])
    meta = _meta(osm, queries, answers, payload)
    data = osm_data_from_overpass_json(payload, osm.match, profile.match.ref, coverage, origin, meta)
    _guard_empty(data, layer, osm, queries)
    log.info("overpass: %d candidates from %s in %d quer%s (cache %s), osm_base %s",
             len(data.elements), osm.overpass_url, len(queries), "y" if len(queries) == 1 else
             "ies", meta["cache"], meta.get("osm_base", "?"))
    return data


# --- the query ---------------------------------------------------------------------------


def build_query(osm: OsmConfig, ref_key: str | None, box: BBox) -> str:
    """Overpass QL for the candidates in `box`, with their nodes and versions (`out meta`)."""
    settings = f"[out:json][timeout:{osm.timeout}][maxsize:{osm.maxsize}]"
    if osm.date:
        settings += f'[date:"{_ql_string(osm.date)}"]'
    where = _ql_bbox(box)
    filters = "".join(_ql_filter(k, v) for k, v in osm.match.items())
    lines = [settings + ";", "(", f"  nwr{filters}{where};"]
    if ref_key:
        lines.append(f'  nwr["{_ql_string(ref_key)}"]{where};')
    lines += [");", "(._;>;);", "out meta;"]
    return "\n".join(lines) + "\n"


def _ql_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _ql_filter(key: str, wanted: str | Sequence[str]) -> str:
    k = _ql_string(key)
    if wanted == "*":
        return f'["{k}"]'
    if isinstance(wanted, str):
        return f'["{k}"="{_ql_string(wanted)}"]'
    alternatives = "|".join(re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", v) for v in wanted)
    return f'["{k}"~"^({_ql_string(alternatives)})$"]'


def _ql_bbox(box: BBox) -> str:
    west, south, east, north = box
    return f"({south:.7f},{west:.7f},{north:.7f},{east:.7f})"


def query_bbox(layer: SourceLayer, distance_m: float) -> BBox | None:
    """The bbox of the usable source features grown by `distance_m` (plus 10 %) on each side."""
    geoms = [f.geometry for f in layer.usable if f.geometry is not None]
    if not geoms:
        return None
    west, south, east, north = shapely.total_bounds(geoms).tolist()
    margin = distance_m * 1.1
    dlat = margin / 111_320.0
    mid = math.radians((south + north) / 2)
    dlon = margin / (111_320.0 * max(math.cos(mid), 0.01))
    return (max(west - dlon, -180.0), max(south - dlat, -90.0),
            min(east + dlon, 180.0), min(north + dlat, 90.0))


def tiles(box: BBox, size: float) -> list[BBox]:
    """`box` cut into a grid of tiles whose sides are at most `size` degrees."""
    west, south, east, north = box
    nx = max(1, math.ceil((east - west) / size - 1e-9))
    ny = max(1, math.ceil((north - south) / size - 1e-9))
    dx, dy = (east - west) / nx, (north - south) / ny
    return [(west + i * dx, south + j * dy,
             east if i == nx - 1 else west + (i + 1) * dx,
             north if j == ny - 1 else south + (j + 1) * dy)
            for j in range(ny) for i in range(nx)]


def _bounds(geometry: BaseGeometry) -> BBox:
    west, south, east, north = geometry.bounds
    return (west, south, east, north)


# --- the area ----------------------------------------------------------------------------


def _area_of_interest(client: OverpassClient, profile: Profile,
                      layer: SourceLayer) -> tuple[BaseGeometry | None, str]:
    distance = profile.match.distance
    box = query_bbox(layer, distance)
    if box is None and profile.match.area:  # a table without geometry: its names' area
        west, south, east, north = profile.match.area
        rounded = [round(v, 7) for v in profile.match.area]
        if not profile.osm.area:
            return shapely.box(west, south, east, north), f"match.area {rounded}"
        box = (west, south, east, north)
    if profile.osm.area:
        return _admin_area(client, profile.osm, box)
    if box is None:
        return None, "none: the source layer has no usable feature, so Overpass was not asked"
    rounded = [round(v, 7) for v in box]
    return shapely.box(*box), (f"Overpass query bbox {rounded} (the source layer's bbox grown by "
                               f"match.distance {distance:g} m)")


def _admin_area(client: OverpassClient, osm: OsmConfig,
                near: BBox | None) -> tuple[BaseGeometry, str]:
    """The outline of `osm.area` ("relation/123", "123" or a name near the layer)."""
    assert osm.area is not None
    wanted = osm.area.strip()
    number = wanted.removeprefix("relation/").removeprefix("r")
    if number.isdigit():
        selector = f"rel({int(number)});"
    else:
        where = _ql_bbox(near) if near else ""
        selector = f'rel["name"="{_ql_string(wanted)}"]["boundary"="administrative"]{where};'
    query = f"[out:json][timeout:{osm.timeout}];\n{selector}\nout geom;\n"
    answer = client.run(query)
    outlines = osm_data_from_overpass_json(answer.payload, {"type": ["boundary", "multipolygon"]},
                                           None, None, "")
    found = [e for e in outlines.elements if e.type == "relation"]
    if not found:
        raise OsmDataError(f"osm.area {wanted!r}: Overpass at {osm.overpass_url} found no "
                           "boundary relation with a closed outline; give its relation id, "
                           "e.g. 'relation/1076124'.")
    if len(found) > 1:
        listing = ", ".join(f"{e.key} ({e.tags.get('name')}, admin_level "
                            f"{e.tags.get('admin_level', '?')})" for e in found)
        raise OsmDataError(f"osm.area {wanted!r} names several boundaries: {listing}; give the "
                           "relation id of the one you mean.")
    area = found[0]
    return area.geometry, f"osm.area {area.key} ({area.tags.get('name', wanted)}) from Overpass"


# --- the client --------------------------------------------------------------------------


class OverpassClient:
    """Sends Overpass QL through the shared HTTP client and checks every answer."""

    def __init__(self, http: HttpClient, url: str, expect_empty: bool = False) -> None:
        self.http = http
        self.url = url
        self.expect_empty = expect_empty

    def run(self, query: str) -> Answer:
        request = HttpRequest("POST", self.url, data={"data": query})
        response = self.http.cached(request)
        if response is None:
            self._wait_for_slot()
            response = self.http.fetch(request, validate=self._check)
        return Answer(parse_answer(response, self.url), response)

    def _check(self, response: HttpResponse) -> None:
        payload = parse_answer(response, self.url)
        remark = str(payload.get("remark", ""))
        if "error" in remark.lower():
            raise FetchError(f"Overpass at {self.url} stopped the query: {remark.strip()} The "
                             "answer is partial and was not used. Raise osm.timeout or "
                             "osm.maxsize, or reduce the area.")
        if not payload.get("osm3s", {}).get("timestamp_osm_base") and not self.expect_empty:
            raise OsmDataError(f"Overpass at {self.url} answered without its osm3s/osm_base "
                               "metadata: this is not a complete Overpass answer (a proxy page "
                               "or a cut answer?). Set osm.expect_empty: true only if you know "
                               "the server omits it.")

    def _wait_for_slot(self) -> None:
        """Ask /api/status and wait (bounded) while the server has no free slot for us."""
        status_url = urljoin(self.url, "status")
        budget = self.http.settings.max_wait
        for _ in range(STATUS_CHECKS):
            response = self.http.probe(HttpRequest("GET", status_url))
            if response is None:
                return  # no status endpoint: the retry policy handles 429s
            wait = slot_wait(response.text())
            if wait is None or wait <= 0 or budget <= 0:
                return
            pause = min(wait, budget)
            log.info("overpass: no free slot at %s; waiting %.0f s as /api/status asks",
                     self.url, pause)
            self.http.sleep(pause)
            budget -= pause


def slot_wait(status: str) -> float | None:
    """Seconds until a slot is free, from an /api/status text; 0 when one is free now."""
    limit = re.search(r"Rate limit:\s*(\d+)", status)
    if limit and int(limit.group(1)) == 0:
        return 0.0
    available = re.search(r"(\d+)\s+slots? available now", status)
    if available and int(available.group(1)) > 0:
        return 0.0
    waits = [float(s) for s in re.findall(r"in\s+(-?\d+)\s+seconds?", status)]
    if waits:
        return max(0.0, min(waits))
    return None if not (limit or available) else 0.0


def parse_answer(response: HttpResponse, url: str) -> dict[str, Any]:
    """The answer as the JSON dict shape, from JSON or Overpass XML; truncated → retry."""
    if response.content_type == "text/html":
        raise FetchError(f"Overpass at {url} answered an HTML page instead of data: "
                         f"{excerpt(response)}")
    head = response.body.lstrip()[:1]
    if head == b"<":
        return overpass_xml_to_json(response.body, f"Overpass answer from {url}")
    try:
        payload = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RetryableAnswer(f"the answer from {url} is not complete JSON ({exc.__class__.__name__}"
                              f" after {len(response.body)} bytes): truncated?") from exc
    return check_payload(payload, f"Overpass at {url}")


# --- report and guard --------------------------------------------------------------------


def _meta(osm: OsmConfig, queries: list[str], answers: Iterable[Answer],
          payload: Mapping[str, Any]) -> dict[str, Any]:
    hits = [a.response.from_cache for a in answers]
    cache = "hit" if all(hits) else "miss" if not any(hits) else "partial"
    meta: dict[str, Any] = {
        "source": "overpass",
        "server": osm.overpass_url,
        "query": queries[0] if len(queries) == 1 else queries,
        "tiles": len(queries),
        "cache": cache,
        "answers_sha256": [a.response.sha256 for a in answers],
    }
    if osm.date:
        meta["date"] = osm.date
    base = payload.get("osm3s", {}).get("timestamp_osm_base")
    if base:
        meta["osm_base"] = base
    return meta


def _guard_empty(data: OsmData, layer: SourceLayer, osm: OsmConfig, queries: list[str]) -> None:
    usable = len(layer.usable)
    if not suspiciously_empty(len(data.elements), usable, osm.expect_empty):
        return
    match = ", ".join(f"{k}={v}" for k, v in osm.match.items())
    raise OsmDataError(f"Overpass at {osm.overpass_url} returned no candidate ({match}) around "
                       f"{usable} usable source features. Treating that as 'nothing in OSM' would "
                       "propose a duplicate of everything mapped already; check the query below "
                       "on overpass-turbo, or set osm.expect_empty: true if OSM really has none "
                       f"there yet. Query: {' '.join(queries[0].split())}")
