"""Source layers by URL: downloaded with the shared client's habits, then read as local files.

`download_source` fetches `source.url` through `HttpClient` (timeout, User-Agent, retries, cache;
`--refresh` bypasses it) and returns a local file named after what was downloaded. Zip archives
are kept as .zip: the SIG reader opens them. Two kinds of URL are resolved first, because French
open data is mostly published that way:

- a data.gouv.fr dataset (`https://www.data.gouv.fr/api/1/datasets/<id>/`): the dataset record
  lists its resources; the best vector format is taken (GeoJSON, GeoPackage, zipped Shapefile,
  JSON, CSV, then an ArcGIS REST layer);
- an ArcGIS REST layer (`…/FeatureServer/<n>` or `…/MapServer/<n>`, also when a data.gouv.fr
  resource redirects there): queried page by page as GeoJSON in EPSG:4326; a `where=` in the
  URL's query string is passed on as the layer filter.

The file's sha256 goes into the report (ingest records it), with the URL.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pipeline.http import (
    HttpClient,
    HttpRequest,
    HttpResponse,
    HttpSettings,
    RetryableAnswer,
    excerpt,
)
from pipeline.kernel.atomic import write_atomic
from pipeline.kernel.errors import FetchError, SourceDownloadError

log = logging.getLogger(__name__)

DEFAULT_SETTINGS = HttpSettings(timeout=120.0)
ARCGIS_PAGE = 1000  # features per ArcGIS query page (servers allow 1000-2000)
ARCGIS_MAX_PAGES = 500
_ARCGIS_LAYER = re.compile(r"/(FeatureServer|MapServer)/\d+/?$", re.IGNORECASE)
_DATAGOUV_DATASET = re.compile(r"/api/1/datasets/[^/]+/?$")
# data.gouv.fr resource formats, best first (a vector file the SIG reader opens directly).
_FORMAT_RANK = ("geojson", "gpkg", "shp", "zip", "json", "csv")
_SUFFIX_BY_TYPE = {"application/zip": ".zip", "application/geo+json": ".geojson",
                   "application/json": ".json", "text/csv": ".csv",
                   "application/geopackage+sqlite3": ".gpkg"}
_KNOWN_SUFFIXES = (".zip", ".geojson", ".json", ".csv", ".gpkg", ".shp", ".fgb", ".kml", ".gml")


DOWNLOAD_ADVICE = ("The server may be down or overloaded: try again later, or download the layer "
                   "by hand and give it as source.path.")


def download_source(url: str, cache_dir: Path, profile_name: str, refresh: bool = False, *,
                    settings: HttpSettings | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> Path:
    """The local file for `url` (downloaded now, or from the cache)."""
    try:
        with HttpClient(cache_dir, profile_name, settings or DEFAULT_SETTINGS, refresh, sleep,
                        advice=DOWNLOAD_ADVICE) as http:
            path = _Downloader(http, cache_dir).get(url, depth=0)
    except FetchError as exc:  # the layer could not be had: a source error, not an OSM one
        raise SourceDownloadError(f"Source download (source.url {url}): {exc}") from exc
    log.info("download: %s -> %s (%d bytes)", url, path, path.stat().st_size)
    return path


class _Downloader:
    def __init__(self, http: HttpClient, cache_dir: Path) -> None:
        self.http = http
        self.files = cache_dir / "files"

    def get(self, url: str, depth: int) -> Path:
        if depth > 3:
            raise FetchError(f"{url}: too many indirections (dataset → resource → layer).")
        base, where = _split_where(url)
        if _ARCGIS_LAYER.search(urlsplit(base).path):
            return self._arcgis(base, where)
        response = self.http.fetch(HttpRequest("GET", base), validate=_check_download)
        if _ARCGIS_LAYER.search(urlsplit(response.url).path):  # a redirect to a layer
            return self._arcgis(_strip_query(response.url), where)
        _check_download(response)  # an answer cached by an older sig2osm
        record = _json_or_none(response)
        if isinstance(record, dict) and _is_datagouv_dataset(record, base):
            return self.get(_pick_resource(record, url), depth + 1)
        return self._keep(response, _file_name(response, base))

    def _keep(self, response: HttpResponse, name: str) -> Path:
        target = self.files / response.sha256[:16] / name
        if not target.is_file():
            write_atomic(target, response.body)
        return target

    def _arcgis(self, layer_url: str, where: str) -> Path:
        features: list[Any] = []
        for page in range(ARCGIS_MAX_PAGES):
            params = {"where": where, "outFields": "*", "returnGeometry": "true", "outSR": "4326",
                      "f": "geojson", "resultOffset": str(page * ARCGIS_PAGE),
                      "resultRecordCount": str(ARCGIS_PAGE)}
            response = self.http.fetch(HttpRequest("GET", layer_url.rstrip("/") + "/query",
                                                   params=params), validate=_check_arcgis)
            batch = json.loads(response.body).get("features", [])
            features.extend(batch)
            if len(batch) < ARCGIS_PAGE:
                break
        else:
            raise FetchError(f"{layer_url}: more than {ARCGIS_MAX_PAGES} pages; narrow the layer "
                             "with where= in source.url.")
        collection = {"type": "FeatureCollection", "features": features}
        body = json.dumps(collection, ensure_ascii=False, sort_keys=True).encode("utf-8")
        name = "-".join(p for p in urlsplit(layer_url).path.split("/")[-3:] if p) + ".geojson"
        digest = HttpResponse(layer_url, 200, "application/geo+json", body)
        return self._keep(digest, _safe_name(name))


def _check_download(response: HttpResponse) -> None:
    """What is kept (and cached) is data: not a web page, not JSON or a zip archive cut short."""
    if _ARCGIS_LAYER.search(urlsplit(response.url).path):
        return  # the layer is queried next
    if response.content_type in ("text/html", "application/xhtml+xml"):
        raise FetchError(f"source.url {response.url}: the server answered a web page, not data: "
                         f"{excerpt(response)}. Give the URL of the file itself.")
    if response.body.lstrip()[:1] in (b"{", b"["):
        try:
            json.loads(response.body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise RetryableAnswer(f"{response.url}: the answer looks like JSON but does not parse "
                                  f"({exc}); cut short?") from exc
    if response.body.startswith(b"PK\x03\x04") and not _complete_zip(response.body):
        raise RetryableAnswer(f"{response.url}: the zip archive is incomplete; cut short?")


def _complete_zip(body: bytes) -> bool:
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            archive.infolist()
        return True
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _split_where(url: str) -> tuple[str, str]:
    """The URL without its `where=` parameter, and that filter ("1=1" when absent)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    where = next((v for k, v in pairs if k.lower() == "where"), "1=1")
    rest = [(k, v) for k, v in pairs if k.lower() != "where"]
    return urlunsplit(parts._replace(query=urlencode(rest))), where


