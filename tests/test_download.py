"""Source layers by URL: downloads with retries and cache, data.gouv.fr records, ArcGIS layers."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

import pipeline.download as download
from pipeline.download import download_source
from pipeline.http import HttpSettings
from pipeline.kernel.errors import SourceDownloadError
from pipeline.profile import load_profile
from pipeline.runner import run_stages
from pipeline.sources import read_layer
from pipeline.stages import RunContext
from tests.loopback import Loopback, Reply, refused_url

FAST = HttpSettings(timeout=0.5, retries=2, backoff=0.01, max_wait=0.02)


def collection(*ids: int) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": i, "properties": {"NUMERO": i, "LOCALISATI": f"rue {i}"},
         "geometry": {"type": "Point", "coordinates": [-4.48 + i / 1000, 48.39]}} for i in ids]}


POINTS = json.dumps(collection(1, 2, 3)).encode("utf-8")


@pytest.fixture
def server() -> Any:
    with Loopback() as loopback:
        yield loopback


def get(url: str, tmp_path: Path, **kw: Any) -> Path:
    return download_source(url, tmp_path / "downloads", "brest-test", settings=FAST,
                           sleep=lambda s: None, **kw)


def test_download_is_cached_and_refresh_asks_again(tmp_path: Path, server: Loopback) -> None:
    server.script("/data/points.geojson", [Reply(body=POINTS,
                                                 content_type="application/geo+json")])
    path = get(server.url("/data/points.geojson"), tmp_path)
    assert path.name == "points.geojson"
    assert path.read_bytes() == POINTS
    assert get(server.url("/data/points.geojson"), tmp_path) == path
    assert server.count() == 1
    get(server.url("/data/points.geojson"), tmp_path, refresh=True)
    assert server.count() == 2
    assert server.requests[0].headers["User-Agent"].endswith("(+brest-test)")


def test_zip_named_by_content_disposition_is_read_by_the_sig_reader(
        tmp_path: Path, server: Loopback) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("panneaux.geojson", POINTS)
    server.script("/export", [Reply(body=buffer.getvalue(), content_type="application/zip",
                                    headers={"Content-Disposition":
                                             'attachment; filename="panneaux.zip"'})])
    path = get(server.url("/export"), tmp_path)
    assert path.suffix == ".zip"
    frame, _ = read_layer(path)
    assert sorted(frame["NUMERO"]) == [1, 2, 3]


def test_429_then_success_and_503_forever(tmp_path: Path, server: Loopback) -> None:
    server.script("/a.geojson", [Reply(429, "slow down", "text/plain"), Reply(body=POINTS)])
    assert get(server.url("/a.geojson"), tmp_path).read_bytes() == POINTS
    assert server.count("/a.geojson") == 2
    server.script("/b.geojson", [Reply(503, "unavailable", "text/plain")])
    with pytest.raises(SourceDownloadError, match=r"/b.geojson: failed after 3 attempts.*HTTP 503"
                       ) as error:
        get(server.url("/b.geojson"), tmp_path)
    assert error.value.exit_code == 3  # a source error, not an OSM data error (4)
    assert "source.path" in str(error.value) and "overpass" not in str(error.value).lower()


def test_connection_refused_and_web_pages_fail_clearly(tmp_path: Path, server: Loopback) -> None:
    with pytest.raises(SourceDownloadError, match=r"connection failed"):
        get(refused_url("/x.geojson"), tmp_path)
    server.script("/portal", [Reply(body="<html><h1>Jeu de données</h1></html>",
                                    content_type="text/html; charset=utf-8")])
    with pytest.raises(SourceDownloadError, match=r"web page, not data: Jeu de données"):
        get(server.url("/portal"), tmp_path)


def test_datagouv_dataset_record_resolves_to_its_best_resource(tmp_path: Path,
                                                               server: Loopback) -> None:
    record = {"id": "64809542ee39c6b7774817bb", "slug": "stationnement-velo",
              "title": "Stationnement vélo", "resources": [
                  {"title": "CSV", "format": "csv", "url": server.url("/r/velo.csv")},
                  {"title": "GeoJSON", "format": "geojson", "url": server.url("/r/velo.geojson")},
                  {"title": "Fiche", "format": "html", "url": server.url("/fiche")}]}
    server.script("/api/1/datasets/64809542ee39c6b7774817bb/", [Reply(body=json.dumps(record))])
    server.script("/r/velo.geojson", [Reply(body=POINTS)])
    path = get(server.url("/api/1/datasets/64809542ee39c6b7774817bb/"), tmp_path)
    assert path.read_bytes() == POINTS
    assert [r.path for r in server.requests] == ["/api/1/datasets/64809542ee39c6b7774817bb/",
                                                 "/r/velo.geojson"]


def test_datagouv_dataset_without_vector_resource_is_an_error(tmp_path: Path,
                                                              server: Loopback) -> None:
    record = {"id": "x", "title": "Rapport", "resources": [
        {"format": "pdf", "url": server.url("/r/rapport.pdf")}]}
    server.script("/api/1/datasets/x/", [Reply(body=json.dumps(record))])
    with pytest.raises(SourceDownloadError, match=r"no resource in a vector format .*found: pdf"):
        get(server.url("/api/1/datasets/x/"), tmp_path)


def test_arcgis_layer_behind_a_redirect_is_queried_page_by_page(
        tmp_path: Path, server: Loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "ARCGIS_PAGE", 2)
    layer = "/arcgis/rest/services/Mobilier/FeatureServer/3"
    server.script("/fr/datasets/r/1f6578fa", [Reply(302, "", "text/plain",
                                                    {"Location": server.url(layer)})])
    server.script(layer, [Reply(body="<html>ArcGIS REST Services Directory</html>",
                                content_type="text/html")])
    server.script(layer + "/query", [Reply(body=json.dumps(collection(1, 2))),
                                     Reply(body=json.dumps(collection(3)))])
    path = get(server.url("/fr/datasets/r/1f6578fa?where=NUMERO%3E0"), tmp_path)
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    assert [f["properties"]["NUMERO"] for f in features] == [1, 2, 3]
    queries = [parse_qs(r.query) for r in server.requests if r.path == layer + "/query"]
    assert [q["resultOffset"] for q in queries] == [["0"], ["2"]]
    assert queries[0]["where"] == ["NUMERO>0"]
    assert queries[0]["outSR"] == ["4326"] and queries[0]["f"] == ["geojson"]
    frame, _ = read_layer(path)
    assert len(frame) == 3


def test_arcgis_error_answer_is_an_error(tmp_path: Path, server: Loopback) -> None:
    layer = "/arcgis/rest/services/X/MapServer/0"
    server.script(layer + "/query", [Reply(body=json.dumps(
        {"error": {"code": 400, "message": "Invalid query", "details": ["bad where"]}}))])
    with pytest.raises(SourceDownloadError, match=r"refused the query: 400 Invalid query bad where"):
        get(server.url(layer), tmp_path)


def test_source_url_through_ingest_records_url_and_digest(tmp_path: Path, data: Path,
                                                          server: Loopback) -> None:
    body = (data / "grenoble-horodateurs" / "INPUT" / "data-grenoble.json").read_bytes()
    server.script("/data-grenoble.json", [Reply(body=body)])
    profile = tmp_path / "p.yml"
    profile.write_text(f"""
name: by-url
source: {{url: "{server.url('/data-grenoble.json')}", id: HOROD_ID}}
osm: {{match: {{amenity: vending_machine}}}}
tags: {{amenity: vending_machine}}
""", encoding="utf-8")
    layer = run_stages(RunContext(load_profile(profile), tmp_path / "out"), ["ingest"])["ingest"]
    assert len(layer.features) == 851
    assert layer.info["url"] == server.url("/data-grenoble.json")
    assert layer.info["sha256"] == hashlib.sha256(body).hexdigest()
    assert server.count() == 1
