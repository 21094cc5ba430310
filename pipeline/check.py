"""`sig2osm check`: validate a profile and its local inputs without touching the network, and
say what a run would do — with the run's own code (ingest, the OSM reader, the placement checks
and the conflation), so the two never disagree."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlparse

import shapely

from conflation.policies import describe as describe_policy
from conflation.policies import policy_name
from pipeline.ingest import SourceLayer, ingest
from pipeline.kernel.decisions import SKIP, Decision, count_decisions
from pipeline.kernel.errors import ProfileError
from pipeline.kernel.osm import describe_match
from pipeline.kernel.settings import Profile
from pipeline.overpass import TILE_DEGREES, occupied_tiles
from pipeline.stages import check_where_layer_lies, decide, osm_from_files

SHOWN_REASONS = 8


def describe_run(profile: Profile) -> str:
    """Read what can be read offline and say, in a few lines, what a run would do."""
    lines = [f"profile {profile.path}: valid", f"run folder: <out>/{profile.name}/"]
    layer = _source(profile, lines)
    osm = profile.osm
    match = describe_match(osm.match)
    if osm.file:
        data = osm_from_files(profile, list(osm.file))
        lines.append(f"OSM: {', '.join(str(f) for f in osm.file)}"
                     + "".join(f" + diff {d}" for d in osm.diff or [])
                     + f": {len(data.elements)} candidates ({match}); area: {data.coverage_origin}")
        if layer is not None:
            lines += _decisions(decide(profile, layer, data))
    else:
        lines += _overpass(profile, layer)
    lines.append(_matching(profile))
    outputs = ["changes.osc", "changes.osm", "review.geojson", "report.json", "map.html",
               "maproulette.geojsonl", "chunks/", "import-plan.md", "import-plan.wiki"]
    if profile.map is not None:
        outputs += ["council-map.html", "map.umap"]
    lines.append(f"outputs in <out>/{profile.name}/: {', '.join(outputs)}; <out>/index.html")
    return "\n".join(lines)


def _source(profile: Profile, lines: list[str]) -> SourceLayer | None:
    src = profile.source
    if src.path is None:
        assert src.url is not None
        parsed = urlparse(src.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ProfileError(f"source.url: {src.url!r} is not an http(s) URL")
        lines.append(f"source: would download {src.url} (cached under <out>/.cache/downloads)")
        return None
    layer = ingest(profile, src.path)
    info = layer.info
    skipped = len(layer.features) - len(layer.usable)
    lines.append(f"source: {src.path} ({info['driver']}, CRS {info['crs']}): "
                 f"{len(layer.features)} features, {len(layer.usable)} usable, {skipped} skip "
                 "before matching")
    for key, entry in info["tags_left_out"].items():
        lines.append(f"  tag {key} left out of {entry['features']} feature(s): field "
                     f"{', '.join(entry['fields'])} empty")
    for name, entry in info["text_repaired"].items():
        lines.append(f"  field {name}: {entry['values']} value(s) repaired from double-encoded "
                     "UTF-8")
    if info.get("outliers"):
        lines.append(f"  {len(info['outliers'])} outlier(s) far from the rest of the layer")
    return layer


def _decisions(decisions: list[Decision]) -> list[str]:
    counts = count_decisions(decisions)
    lines = ["a run would decide: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)]
    reasons = Counter(_reason_kind(d.reason) for d in decisions if d.decision == SKIP)
    for reason, n in reasons.most_common(SHOWN_REASONS):
        lines.append(f"  skip {n}: {reason}")
    if len(reasons) > SHOWN_REASONS:
        lines.append(f"  skip …: {len(reasons) - SHOWN_REASONS} other reason(s)")
    return lines


def _reason_kind(reason: str) -> str:
    """A skip reason without its particulars (distances, areas), to count alike ones."""
    return reason.split(" (")[0].split(": ")[0]


def _overpass(profile: Profile, layer: SourceLayer | None) -> list[str]:
    osm = profile.osm
    where = f"area {osm.area}" if osm.area else "the source bbox grown by match.distance"
    line = (f"OSM: would query Overpass at {osm.overpass_url} for {describe_match(osm.match)} "
            f"over {where}" + (f" as of {osm.date}" if osm.date else ""))
    if layer is not None and layer.usable and not osm.area and profile.source.geometry != "none":
        declared = profile.match.area or osm.bounds
        if declared:
            check_where_layer_lies(layer, shapely.box(*declared),
                                   f"the profile's area {list(declared)}")
        tiles = occupied_tiles(layer, profile.match.distance, TILE_DEGREES)
        line += f" ({len(tiles)} tile(s) of {TILE_DEGREES:g}°, at most {osm.max_tiles})"
    return [line]


def _matching(profile: Profile) -> str:
    if profile.source.geometry == "none":
        area = profile.match.area or profile.osm.bounds or "the area the OSM data covers"
        how = f"by street name within {area}"
    else:
        how = f"within {profile.match.distance:g} m"
    keys_by_policy: dict[str, list[str]] = {}
    for key in profile.tags:
        keys_by_policy.setdefault(policy_name(key, profile.match), []).append(key)
    policies = "".join(f"\ntag policy {name}: {', '.join(keys)} ({describe_policy(name)})"
                       for name, keys in keys_by_policy.items())
    return f"match: ref key {profile.match.ref or '(none)'}, {how}{policies}"