def _strip_query(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query="", fragment=""))


def _json_or_none(response: HttpResponse) -> Any:
    if response.body.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FetchError(f"{response.url}: the answer looks like JSON but does not parse ({exc}); "
                         "was the download cut short?") from exc


def _is_datagouv_dataset(record: Mapping[str, Any], url: str) -> bool:
    return (isinstance(record.get("resources"), list) and "id" in record
            and (bool(_DATAGOUV_DATASET.search(urlsplit(url).path)) or "slug" in record))


def _pick_resource(record: Mapping[str, Any], url: str) -> str:
    """The best resource of a data.gouv.fr dataset for the SIG reader."""
    resources = [r for r in record["resources"] if isinstance(r, dict) and r.get("url")]

    def rank(resource: Mapping[str, Any]) -> int:
        fmt = str(resource.get("format") or "").lower().strip(".")
        if fmt in _FORMAT_RANK:
            return _FORMAT_RANK.index(fmt)
        if _ARCGIS_LAYER.search(urlsplit(str(resource["url"])).path) or "arcgis" in fmt \
                or "esri" in fmt:
            return len(_FORMAT_RANK)
        return len(_FORMAT_RANK) + 1

    usable = sorted((r for r in resources if rank(r) <= len(_FORMAT_RANK)), key=rank)
    if not usable:
        formats = ", ".join(sorted({str(r.get("format")) for r in resources})) or "none"
        raise FetchError(f"source.url {url}: data.gouv.fr dataset '{record.get('title', '')}' "
                         f"has no resource in a vector format sig2osm reads (found: {formats}); "
                         "give the URL of one resource instead.")
    chosen = usable[0]
    log.info("download: dataset '%s': taking resource '%s' (%s) %s", record.get("title", ""),
             chosen.get("title", ""), chosen.get("format", ""), chosen["url"])
    return str(chosen["url"])


def _check_arcgis(response: HttpResponse) -> None:
    try:
        answer = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RetryableAnswer(f"{response.url}: the layer answer is not complete JSON ({exc})"
                              ) from exc
    if isinstance(answer, dict) and "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {"message": answer["error"]}
        details = error.get("details")
        details = details if isinstance(details, list) else []
        raise FetchError(f"{response.url}: the ArcGIS server refused the query: "
                         f"{error.get('code', '')} {error.get('message', '')} "
                         f"{'; '.join(str(d) for d in details)}".strip())
    if not isinstance(answer, dict) or not isinstance(answer.get("features"), list):
        raise FetchError(f"{response.url}: the ArcGIS answer has no 'features' list.")


def _file_name(response: HttpResponse, url: str) -> str:
    disposition = response.headers.get("Content-Disposition", "") or next(
        (v for k, v in response.headers.items() if k.lower() == "content-disposition"), "")
    found = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", disposition, re.IGNORECASE)
    if found:
        name = _safe_name(unquote(found.group(1)))
        if name.lower().endswith(_KNOWN_SUFFIXES):
            return name
    name = _safe_name(unquote(Path(urlsplit(response.url or url).path).name)) or "download"
    if name.lower().endswith(_KNOWN_SUFFIXES):
        return name
    return name + _sniff_suffix(response)


def _sniff_suffix(response: HttpResponse) -> str:
    head = response.body[:16]
    if head.startswith(b"PK\x03\x04"):
        return ".zip"
    if head.startswith(b"SQLite format 3"):
        return ".gpkg"
    if head.lstrip()[:1] in (b"{", b"["):
        return ".geojson"
    return _SUFFIX_BY_TYPE.get(response.content_type, ".csv" if b"," in response.body[:200]
                               or b";" in response.body[:200] else ".bin")


def _safe_name(name: str) -> str:
    """A file name from what a server says: word characters, '.' and '-', at most 120 bytes."""
    name = re.sub(r"[^\w.\-]+", "_", name).strip("._")
    while len(name.encode("utf-8", "surrogatepass")) > 120:
        name = name[:-1]
    return name
