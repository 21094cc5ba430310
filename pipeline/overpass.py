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

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from pipeline.http import (
    HttpClient,
    HttpRequest,
    HttpResponse,
    HttpSettings,
    RetryableAnswer,
    excerpt,
)
from pipeline.ingest import SourceLayer
from pipeline.kernel.errors import FetchError, InputError, OsmDataError
from pipeline.kernel.osm import (
    TRIVIAL_LAYER,
    OsmData,
    candidate_kinds,
    describe_match,
    match_alternatives,
)
from pipeline.kernel.settings import OsmConfig, Profile
from pipeline.osm_files import (
    merge_overpass_payloads,
    osm_data_from_overpass_json,
    overpass_xml_to_json,
    require_versions,
)
from pipeline.overpass_payload import check_payload

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
        boxes, origin = _area_of_interest(client, profile, layer, tile_degrees)
        if not boxes:
            return OsmData((), None, origin, {"source": "overpass", "server": osm.overpass_url})
        if len(boxes) > osm.max_tiles:
            raise OsmDataError(
                f"The Overpass query for {profile.name} needs {len(boxes)} tiles of "
                f"{tile_degrees:g}°, more than osm.max_tiles ({osm.max_tiles}): the layer's "
                "features spread over a large area. Use a local extract (osm.file), or raise "
                "osm.max_tiles if the layer really covers that much.")
        queries = [build_query(osm, profile.match.ref, box) for box in boxes]
        answers = [client.run(q) for q in queries]
        coverage = shapely.union_all([shapely.box(*box) for box in boxes])
        payload = merge_overpass_payloads([a.payload for a in answers])
        meta = _meta(osm, queries, answers, payload)
        data = osm_data_from_overpass_json(payload, candidate_kinds(osm.match, osm.related),
                                           profile.match.ref, coverage, origin, meta)
        require_versions(data, f"Overpass answer from {osm.overpass_url}")
        if not data.elements and len(layer.usable) > TRIVIAL_LAYER:
            _guard_empty(client, data, layer, osm, queries)
    log.info("overpass: %d candidates from %s in %d quer%s (cache %s), osm_base %s",
             len(data.elements), osm.overpass_url, len(queries), "y" if len(queries) == 1 else
             "ies", meta["cache"], meta.get("osm_base", "?"))
    return data


def ask_overpass(profile: Profile, query: str, cache_dir: Path, refresh: bool = False, *,
                 settings: HttpSettings | None = None) -> dict[str, Any]:
    """The checked answer to one query (e.g. the maps' background), through the shared client
    and its cache."""
    with HttpClient(cache_dir, profile.name, settings or DEFAULT_SETTINGS, refresh) as http:
        return OverpassClient(http, profile.osm.overpass_url).run(query).payload


# --- the query ---------------------------------------------------------------------------


def build_query(osm: OsmConfig, ref_key: str | None, box: BBox) -> str:
    """Overpass QL for the candidates in `box`, with their nodes and versions (`out meta`)."""
    settings = f"[out:json][timeout:{osm.timeout}][maxsize:{osm.maxsize}]"
    if osm.date:
        settings += f'[date:"{_ql_string(osm.date)}"]'
    where = _ql_bbox(box)
    lines = [settings + ";", "("]
    for alternative in [*match_alternatives(osm.match), *osm.related]:
        filters = "".join(_ql_filter(k, v) for k, v in alternative.items())
        lines.append(f"  nwr{filters}{where};")
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


def _area_of_interest(client: OverpassClient, profile: Profile, layer: SourceLayer,
                      tile_degrees: float) -> tuple[list[BBox], str]:
    """The boxes to query and where they come from: the tiles that hold the layer's usable
    features (grown by match.distance), `match.area` for a table without geometry, or the
    outline of `osm.area` cut into tiles."""
    distance = profile.match.distance
    box = query_bbox(layer, distance)
    if box is None and profile.match.area:  # a table without geometry: its names' area
        west, south, east, north = profile.match.area
        rounded = [round(v, 7) for v in profile.match.area]
        if not profile.osm.area:
            return tiles((west, south, east, north), tile_degrees), f"match.area {rounded}"
        box = (west, south, east, north)
    if profile.osm.area:
        outline, origin = _admin_area(client, profile.osm, box)
        return tiles(_bounds(outline), tile_degrees), origin
    if box is None:
        return [], "none: the source layer has no usable feature, so Overpass was not asked"
    boxes = occupied_tiles(layer, distance, tile_degrees)
    rounded = [round(v, 7) for v in box]
    where = "" if len(boxes) == 1 else f", the {len(boxes)} tiles of {tile_degrees:g}° holding them"
    return boxes, (f"Overpass query bbox {rounded} (the source layer's bbox grown by "
                   f"match.distance {distance:g} m{where})")


