"""`sig2osm pdf`: extract georeferenced, classified layers from a PDF map; list its styles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.kernel.settings import DEFAULT_OVERPASS_URL
from pipeline.pdf.classify import Legend, load_legend, style_layers
from pipeline.pdf.georef import DEFAULT_MAX_RMS, DEFAULT_MIN_MATCHES
from pipeline.pdf.transforms import TRANSFORMS
from pipeline.profile import load_profile

if TYPE_CHECKING:
    from pipeline.pdf.find_gcps import MapData
    from pipeline.pdf.shapes import Shape, Style

pdf_argument = click.argument("pdf_file", metavar="PDF",
                              type=click.Path(dir_okay=False, path_type=Path))
page_option = click.option("--page", type=int, default=1, show_default=True,
                           help="Page number (1 = first page).")


@click.group(name="pdf")
def pdf() -> None:
    """Layers from PDF maps: georeference, extract, classify."""


def out_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--out", "out", required=True, help=f"{what} to write.",
                        type=click.Path(dir_okay=False, path_type=Path))


@pdf.command()
@pdf_argument
@out_option("GeoPackage (one layer per category)")
@click.option("--gcps", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="QGIS Georeferencer .points file; replaces the PDF's own georeferencing.")
@click.option("--gcp-crs", default=None, help="CRS of the .points map coordinates when the file "
              "has no '#CRS:' line, e.g. EPSG:2154.")
@click.option("--gcp-dpi", type=float, default=72.0, show_default=True,
              help="Resolution the page was rendered at when the control points were taken.")
@click.option("--legend", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Legend YAML mapping styles to categories (default: one layer per style).")
@page_option
@click.option("--transform", type=click.Choice(TRANSFORMS), default=None,
              help="Transform fitted on the control points (default: Helmert for 2 points, "
                   "affine from 3).")
@click.option("--max-rms", type=float, default=DEFAULT_MAX_RMS, show_default=True,
              help="Refuse a georeference whose RMS error exceeds this many metres.")
@click.option("--force", is_flag=True, help="Write even when the RMS error exceeds --max-rms.")
@click.option("--ignore-georef", is_flag=True,
              help="Ignore the PDF's own georeferencing (keep page coordinates or use --gcps).")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the extracted layers into this PNG file.")
def extract(pdf_file: Path, out: Path, gcps: Path | None, gcp_crs: str | None, gcp_dpi: float,
            legend: Path | None, page: int, transform: str | None, max_rms: float, force: bool,
            ignore_georef: bool, preview: Path | None) -> None:
    """Extract the vector layers of one page of a PDF map into a GeoPackage."""
    from pipeline.pdf.extract import ExtractOptions, extract_pdf
    from pipeline.pdf.writer import write_geopackage

    options = ExtractOptions(page, gcps, gcp_crs, gcp_dpi, transform, max_rms, force,
                             load_legend(legend) if legend else Legend(), ignore_georef)
    extraction = extract_pdf(pdf_file, options)
    counts = write_geopackage(extraction, out)
    georef = extraction.georef
    rms = f", RMS {georef.rms_m:.2f} m" if georef.rms_m is not None else ""
    click.echo(f"{pdf_file.name} page {page}: georeference {georef.method} "
               f"({georef.transform_name}{rms}), CRS {georef.crs or 'none (page coordinates)'}")
    for name, count in sorted(counts.items()):
        click.echo(f"  {count:6d}  {name}")
    symbols = [c for c in extraction.counts_by_style if c.kind == "point"]
    if symbols:
        click.echo(f"  symbols: {sum(c.drawn for c in symbols)} drawn in {len(symbols)} styles → "
                   f"{sum(c.features for c in symbols)} features, "
                   f"{sum(c.parts for c in symbols)} parts of composite symbols, "
                   f"{sum(c.outside for c in symbols)} outside the frame, "
                   f"{sum(c.dropped for c in symbols)} dropped by the legend, "
                   f"{sum(c.lost for c in symbols)} lost (table pdf_counts)")
    click.echo(f"  written to {out}")
    if preview is not None:
        from pipeline.pdf.preview import render_preview

        click.echo(f"  preview: {render_preview(extraction, preview)}")


@pdf.command()
@pdf_argument
@out_option("QGIS Georeferencer .points file")
@click.option("--osm", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Local OSM extract with the map's streets (default: Overpass).")
@click.option("--parcels", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cadastre parcels (GeoJSON, GeoPackage, Shapefile; .gz read as is): match the "
                   "drawn parcel outlines instead of the street labels.")
@click.option("--near", default=None, help="Search area: a place name, looked up in --osm or "
              "through Overpass (e.g. \"Bondy\").")
@click.option("--bbox", default=None, help="Search area: W,S,E,N in degrees.")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Take --osm, the search area (osm.bounds, match.area, osm.area) "
              "and the Overpass server from this profile when not given.")
@page_option
@click.option("--transform", type=click.Choice(("auto", *TRANSFORMS)), default="auto",
              show_default=True, help="Transform fitted on the control points found; auto: "
              "Helmert, or affine when it fits clearly better (a map stretched in degrees).")
@click.option("--max-rms", type=float, default=DEFAULT_MAX_RMS, show_default=True,
              help="Refuse control points whose RMS error exceeds this many metres.")
@click.option("--min-matches", type=click.IntRange(2, 1000), default=DEFAULT_MIN_MATCHES,
              show_default=True, help="Independent matches (distinct streets or parcels) needed.")
@click.option("--dpi", type=float, default=72.0, show_default=True,
              help="Write source positions as pixels of the page rendered at this resolution "
                   "(QGIS opens a PDF at 150 dpi; pass the same value to extract --gcp-dpi).")
@click.option("--legend", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Legend YAML (its frame, if any, limits the search to the map).")
@click.option("--crs", default=None, help="Projected CRS of the control points' map "
              "coordinates, e.g. EPSG:2154 (default: the UTM zone of the area).")
@click.option("--overpass-url", default=None, help="Overpass server (default: the profile's, "
              "else overpass-api.de).")
def georef(pdf_file: Path, out: Path, osm: Path | None, parcels: Path | None, near: str | None,
           bbox: str | None, profile_path: Path | None, page: int, transform: str,
           max_rms: float, min_matches: int, dpi: float, legend: Path | None, crs: str | None,
           overpass_url: str | None) -> None:
    """Find control points for a plain (not georeferenced) PDF map: its street-name labels
    matched to OSM streets, or its parcel outlines to cadastre parcels; write them as a QGIS
    .points file for `pdf extract --gcps`."""
    from pipeline.pdf.find_gcps import (
        GeorefOptions,
        MapData,
        find_control_points,
        write_points_file,
    )

    data = MapData(osm, parcels, near, bbox, overpass_url or DEFAULT_OVERPASS_URL,
                   out.parent / ".cache")
    if profile_path is not None:
        data = _with_profile(data, profile_path, overpass_url)
    options = GeorefOptions(page, transform, max_rms, min_matches,
                            load_legend(legend) if legend else Legend(), crs)
    found = find_control_points(pdf_file, data, options)
    write_points_file(found, out, dpi)
    placement = found.placement
    click.echo(f"{pdf_file.name} page {page}: {len(placement.control_points)} control points by "
               f"{placement.method} ({placement.independent} independent) against {found.area}; "
               f"{placement.transform.name} transform, RMS {placement.rms_m:.2f} m")
    for clue, target, distance in placement.outliers:
        click.echo(f"  outlier: {clue}: {distance:.0f} m from {target}")
    fitted = placement.transform.name
    click.echo(f"  written to {out}  (then: sig2osm pdf extract {pdf_file} --gcps {out}"
               f"{'' if dpi == 72 else f' --gcp-dpi {dpi:g}'}"
               f"{'' if fitted == 'affine' else f' --transform {fitted}'} --out MAP.gpkg)")


def _with_profile(data: MapData, path: Path, overpass_url: str | None) -> MapData:
    """Fill what the command line left out from a profile's `osm:` and `match.area`."""
    from dataclasses import replace

    profile = load_profile(path)
    osm = profile.osm
    box = osm.bounds or profile.match.area
    near = osm.area if osm.area and not osm.area.removeprefix("relation/").isdigit() else None
    return replace(
        data,
        osm=data.osm or (osm.file[0] if osm.file else None),
        bbox=data.bbox or (None if data.near or box is None else ",".join(map(str, box))),
        near=data.near or (None if data.bbox or box else near),
        overpass_url=overpass_url or osm.overpass_url)


@pdf.command()
@pdf_argument
@page_option
def styles(pdf_file: Path, page: int) -> None:
    """List the distinct drawing styles of a page, with counts and a sample position, to write a
    legend file from. Positions are page points from the top-left corner."""
    from pipeline.pdf.extract import page_shapes

    content = page_shapes(pdf_file, page)
    groups: dict[tuple[Style, str], list[Shape]] = defaultdict(list)
    for shape in content.shapes:
        groups[(shape.style, shape.kind)].append(shape)
    click.echo(f"{pdf_file.name} page {page}: {len(content.shapes)} shapes in {len(groups)} "
               f"styles, {len(content.labels)} text labels")
    layers = style_layers(key for key, members in groups.items() for _ in members)
    for (style, kind), members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        point = members[0].geometry.representative_point()
        symbol = f" {members[0].symbol}" if members[0].symbol else ""
        click.echo(f"  {len(members):6d}  {kind + symbol:16s} {style.label}  "
                   f"[{layers[(style, kind)]}]  e.g. at ({point.x:.1f}, {-point.y:.1f})")
