"""Map builders without a browser: assets, escaping, legend, uMap, index, and the map stage."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from maps.assets import ASSETS, inline_css, inline_js, manifest
from maps.council import council_map, council_map_html
from maps.errors import MapError
from maps.i18n import texts
from maps.index import IndexedRun, index_html
from maps.legend import legend_entries
from maps.page import script_json
from maps.reviewer import reviewer_map_html
from maps.umap import umap_document
from pipeline.cli import main
from pipeline.ingest import ingest
from pipeline.kernel.errors import ProfileError
from pipeline.kernel.settings import MapConfig, Profile
from pipeline.profile import load_profile
from tests.conftest import EXAMPLES

COUNCIL = EXAMPLES / "bondy" / "council-map.yml"
HOSTILE = {
    "script": "<script>window.__pwned = 'script'</script>",
    "img": "<img src=x onerror=\"window.__pwned = 'img'\">",
    "quotes": "l'abri \"quoted\" & <b>bold</b>",
    "close": "</script><script>window.__pwned = 'close'</script>",
}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def review_feature(decision: str, source_id: str | None, geometry: dict[str, Any] | None,
                   **props: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source_id": source_id, "decision": decision, "osm_id": None, "distance_m": None,
        "reason": "", "tags": {}, "tags_new": {}, "tags_changed": {}, "tags_kept": {},
        "candidates": [], "osm_url": None}
    return {"type": "Feature", "geometry": geometry, "properties": {**base, **props}}


def review_collection() -> dict[str, Any]:
    """Every decision once (skip without geometry), with hostile text in ids, reasons and tags."""
    features = [
        review_feature("create", "C1", point(2.300, 48.800), reason="no OSM object within 30 m",
                       tags={"amenity": "bench", "note": HOSTILE["img"]},
                       tags_new={"amenity": "bench", "note": HOSTILE["img"]}),
        review_feature("modify", "M1", point(2.310, 48.800), osm_id="node/42", distance_m=3.21,
                       reason="matched by ref", tags={"amenity": "bench", "backrest": "yes",
                                                      "material": "wood"},
                       tags_changed={"backrest": {"old": "no", "new": "yes"}},
                       tags_kept={"material": {"osm": "wood", "source": "metal"}},
                       osm_url="https://www.openstreetmap.org/node/42"),
        review_feature("review", HOSTILE["script"], point(2.320, 48.800), distance_m=12.0,
                       reason=HOSTILE["quotes"], tags={"amenity": "bench"},
                       candidates=[{"osm_id": "node/7", "distance_m": 12.0, "score": 0.51},
                                   {"osm_id": "way/8", "distance_m": 14.5, "score": 0.49}]),
        review_feature("missing", None, {"type": "LineString", "coordinates": [
            [2.330, 48.800], [2.331, 48.801]]}, osm_id="way/9", reason=HOSTILE["close"]),
        review_feature("unchanged", "U1", point(2.340, 48.800), osm_id="node/10",
                       distance_m=0.5, tags={"amenity": "bench"}),
        review_feature("skip", "S1", None, reason="empty geometry"),
        review_feature("create", HOSTILE["close"], point(2.350, 48.800),
                       osm_id="javascript:alert(1)", tags={HOSTILE["quotes"]: HOSTILE["script"]}),
    ]
    return {"type": "FeatureCollection", "features": features}


def hostile_layer() -> dict[str, Any]:
    """An ingested layer (SourceLayer.to_json() shape) whose attributes hold markup and quotes."""
    rows = [("1", HOSTILE["script"], 2.30), ("2", HOSTILE["img"], 2.31),
            ("3", HOSTILE["quotes"], 2.32), ("4", HOSTILE["close"], 2.33), ("5", None, 2.34)]
    features: list[dict[str, Any]] = [{"type": "Feature", "geometry": point(lon, 48.8),
                 "properties": {"source_id": sid, "tags": {}, "skip_reason": None,
                                "attributes": {"id": sid, "kind": kind, "label": HOSTILE["img"]}}}
                for sid, kind, lon in rows]
    features.append({"type": "Feature", "geometry": None, "properties": {
        "source_id": "6", "tags": {}, "skip_reason": "no geometry",
        "attributes": {"id": "6", "kind": "x", "label": ""}}})
    return {"type": "FeatureCollection", "features": features}


def hostile_profile(tiles: bool = False, locale: str = "fr") -> Profile:
    from pipeline.kernel.settings import OsmConfig, SourceConfig

    return Profile(
        name="hostile", tags={}, osm=OsmConfig(match={"amenity": "bench"}),
        source=SourceConfig(id="id", path=Path("x.geojson"), producer=HOSTILE["img"],
                            licence=HOSTILE["quotes"], date=HOSTILE["close"]),
        map=MapConfig(title=HOSTILE["script"], header=HOSTILE["img"],
                      description=HOSTILE["quotes"], category="kind", tiles=tiles,
                      popup_fields=["id", "kind", "label"], locale=locale,
                      colors={HOSTILE["quotes"]: "#ff0000"}))


# --- assets and page shell --------------------------------------------------------------------


def test_vendored_files_match_their_pinned_sha256_and_carry_a_licence() -> None:
    for package in manifest()["packages"]:
        assert (ASSETS / package["licence_file"]).is_file()
        for name, digest in package["files"].items():
            assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
    assert "Leaflet 1.9.4" in inline_js() and "BSD 2-Clause License" in inline_js()
    assert "sourceMappingURL" not in inline_js()
    assert "url(images/" not in inline_css()  # images inlined as data URIs


def test_pages_load_nothing_from_outside() -> None:
    page = reviewer_map_html(review_collection(), title="t", tiles=False)
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    assert "cdn." not in page and "jquery" not in page.lower() and "bootstrap" not in page.lower()
    assert "tile.openstreetmap.org" not in page
    with_tiles = reviewer_map_html(review_collection(), title="t", tiles=True)
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in with_tiles


def test_same_input_gives_the_same_page() -> None:
    assert (reviewer_map_html(review_collection(), title="t")
            == reviewer_map_html(review_collection(), title="t"))


def test_script_json_cannot_close_the_script_element() -> None:
    text = script_json({"a": HOSTILE["close"], "b": "x\u2028y", "n": float("nan")})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": HOSTILE["close"], "b": "x\u2028y", "n": None}


def test_reviewer_page_escapes_data_outside_the_json_block() -> None:
    page = reviewer_map_html(review_collection(), title=HOSTILE["close"])
    assert page.count("<script>window.__pwned") == 0
    assert "<img src=x" not in page
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned" in page  # the escaped title


def test_reviewer_page_is_french_by_default_and_english_on_request() -> None:
    french = reviewer_map_html(review_collection(), title="t")
    english = reviewer_map_html(review_collection(), title="t", locale="en")
    assert "À créer" in french and '<html lang="fr">' in french
    assert "To create" in english and '<html lang="en">' in english
    # one locale's words per page: the label comes from the chosen locale, not a fixed text
    assert "To create" not in french and "À créer" not in english
    with pytest.raises(MapError, match="unknown locale 'de'; expected one of fr, en"):
        reviewer_map_html(review_collection(), title="t", locale="de")


# --- council map ------------------------------------------------------------------------------


def test_legend_merges_spellings_orders_by_profile_and_counts_drawn_features() -> None:
    config = MapConfig(category="kind", labels={"a1": "A", "a2": "A"}, colors={"B": "#00ff00"},
                       symbols={"A": "square"})
    features: list[dict[str, Any]] = [{"geometry": point(0, 0), "properties": {"kind": k}}
                                      for k in ("a1", "a2", "b", "B", None)]
    features.append({"geometry": None, "properties": {"kind": "a1"}})
    entries, categories = legend_entries({"features": features}, config, texts("fr"))
    assert [(e.label, e.count, e.shape) for e in entries] == [
        ("B", 1, "circle"), ("A", 2, "square"), ("Sans catégorie", 1, "circle"),
        ("b", 1, "circle")]
    assert entries[0].colour == "#00ff00" and entries[1].colour != "#00ff00"
    assert categories == [1, 1, 3, 0, 2, -1]


def test_council_map_names_missing_fields() -> None:
    profile = hostile_profile()
    assert profile.map is not None
    profile = replace(profile, map=replace(profile.map, category="zone",
                                           popup_fields=["id", "adresse"]))
    with pytest.raises(MapError, match=r"map.category 'zone', map.popup_fields\[1\] 'adresse' "
                                       r"not found in the layer; its fields are: id, kind, label"):
        council_map(hostile_layer(), profile)


def test_bad_map_settings_are_profile_errors_with_their_key(tmp_path: Path, data: Path) -> None:
    text = COUNCIL.read_text(encoding="utf-8").replace("locale: fr", "locale: de").replace(
        "Zone orange: square", "Zone orange: star").replace('"#f08c00"', '"red;x:url(y)"')
    bad = tmp_path / "bad.yml"
    bad.write_text(text.replace("../../../shared/data", str(data)), encoding="utf-8")
    with pytest.raises(ProfileError) as error:
        load_profile(bad)
    message = str(error.value)
    assert "map.locale: unknown locale 'de'" in message
    assert "map.symbols.Zone orange: unknown symbol 'star'" in message
    assert "map.colors.Zone orange: 'red;x:url(y)' is not a CSS colour" in message


def test_council_page_from_the_bondy_layer(data: Path) -> None:
    profile = load_profile(COUNCIL)
    layer = ingest(profile, profile.source.path).to_json()  # type: ignore[arg-type]
    council = council_map(layer, profile)
    assert [(e.label, e.count, e.shape) for e in council.entries] == [
        ("Zone verte", 80, "circle"), ("Zone orange", 28, "square")]
    page = council_map_html(council, umap_file="map.umap")
    assert "Données : Ville de Bondy — licence : non précisée (données de test) — date : 2025" in page
    assert "Télécharger les données (GeoJSON)" in page and 'href="map.umap"' in page
    assert "@media print" in page


def test_umap_document_has_one_layer_per_legend_entry() -> None:
    council = council_map(hostile_layer(), hostile_profile())
    document = umap_document(council)
    assert document["type"] == "umap"
    assert [layer["_umap_options"]["name"] for layer in document["layers"]] == [
        e.label for e in council.entries]
    assert sum(len(layer["features"]) for layer in document["layers"]) == 5  # one has no geometry
    first = document["layers"][0]["features"][0]["properties"]
    assert first["kind"] == HOSTILE["quotes"] and "id: 3" in first["description"]
    assert document["properties"]["name"] == HOSTILE["script"]


# --- index page and the map stage -------------------------------------------------------------


def test_index_lists_runs_with_counts_and_escapes_names() -> None:
    run = IndexedRun("a-run", {"name": HOSTILE["img"], "counts": {"create": 3, "skip": 105}},
                     ["map.html", "odd name&.txt", ".lock"])
    page = index_html([run])
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert "À créer : <span class=n>3</span>" in page and "Ignoré : <span class=n>105</span>" in page
    assert 'href="a-run/map.html"' in page and 'href="a-run/odd%20name%26.txt"' in page
    assert ".lock" not in page
    assert "Aucun résultat" in index_html([])


def test_the_index_lists_the_run_folders_of_out(tmp_path: Path, data: Path) -> None:
    """The runner gathers every folder of <out> with a report (and nothing else)."""
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "notes.txt").write_text("")
    assert main(["-q", "run", str(COUNCIL), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'href="bondy-horodateurs-zones/council-map.html"' in page
    assert "not-a-run" not in page


def test_map_stage_writes_council_files_and_the_index(tmp_path: Path, data: Path) -> None:
    assert main(["-q", "run", str(COUNCIL), "--out", str(tmp_path)]) == 0
    run = tmp_path / "bondy-horodateurs-zones"
    for name in ("map.html", "council-map.html", "council-map.geojson", "map.umap"):
        assert (run / name).is_file(), name
    download = json.loads((run / "council-map.geojson").read_text(encoding="utf-8"))
    assert len(download["features"]) == 108
    assert {"adresse", "zone", "identifiant"} <= set(download["features"][0]["properties"])
    umap = json.loads((run / "map.umap").read_text(encoding="utf-8"))
    assert sorted(len(layer["features"]) for layer in umap["layers"]) == [28, 80]
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'href="bondy-horodateurs-zones/council-map.html"' in index
    assert "bondy-horodateurs-zones" in index and "<span class=n>105</span>" in index
