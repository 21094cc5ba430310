"""`sig2osm check`: validate a profile and its local inputs without touching the network."""

from __future__ import annotations

from urllib.parse import urlparse

from pipeline.errors import ProfileError
from pipeline.ingest import ingest
from pipeline.osm_files import read_osm_file
from pipeline.profile import Profile


def describe_run(profile: Profile) -> str:
    """Read what can be read offline and say, in a few lines, what a run would do."""
    lines = [f"profile {profile.path}: valid", f"run folder: <out>/{profile.name}/"]
    src = profile.source
    if src.path is not None:
        layer = ingest(profile, src.path)
        skipped = len(layer.features) - len(layer.usable)
        lines.append(f"source: {src.path} ({layer.info['driver']}, CRS {layer.info['crs']}): "
                     f"{len(layer.features)} features, {len(layer.usable)} usable, {skipped} skip")
    else:
        assert src.url is not None
        parsed = urlparse(src.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ProfileError(f"source.url: {src.url!r} is not an http(s) URL")
        lines.append(f"source: would download {src.url} (cached under <out>/.cache/downloads)")
    osm = profile.osm
    match = ", ".join(f"{k}={v}" for k, v in osm.match.items())
    if osm.file:
        for path in osm.file:
            data = read_osm_file(path, osm.match, profile.match.ref, osm.bounds)
            lines.append(f"OSM: {path}: {len(data.elements)} candidates ({match}); "
                         f"area: {data.coverage_origin}")
        for diff in osm.diff or []:
            if not diff.is_file():
                raise ProfileError(f"osm.diff: {diff}: no such file")
            lines.append(f"OSM: then apply {diff}")
    else:
        where = f"area {osm.area}" if osm.area else "the source bbox grown by match.distance"
        lines.append(f"OSM: would query Overpass at {osm.overpass_url} for {match} over {where}"
                     + (f" as of {osm.date}" if osm.date else ""))
    if profile.source.geometry == "none":
        area = profile.match.area or profile.osm.bounds or "the area the OSM data covers"
        how = f"by street name within {area}"
    else:
        how = f"within {profile.match.distance:g} m"
    lines.append(f"match: ref key {profile.match.ref or '(none)'}, {how}; authoritative: "
                 f"{', '.join(profile.match.authoritative) or 'none'}")
    outputs = ["changes.osc", "changes.osm", "review.geojson", "report.json", "map.html",
               "maproulette.geojsonl", "chunks/", "import-plan.md", "import-plan.wiki"]
    if profile.map is not None:
        outputs += ["council-map.html", "map.umap"]
    lines.append(f"outputs in <out>/{profile.name}/: {', '.join(outputs)}; <out>/index.html")
    return "\n".join(lines)
