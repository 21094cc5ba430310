"""`sig2osm pdf`: extract georeferenced, classified layers from a PDF map; list its styles."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import click

from pipeline.pdf.classify import Legend, load_legend, style_layer_name
from pipeline.pdf.georef import DEFAULT_MAX_RMS
from pipeline.pdf.transforms import TRANSFORMS

pdf_argument = click.argument("pdf_file", metavar="PDF",
                              type=click.Path(dir_okay=False, path_type=Path))
page_option = click.option("--page", type=int, default=1, show_default=True,
                           help="Page number (1 = first page).")


@click.group(name="pdf")
def pdf() -> None:
    """Layers from PDF maps: georeference, extract, classify."""


@pdf.command()
@pdf_argument
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="GeoPackage to write (one layer per category).")
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
    click.echo(f"  written to {out}")
    if preview is not None:
        from pipeline.pdf.preview import render_preview

        click.echo(f"  preview: {render_preview(extraction, preview)}")


@pdf.command()
@pdf_argument
@page_option
def styles(pdf_file: Path, page: int) -> None:
    """List the distinct drawing styles of a page, with counts and a sample position, to write a
    legend file from. Positions are page points from the top-left corner."""
    from pipeline.pdf.extract import page_shapes

    content = page_shapes(pdf_file, page)
    groups: dict[tuple[object, str], list] = defaultdict(list)
    for shape in content.shapes:
        groups[(shape.style, shape.kind)].append(shape)
    click.echo(f"{pdf_file.name} page {page}: {len(content.shapes)} shapes in {len(groups)} "
               f"styles, {len(content.labels)} text labels")
    for (style, kind), members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        point = members[0].geometry.representative_point()
        symbol = f" {members[0].symbol}" if members[0].symbol else ""
        click.echo(f"  {len(members):6d}  {kind + symbol:16s} {style.label}  "  # type: ignore[attr-defined]
                   f"[{style_layer_name(style, kind)}]  e.g. at ({point.x:.1f}, {-point.y:.1f})")  # type: ignore[arg-type]
