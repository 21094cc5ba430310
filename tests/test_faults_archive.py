"""Fault injection, archives: zip bombs made small but with the same shape (limits lowered to
match), an archive of too many entries, and entries that would land outside their folder.
Only the layer and its side files are ever unpacked; what breaks a limit is a clear source
error, and the earlier outputs of the run stay as they were."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point

import pipeline.sources
from pipeline.cli import main
from pipeline.sources import ArchiveLimits, _extract_zip
from tests.faults import children_of, visible_digests

LAYER_FILES = ("benches.cpg", "benches.dbf", "benches.prj", "benches.shp", "benches.shx")


@pytest.fixture(scope="module")
def shapefile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shp")
    frame = gpd.GeoDataFrame({"ID": ["1", "2", "3"]}, crs="EPSG:4326",
                             geometry=[Point(5.72 + i / 1000, 45.18) for i in range(3)])
    frame.to_file(folder / "benches.shp")
    return folder


def _zip(path: Path, shapefile: Path, extra: dict[str, bytes] | None = None,
         prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in LAYER_FILES:
            archive.write(shapefile / name, prefix + name)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return path


def _profile(folder: Path, archive: Path) -> Path:
    (folder / "osm.json").write_text(json.dumps({
        "version": 0.6, "generator": "Overpass API", "osm3s": {"timestamp_osm_base": "x"},
        "elements": []}))
    path = folder / "benches.yml"
    path.write_text(f"""name: benches
source: {{path: {archive}, id: ID}}
osm: {{match: {{amenity: bench}}, file: {folder / "osm.json"}, bounds: [5, 45, 6, 46]}}
tags: {{amenity: bench, ref: "{{ID}}"}}
""")
    return path


@pytest.fixture
def earlier(tmp_path: Path, shapefile: Path) -> tuple[Path, dict[str, str]]:
    """A run on a sound archive: its outputs must survive the bad archives."""
    profile = _profile(tmp_path, _zip(tmp_path / "layer.zip", shapefile))
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "out")]) == 0
    return profile, visible_digests(tmp_path / "out" / "benches")


def test_a_bomb_beside_the_layer_is_never_unpacked(tmp_path: Path, shapefile: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """30 MB of zeros (30 kB packed) beside the layer, with a 1 MB limit: the layer is read."""
    monkeypatch.setattr(pipeline.sources, "ZIP_LIMITS", ArchiveLimits(max_bytes=1_000_000))
    archive = _zip(tmp_path / "bomb.zip", shapefile, {"bomb.bin": b"\0" * 30_000_000})
    assert archive.stat().st_size < 100_000
    target = tmp_path / "unpacked"
    target.mkdir()
    assert _extract_zip(archive, target, None) == "benches.shp"
    assert sorted(p.name for p in target.iterdir()) == list(LAYER_FILES)
    profile = _profile(tmp_path, archive)
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize(("limits", "extra", "prefix", "message"), [
    (ArchiveLimits(max_bytes=300), {}, "",
     r"benches\.\w+ unpacks to more than 300 bytes \(with its side files\); a compression bomb"),
    (ArchiveLimits(max_members=20), {f"n{i}.txt": b"" for i in range(30)}, "",
     r"the archive holds 35 entries, more than the 20 sig2osm opens"),
    (ArchiveLimits(), {}, "../../escape/",
     r"entry '\.\./\.\./escape/benches\.\w+' would be unpacked outside its folder"),
], ids=["layer-bomb", "too-many-entries", "path-outside"])
def test_an_archive_past_a_limit_is_a_source_error(
        limits: ArchiveLimits, extra: dict[str, bytes], prefix: str, message: str,
        tmp_path: Path, shapefile: Path, earlier: tuple[Path, dict[str, str]],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import re

    profile, before = earlier
    monkeypatch.setattr(pipeline.sources, "ZIP_LIMITS", limits)
    _zip(tmp_path / "layer.zip", shapefile, extra, prefix)  # the profile's archive, replaced
    capsys.readouterr()
    assert main(["-q", "run", str(profile), "--out", str(tmp_path / "out"), "--refresh"]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert re.search(message, err), err
    assert visible_digests(tmp_path / "out" / "benches") == before
    assert not (tmp_path.parent / "escape").exists()
    assert not children_of(os.getpid())
