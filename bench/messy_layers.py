"""Messy layers: `python -m bench.messy_layers`.

The Grenoble and Bondy parking-meter layers of ../shared/data, spoiled the way published layers
are — (a) latitude and longitude swapped, (b) one feature moved 4 000 km away, (c) 30 % of a
tagged field emptied, (d) 5 % of the points duplicated within 2 m, (f) a list-valued property,
(g) double-encoded UTF-8 — each run through `sig2osm run` with a local extract and through a
loopback Overpass server (127.0.0.1) that replays the recorded answer and says where OSM holds
data. Against the clean layer's run, per variant and path:

- lost: features the clean run used that the spoiled run skipped (the outlier itself aside);
- wrong creates: creates of the spoiled run that the clean run did not make at that place;
- review: the share of the layer in review; requests: queries that reached the Overpass server.

(e) names upper-cased: real named POIs of Heidelberg (bench.conflation_dense's source) with every
source name in capitals, through the conflation, against the same names as published.
A swapped layer must stop the run naming the fix; the fixed profile is then measured.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))  # the loopback server of the tests

from tests.loopback import Loopback, overpass_replay, overpass_server  # noqa: E402

METERS = {"amenity": "vending_machine", "vending": "parking_tickets"}
PATH = "/api/interpreter"


@dataclass(frozen=True)
class City:
    name: str
    layer: Path
    layer_name: str | None
    id_field: str
    zone_field: str
    text_field: str  # a field with accented text, for the mojibake variant
    extract: Path
    bounds: list[float] | None  # for a recorded answer declaring no area
    answer: bytes  # what the loopback Overpass server answers for the candidates
    land: tuple[float, float, float, float]  # where the loopback server holds OSM data


def _grenoble() -> City:
    answer = DATA / "grenoble-horodateurs/INPUT/osm-raw-data.json"
    return City("grenoble", DATA / "grenoble-horodateurs/INPUT/data-grenoble.json", None,
                "HOROD_ID", "HOROD_ZONE", "HOROD_TARIF_NOM", answer,
                [5.6776, 45.1541, 5.7531, 45.2140], answer.read_bytes(), (5.6, 45.1, 5.8, 45.3))


def _bondy() -> City:
    empty = {"version": 0.6, "generator": "Overpass API (loopback, map.osm)",
             "osm3s": {"timestamp_osm_base": "2020-06-01T00:00:00Z"}, "elements": []}
    return City("bondy", DATA / "bondy/municipal/bondy_layers.gpkg", "horodateur2025",
                "identifiant", "zone", "adresse", DATA / "bondy/osm/map.osm", None,
                json.dumps(empty).encode(), (2.45, 48.87, 2.52, 48.93))


Spoil = Callable[[gpd.GeoDataFrame, City], gpd.GeoDataFrame]


def _swapped(frame: gpd.GeoDataFrame, city: City) -> gpd.GeoDataFrame:
    return frame.set_geometry(shapely.transform(frame.geometry.values, lambda c: c[:, ::-1]))


def _outlier(frame: gpd.GeoDataFrame, city: City) -> gpd.GeoDataFrame:
    point = frame.geometry.iloc[7]
    far = shapely.Point(point.x + 4000 / (111.32 * math.cos(math.radians(point.y))), point.y)
    frame.loc[frame.index[7], "geometry"] = far  # 4 000 km east
    return frame


def _emptied(frame: gpd.GeoDataFrame, city: City) -> gpd.GeoDataFrame:
    rows = np.random.default_rng(3).choice(len(frame), int(0.3 * len(frame)), replace=False)
    frame.loc[frame.index[rows], city.zone_field] = None
    return frame


def _duplicated(frame: gpd.GeoDataFrame, city: City) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(4)
    copies = frame.iloc[rng.choice(len(frame), max(1, len(frame) // 20), replace=False)].copy()
    copies[city.id_field] = ["dup-" + str(v) for v in copies[city.id_field]]
    angle = rng.uniform(0, 2 * math.pi, len(copies))
    metres = rng.uniform(0.2, 2.0, len(copies))
    lat = np.radians(copies.geometry.y.to_numpy())
    copies = copies.set_geometry(shapely.points(
        copies.geometry.x + metres * np.cos(angle) / (111_320 * np.cos(lat)),
        copies.geometry.y + metres * np.sin(angle) / 110_574))
    return gpd.GeoDataFrame(pd.concat([frame, copies], ignore_index=True), crs=frame.crs)


def _listed(frame: gpd.GeoDataFrame, city: City) -> gpd.GeoDataFrame:
    frame["modes"] = [["coins", "card"] if i % 2 else ["coins"] for i in range(len(frame))]
    return frame


def _mojibake(frame: gpd.GeoDataFrame, city: City) -> gpd.GeoDataFrame:
    frame[city.text_field] = [v.encode("utf-8").decode("cp1252", errors="replace")
                              if isinstance(v, str) else v for v in frame[city.text_field]]
    return frame


VARIANTS: dict[str, Spoil | None] = {
    "clean": None, "a swapped axes": _swapped, "b outlier 4000 km": _outlier,
    "c 30% field emptied": _emptied, "d 5% duplicated": _duplicated,
    "f list property": _listed, "g mojibake": _mojibake}


def _layer(city: City, spoil: Spoil | None, folder: Path) -> Path:
    frame = gpd.read_file(city.layer, layer=city.layer_name)
    frame[city.id_field] = frame[city.id_field].astype(str)
    if spoil is not None:
        frame = spoil(frame, city)
    path = folder / "layer.geojson"
    path.write_text(frame.to_json(drop_id=True, ensure_ascii=False), encoding="utf-8")
    return path


def _profile(city: City, layer: Path, folder: Path, overpass: str | None,
             swap: bool = False) -> Path:
    osm: dict[str, Any] = {"match": METERS}
    if overpass is None:
        osm["file"] = str(city.extract)
        if city.bounds:
            osm["bounds"] = city.bounds
    else:
        osm.update(overpass_url=overpass, expect_empty=city.name == "bondy")
    tags = {**METERS, "zone": f"{{{city.zone_field}}}", "note": f"{{{city.text_field}}}"}
    if "modes" in layer.read_text(encoding="utf-8")[:5000]:
        tags["payment:modes"] = "{modes}"
    profile = {"name": "messy", "source": {"path": str(layer), "id": city.id_field,
                                           "swap_axes": swap},
               "osm": osm, "tags": tags, "match": {"distance": 30}}
    path = folder / "profile.yml"
    path.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    return path


def _sig2osm(profile: Path, out: Path) -> tuple[int, str]:
    """Exit code and error message of `sig2osm run` (its console output swallowed)."""
    from pipeline.cli import main

    errors = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(errors):
        code = main(["-qq", "run", str(profile), "--out", str(out)])
    return code, " ".join(errors.getvalue().split())


def _run(profile: Path, out: Path) -> tuple[int, dict[str, dict[str, Any]], dict[str, Any]]:
    code, _ = _sig2osm(profile, out)
    if code:
        return code, {}, {}
    lines = (out / "messy" / "review.geojson").read_text(encoding="utf-8").splitlines()
    features = [json.loads(line.rstrip(",")) for line in lines if '"Feature"' in line[:30]]
    report = json.loads((out / "messy" / "report.json").read_text(encoding="utf-8"))
    return code, {f["properties"]["source_id"]: f for f in features}, report


def _error(profile: Path, out: Path) -> str:
    code, text = _sig2osm(profile, out)
    if code == 0:
        return "ran (exit 0)"
    fix = "set source.swap_axes: true"
    return f"exit {code}, '{fix}'" if fix in text else f"exit {code}: {text[:100]}"


def _notes(report: dict[str, Any]) -> str:
    source = report["inputs"]["source"]
    notes = []
    if source.get("outliers"):
        notes.append(f"{len(source['outliers'])} outlier skipped")
    for key, entry in source.get("tags_left_out", {}).items():
        notes.append(f"tag {key} left out of {entry['features']}")
    for name, entry in source.get("text_repaired", {}).items():
        notes.append(f"{entry['values']} {name} repaired")
    return f" [{'; '.join(notes)}]" if notes else ""


def _figures(clean: dict[str, Any], spoiled: dict[str, Any]) -> dict[str, Any]:
    lost = sum(1 for sid, f in spoiled.items() if sid in clean
               and f["properties"]["decision"] == "skip"
               and clean[sid]["properties"]["decision"] != "skip"
               and not f["properties"]["reason"].startswith("outlier"))
    lost += sum(1 for sid in clean if sid not in spoiled)
    wrong = 0
    for sid, f in spoiled.items():
        if f["properties"]["decision"] != "create":
            continue
        before = clean.get(sid)
        if before is None or before["properties"]["decision"] != "create" or \
                shapely.distance(shapely.geometry.shape(before["geometry"]),
                                 shapely.geometry.shape(f["geometry"])) > 1e-5:
            wrong += 1
    review = sum(1 for f in spoiled.values() if f["properties"]["decision"] == "review")
    return {"lost": lost, "wrong_creates": wrong, "review": review / max(1, len(spoiled))}


def _city_rows(city: City, server: Loopback, folder: Path) -> list[str]:
    rows = []
    clean: dict[str, dict[str, Any]] = {}
    for path_kind in ("file", "overpass"):
        for variant, spoil in VARIANTS.items():
            work = folder / f"{city.name}-{path_kind}-{variant.split()[0]}"
            work.mkdir()
            layer = _layer(city, spoil, work)
            url = server.url(PATH) if path_kind == "overpass" else None
            before = server.count(PATH)
            note = ""
            if variant.startswith("a"):
                note = f"stops: {_error(_profile(city, layer, work, url), work / 'out')}; fixed: "
                profile = _profile(city, layer, work, url, swap=True)
            else:
                profile = _profile(city, layer, work, url)
            code, decisions, report = _run(profile, work / "out")
            requests = server.count(PATH) - before
            if variant == "clean":
                clean = decisions
            if code:
                rows.append(f"{city.name:<9} {path_kind:<8} {variant:<20} exit {code}")
                continue
            f = _figures(clean, decisions)
            rows.append(f"{city.name:<9} {path_kind:<8} {variant:<20} {note}lost {f['lost']}, "
                        f"wrong creates {f['wrong_creates']}, review {f['review']:.1%}, "
                        f"Overpass requests {requests}{_notes(report)}")
    return rows


def _names_upper_cased() -> str:
    from bench.conflation_dense import DATA as OSM_DATA
    from bench.conflation_dense import Feature, build_source, evaluate, pois, run_sig2osm

    osm = pois(OSM_DATA / "heidelberg.osm.pbf")
    features = build_source(osm)
    shouting = [Feature(f.source_id, f.geometry, {**f.tags, "name": f.tags["name"].upper()},
                        truth=f.truth) for f in features]
    as_published = evaluate(features, run_sig2osm(features, osm))
    upper = evaluate(shouting, run_sig2osm(shouting, osm))
    return (f"heidelberg POIs e names upper-cased    precision {upper['precision']:.4f} "
            f"(as published {as_published['precision']:.4f}), false creates "
            f"{upper['false_creates']:.2%}, review {upper['review']:.2%} (as published "
            f"{as_published['review']:.2%})")


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="sig2osm-messy-") as tmp, overpass_server() as server:
        for city in (_grenoble(), _bondy()):
            server.script(PATH, [overpass_replay(city.answer, city.land)])
            rows += _city_rows(city, server, Path(tmp))
    rows.append(_names_upper_cased())
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