def occupied_tiles(layer: SourceLayer, distance_m: float, size: float) -> list[BBox]:
    """The tiles of the grown layer bbox that hold a usable feature (grown the same way): a
    layer in two towns 300 km apart is two tiles, not the 600 between them."""
    box = query_bbox(layer, distance_m)
    assert box is not None
    everything = tiles(box, size)
    if len(everything) == 1:
        return everything
    geoms = [f.geometry for f in layer.usable if f.geometry is not None]
    margin = distance_m * 1.1 / 111_320.0 / max(math.cos(math.radians((box[1] + box[3]) / 2)),
                                                   0.01)
    grown = shapely.buffer(shapely.envelope(np.array(geoms, dtype=object)), margin,
                           join_style="mitre")
    tree = shapely.STRtree(grown)
    return [t for t in everything if len(tree.query(shapely.box(*t), predicate="intersects"))]


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
    query = f"[out:json][timeout:{osm.timeout}];\n{selector}\n(._;>;);\nout;\n"
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


def _guard_empty(client: OverpassClient, data: OsmData, layer: SourceLayer, osm: OsmConfig,
                 queries: list[str]) -> None:
    """No candidate around a non-trivial layer: an error, unless the profile expects it and OSM
    does hold data where the layer lies (a layer in the sea is mislocated, not unmapped)."""
    here, swapped = _presence(client, layer)
    usable = len(layer.usable)
    if here == 0 and swapped > 0:
        raise InputError(f"The source layer lies where OSM holds no data at all, while its "
                         f"coordinates with x and y swapped fall among {swapped} OSM nodes: the "
                         "layer was published with latitude and longitude (or x and y) "
                         "swapped; set source.swap_axes: true.")
    if osm.expect_empty:
        if here == 0:
            raise InputError(f"Overpass at {osm.overpass_url} holds no OSM data at all around "
                             f"the {usable} usable source features (osm.expect_empty is set): "
                             "the layer is probably mislocated (a wrong source.crs?); nothing "
                             "would be created there.")
        return
    match = describe_match(osm.match)
    raise OsmDataError(f"Overpass at {osm.overpass_url} returned no candidate ({match}) around "
                       f"{usable} usable source features. Treating that as 'nothing in OSM' would "
                       "propose a duplicate of everything mapped already; check the query below "
                       "on overpass-turbo, or set osm.expect_empty: true if OSM really has none "
                       f"there yet. Query: {' '.join(queries[0].split())}")


PROBE_POINTS = 5  # places where the presence of OSM data is counted
PROBE_DEGREES = 0.005  # half the side of each counted box (about 500 m)


def _presence(client: OverpassClient, layer: SourceLayer) -> tuple[int, int]:
    """OSM nodes counted around a few features of the layer, and around the same places with
    x and y swapped: one small query (`out count`), to tell unmapped land from a wrong place."""
    here = [(g.x, g.y) for g in (f.geometry.representative_point() for f in layer.usable
                                  if f.geometry is not None)]
    step = max(1, len(here) // PROBE_POINTS)
    here = here[::step][:PROBE_POINTS]
    swapped = ([tuple(p) for p in layer.sample.to_lonlat(layer.sample.crs, swapped=True)]
               if layer.sample is not None else [(y, x) for x, y in here])
    swapped = [p for p in swapped[::max(1, len(swapped) // PROBE_POINTS)][:PROBE_POINTS]
               if -180 <= p[0] <= 180 and -90 <= p[1] <= 90]
    d = PROBE_DEGREES
    boxes = [(x - d, y - d, x + d, y + d) for x, y in [*here, *swapped]]
    query = "[out:json][timeout:25];\n" + "".join(f"node{_ql_bbox(b)};out count;\n"
                                                   for b in boxes)
    answer = client.run(query)
    counts = [int(e.get("tags", {}).get("nodes", 0)) for e in answer.payload["elements"]
              if e.get("type") == "count"]
    if len(counts) != len(boxes):
        raise FetchError(f"Overpass at {client.url} answered {len(counts)} counts to a query of "
                         f"{len(boxes)} (out count); cannot tell whether OSM has data there.")
    return sum(counts[:len(here)]), sum(counts[len(here):])
