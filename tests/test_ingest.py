"""Ingest: every common SIG format, encodings, CRS, ids, tag templates and skip reasons."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely

from pipeline.ingest import FeatureBuilder, ingest
from pipeline.kernel.errors import InputError, InputNotFoundError
from pipeline.profile import load_profile

BONDY_GPKG = "bondy/municipal/bondy_layers.gpkg"


def profile_for(tmp_path: Path, source: str, extra_tags: str = "", name: str = "t") -> Path:
    text = f"""\
name: {name}
source:
{source}
osm:
  match: {{amenity: vending_machine}}
  file: map.osm
tags:
  amenity: vending_machine
{extra_tags}
"""
    path = tmp_path / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    return path


def run_ingest(profile: Path):
    loaded = load_profile(profile)
    assert loaded.source.path is not None
    return ingest(loaded, loaded.source.path)


@pytest.fixture()
def bondy_meters(data: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(data / BONDY_GPKG, layer="horodateur2025")


def test_geojson_grenoble_every_feature_and_multipoint_repaired(data: Path, tmp_path: Path) -> None:
    source = f"  path: {data / 'grenoble-horodateurs/INPUT/data-grenoble.json'}\n  id: HOROD_ID"
    layer = run_ingest(profile_for(tmp_path, source, '  ref: "{HOROD_ID}"'))
    assert len(layer.features) == 851
    assert all(f.skip_reason is None for f in layer.features)
    by_id = {f.source_id: f for f in layer.features}
    assert by_id["202"].geometry.geom_type == "Point"  # a MultiPoint of one location twice
    assert by_id["574"].tags == {"amenity": "vending_machine", "ref": "574"}
    assert layer.metric_crs == "EPSG:32631"
    assert layer.info["sha256"] and layer.info["features"] == 851


def test_geopackage_layer_by_name(data: Path, tmp_path: Path) -> None:
    source = f"  path: {data / BONDY_GPKG}\n  layer: horodateur2025\n  id: identifiant"
    layer = run_ingest(profile_for(tmp_path, source, '  addr:full: "{adresse}"'))
    assert len(layer.features) == 108
    assert any("égalité" in f.tags["addr:full"] for f in layer.features)


def test_geopackage_in_lambert93_is_reprojected(data: Path, tmp_path: Path) -> None:
    source = f"  path: {data / BONDY_GPKG}\n  layer: bornes\n  id: id"
    layer = run_ingest(profile_for(tmp_path, source))
    assert layer.info["crs"] == "EPSG:2154"
    for feature in layer.features:
        assert feature.geometry.geom_type == "Point" and not feature.geometry.has_z
        assert 2.4 < feature.geometry.x < 2.6 and 48.8 < feature.geometry.y < 49.0  # Bondy


def test_unknown_layer_lists_the_layers(data: Path, tmp_path: Path) -> None:
    source = f"  path: {data / BONDY_GPKG}\n  layer: horodateurs\n  id: identifiant"
    with pytest.raises(InputError, match="no layer 'horodateurs'; the file has: .*horodateur2025"):
        run_ingest(profile_for(tmp_path, source))


def test_multi_layer_file_needs_a_layer(data: Path, tmp_path: Path) -> None:
    source = f"  path: {data / BONDY_GPKG}\n  id: identifiant"
    with pytest.raises(InputError, match="has 8 layers .*set source.layer"):
        run_ingest(profile_for(tmp_path, source))


def write_shapefile(frame: gpd.GeoDataFrame, folder: Path, encoding: str, cpg: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "meters.shp"
    # .dbf field names hold 10 characters at most
    pyogrio.write_dataframe(frame.rename(columns={"identifiant": "ident"}), path, encoding=encoding)
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


@pytest.mark.filterwarnings("ignore:One or several characters")
@pytest.mark.parametrize(("encoding", "cpg"), [("cp1252", False), ("cp1252", True),
                                               ("ISO-8859-1", False), ("utf-8", False)])
def test_shapefile_text_encodings(bondy_meters: gpd.GeoDataFrame, tmp_path: Path,
                                  encoding: str, cpg: bool) -> None:
    shp = write_shapefile(bondy_meters, tmp_path / "shp", encoding, cpg)
    source = f"  path: {shp}\n  id: ident"
    layer = run_ingest(profile_for(tmp_path, source, '  addr:full: "{adresse}"'))
    addresses = {f.tags["addr:full"] for f in layer.features}
    assert "2 Allée de l'égalité" in addresses
    assert not any("Ã" in a for a in addresses)  # no mojibake


def test_zipped_shapefile_in_a_sub_folder(bondy_meters: gpd.GeoDataFrame, tmp_path: Path) -> None:
    shp = write_shapefile(bondy_meters, tmp_path / "export" / "voirie", "cp1252", cpg=False)
    archive = tmp_path / "meters.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in shp.parent.iterdir():
            zf.write(part, f"export/voirie/{part.name}")
    layer = run_ingest(profile_for(tmp_path, f"  path: {archive}\n  id: ident",
                                   '  addr:full: "{adresse}"'))
    assert len(layer.features) == 108
    assert layer.info["member"] == "export/voirie/meters.shp"
    assert "2 Allée de l'égalité" in {f.tags["addr:full"] for f in layer.features}


def test_shapefile_without_prj_needs_a_crs(bondy_meters: gpd.GeoDataFrame, tmp_path: Path) -> None:
    shp = write_shapefile(bondy_meters, tmp_path / "shp", "utf-8", cpg=True)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(InputError, match="declares no CRS; set source.crs"):
        run_ingest(profile_for(tmp_path, f"  path: {shp}\n  id: ident"))
    layer = run_ingest(profile_for(tmp_path, f"  path: {shp}\n  id: ident\n  crs: EPSG:4326"))
    assert layer.info["crs_origin"] == "profile"


def test_wrong_crs_is_caught_by_range(data: Path, tmp_path: Path) -> None:
    source = f"  path: {data / BONDY_GPKG}\n  layer: bornes\n  id: id\n  crs: EPSG:4326"
    with pytest.raises(InputError, match="outside longitude/latitude range .*EPSG:2154"):
        run_ingest(profile_for(tmp_path, source))


def test_flatgeobuf(bondy_meters: gpd.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "meters.fgb"
    pyogrio.write_dataframe(bondy_meters, path)
    layer = run_ingest(profile_for(tmp_path, f"  path: {path}\n  id: identifiant"))
    assert len(layer.features) == 108 and layer.info["driver"] == "FlatGeobuf"


def ban_sample(data: Path, tmp_path: Path, rows: int = 200) -> Path:
    lines = (data / "bondy/municipal/ban_adresses_bondy.csv").read_text(encoding="utf-8")
    path = tmp_path / "ban.csv"
    path.write_text("\n".join(lines.splitlines()[: rows + 1]) + "\n", encoding="utf-8")
    return path


def test_csv_lonlat_detected_and_xy_override_agree(data: Path, tmp_path: Path) -> None:
    csv = ban_sample(data, tmp_path)
    tags = '  addr:housenumber: "{numero}"\n  addr:street: "{nom_voie}"'
    lonlat = run_ingest(profile_for(tmp_path, f"  path: {csv}\n  id: id", tags, name="a"))
    xy = run_ingest(profile_for(tmp_path, f"  path: {csv}\n  id: id\n  x: x\n  y: y\n"
                                          "  crs: EPSG:2154", tags, name="b"))
    assert len(lonlat.features) == 200 and lonlat.info["crs_origin"] == "columns lon/lat"
    gaps = [a.geometry.distance(b.geometry) for a, b in zip(lonlat.features, xy.features, strict=True)]
    assert max(gaps) < 1e-5  # about a metre: BAN rounds lon/lat to 6 decimals


def test_csv_xy_without_crs_is_an_error(data: Path, tmp_path: Path) -> None:
    csv = ban_sample(data, tmp_path)
    with pytest.raises(InputError, match=r"columns x/y\) declares no CRS"):
        run_ingest(profile_for(tmp_path, f"  path: {csv}\n  id: id\n  x: x\n  y: y"))


def test_duplicate_ids_are_listed(data: Path, tmp_path: Path) -> None:
    csv = ban_sample(data, tmp_path)
    with pytest.raises(InputError, match="duplicate ids in field 'nom_voie': "
                       "Allee Anne Sylvestre, Allee Marguerite Duras"):
        run_ingest(profile_for(tmp_path, f"  path: {csv}\n  id: nom_voie"))


def test_missing_id_field_lists_fields(data: Path, tmp_path: Path) -> None:
    source = f"  path: {data / BONDY_GPKG}\n  layer: horodateur2025\n  id: HOROD_ID"
    with pytest.raises(InputError, match=r"id field 'HOROD_ID' \(source.id\) not found; fields: num"):
        run_ingest(profile_for(tmp_path, source))


def test_template_field_missing_from_layer(data: Path, tmp_path: Path) -> None:
    source = f"  path: {data / BONDY_GPKG}\n  layer: horodateur2025\n  id: identifiant"
    with pytest.raises(InputError, match="tag 'ref' uses field 'REF'"):
        run_ingest(profile_for(tmp_path, source, '  ref: "{REF}"'))


def test_empty_layer(bondy_meters: gpd.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "empty.gpkg"
    pyogrio.write_dataframe(bondy_meters.iloc[0:0], path, layer="meters")
    with pytest.raises(InputError, match="is empty"):
        run_ingest(profile_for(tmp_path, f"  path: {path}\n  id: identifiant"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="no such file"):
        run_ingest(profile_for(tmp_path, f"  path: {tmp_path / 'nope.gpkg'}\n  id: id"))


def test_broken_features_are_skipped_with_reason(bondy_meters: gpd.GeoDataFrame,
                                                 tmp_path: Path) -> None:
    frame = bondy_meters.iloc[:4].copy()
    frame.loc[frame.index[0], "zone"] = None
    frame.loc[frame.index[1], "geometry"] = None
    bowtie = shapely.from_wkt("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))")
    frame = frame.set_geometry(frame.geometry.astype(object))
    frame["geometry"] = [frame.geometry.iloc[0], None, bowtie, shapely.Polygon()]
    path = tmp_path / "broken.geojson"
    frame.to_file(path)
    layer = run_ingest(profile_for(tmp_path, f"  path: {path}\n  id: identifiant",
                                   '  zone: "{zone}"'))
    reasons = [None if f.skip_reason is None else str(f.skip_reason) for f in layer.features]
    assert reasons[0] is None and "zone" not in layer.features[0].tags  # the tag, not the feature
    assert layer.info["tags_left_out"] == {"zone": {"features": 1, "fields": ["zone"]}}
    assert reasons[1] == "empty geometry"
    assert reasons[2] is None and layer.features[2].geometry.geom_type == "MultiPolygon"
    assert reasons[3] == "empty geometry"


def builder(tmp_path: Path, tags: str, match: str = "{amenity: bench}") -> FeatureBuilder:
    path = tmp_path / "tags.yml"
    path.write_text(f"name: t\nsource: {{path: x.csv, id: ID}}\nosm: {{match: {match}}}\n"
                    f"tags:\n{tags}\n", encoding="utf-8")
    return FeatureBuilder(load_profile(path))


def test_value_maps_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "values.yml"
    path.write_text('name: t\nsource: {path: x.csv, id: ID}\nosm: {match: {amenity: bench}}\n'
                    'tags: {amenity: bench, ref: "{ID}", zone: "{ZONE}"}\n'
                    'values: {ZONE: {ZONE VERTE: green}}\n', encoding="utf-8")
    tags, problem = FeatureBuilder(load_profile(path)).tags({"ID": 301.0, "ZONE": "ZONE VERTE"})
    assert problem is None and tags == {"amenity": "bench", "ref": "301", "zone": "green"}


def test_template_marks_optional_default_required(tmp_path: Path) -> None:
    build = builder(tmp_path, '  amenity: bench\n  addr:housenumber: "{numero}{rep?}"\n'
                    '  fee: "{PAYANT|no}"\n  wheelchair: "{PMR}"\n  ref: "{ID!}"')
    assert build.tags({"numero": 12, "rep": "bis", "PAYANT": "yes", "PMR": "yes", "ID": "a"}) == (
        {"amenity": "bench", "addr:housenumber": "12bis", "fee": "yes", "wheelchair": "yes",
         "ref": "a"}, None)
    tags, problem = build.tags({"numero": 12, "rep": None, "PAYANT": "", "PMR": " ", "ID": "b"})
    assert problem is None  # the feature stays usable; the empty tag is left out
    assert tags == {"amenity": "bench", "addr:housenumber": "12", "fee": "no", "ref": "b"}
    tags, problem = build.tags({"numero": None, "rep": "bis", "PMR": "no", "ID": None})
    assert str(problem) == "field ID is empty (required by tag ref)"
    # Counted over the usable features: the skipped one lost addr:housenumber too.
    assert build.templates.summary() == {"wheelchair": {"features": 1, "fields": ["PMR"]}}


def test_a_lost_kind_tag_makes_the_feature_unusable(tmp_path: Path) -> None:
    build = builder(tmp_path, '  amenity: "{TYPE}"\n  name: "{NOM}"',
                    "[{amenity: bench}, {amenity: waste_basket}]")
    assert build.tags({"TYPE": "bench", "NOM": None}) == ({"amenity": "bench"}, None)
    _, problem = build.tags({"TYPE": None, "NOM": "Banc"})
    assert str(problem) == ("tag amenity left out (field TYPE empty), so the feature is not of the "
                       "kind osm.match describes")


def test_a_tag_that_cannot_be_written_makes_the_feature_unusable(tmp_path: Path) -> None:
    build = builder(tmp_path, '  amenity: bench\n  name: "{NOM}"\n  ref: "{ID}"')
    _, problem = build.tags({"ID": 4, "NOM": "Banc " + "x" * 300})
    assert str(problem) == "tag name: value of name has 305 characters, more than the 255 OSM allows"
    _, problem = build.tags({"ID": 4, "NOM": "Banc\x0bdu port"})
    assert problem is not None and "U+000B" in str(problem)


def test_source_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "layer"
    folder.mkdir()
    shutil.copy(__file__, folder / "x.txt")
    with pytest.raises(InputError, match="is a folder"):
        run_ingest(profile_for(tmp_path, f"  path: {folder}\n  id: id"))
