"""Street-name labels of a plain PDF map matched to OSM streets: the clues and hypotheses of a
placement by labels (see `consensus`).

A label is a clue when its text, normalised as the conflation does (case, accents,
abbreviations), names an OSM street of the search area (similarity ≥ 0.9: one typo, or the
label a whole-word part of the name such as "JAURÈS" for "Avenue Jean Jaurès"). Its anchor is
the drawn line under it: the nearest line within a few font sizes that runs parallel to the
text (the label's own centre when none does); the stretch of that line along the label is
sampled so the line's shape, not only a point, is pulled onto the street.

Hypotheses: the text directions against the streets' directions vote for the map's rotation
(modulo a half turn); for two labels and a rotation, a ray from each point of the first street
that runs parallel to its label, cast along the direction between the two labels, meets the
second street where the second label must lie, which fixes scale and shift.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from conflation.names import name_similarity, normalise_name
from pipeline.pdf.consensus import Clue, Hypotheses, Target, similarities
from pipeline.pdf.osm_streets import Street
from pipeline.pdf.shapes import Shape
from pipeline.pdf.symbols import Label
from pipeline.pdf.transforms import Array

log = logging.getLogger(__name__)

NAME_THRESHOLD = 0.9
_PARALLEL = np.radians(12.0)  # a drawn line within this angle of the text runs under it
_STREET_PARALLEL = np.radians(15.0)  # a street point within this angle of a placed label
_SAMPLE_STEP = 4.0  # page points between samples of the line under a label
_MAX_PAIRS = 600
_MAX_STREET_SAMPLES = 200
_ALTERNATIVES = 2  # drawn lines tried under one label (a label beside its street: both sides)
_SCALE_RANGE = (0.01, 60.0)  # metres per page point: 1:30 to 1:170 000
_ROAD_REF = re.compile(r"^(?:[A-Z]{1,3}\s?\d+[A-Za-z]?|\d+)$")  # RD932, N 3, A86, house numbers


@dataclass(frozen=True)
class _StreetSamples:
    points: Array  # (n, 2) metric
    directions: Array  # (n,) radians modulo π
    segments: Array  # (m, 2, 2): the street's segments, for rays to meet


def _variants(text: str) -> list[str]:
    """The label as written, and without road numbers ("RD932 AVENUE JEAN JAURÈS")."""
    words = text.split()
    plain = " ".join(w for w in words if not _ROAD_REF.match(w))
    return [v for v in dict.fromkeys([text, plain]) if v]


def _is_name(text: str) -> bool:
    letters = sum(c.isalpha() for c in text)
    return letters >= 4 and not _ROAD_REF.match(text.strip())


def street_candidates(labels: list[Label], streets: list[Street]) -> dict[int, list[int]]:
    """For each label (by index) that names streets, the streets (by index) it may name."""
    by_name: dict[str, list[int]] = {}
    for s, street in enumerate(streets):
        for name in street.names:
            by_name.setdefault(normalise_name(name), []).append(s)
    found: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        if not _is_name(label.text):
            continue
        hits: set[int] = set()
        for variant in _variants(label.text):
            key = normalise_name(variant)
            if key in by_name:
                hits.update(by_name[key])
                continue
            for name, members in by_name.items():
                if name_similarity(variant, name) >= NAME_THRESHOLD:
                    hits.update(members)
        if hits:
            found[i] = sorted(hits)
    return found


def _direction_at(line: BaseGeometry, distance: float) -> float:
    a = shapely.line_interpolate_point(line, max(0.0, distance - 1.0))
    b = shapely.line_interpolate_point(line, min(line.length, distance + 1.0))
    return float(np.arctan2(b.y - a.y, b.x - a.x))


def _angle_gap(a: Array | float, b: Array | float) -> Array:
    """Difference of two directions modulo a half turn, in [0, π/2]."""
    d = np.mod(np.asarray(a) - np.asarray(b), np.pi)
    return np.minimum(d, np.pi - d)


def _lines_under(label: Label, lines: list[tuple[BaseGeometry, str]], tree: shapely.STRtree
                 ) -> list[tuple[Array, Array, float, str]]:
    """Anchor, samples and direction of each drawn line that may run under `label`: lines
    parallel to the text within a few font sizes, nearest first, one per position (a casing
    and its fill are one line). A label beside its street (not on it) has a line on each side;
    which one is its street is left to the consensus."""
    reach = max(2.5 * label.size, 10.0)
    centre = label.point
    alpha = np.radians(label.angle)
    found: list[tuple[float, BaseGeometry, float, float, str]] = []
    for k in tree.query(centre, predicate="dwithin", distance=reach).tolist():
        line, style = lines[k]
        at = float(shapely.line_locate_point(line, centre))
        direction = _direction_at(line, at)
        if float(_angle_gap(direction, alpha)) <= _PARALLEL:
            found.append((float(shapely.distance(line, centre)), line, at, direction, style))
    under: list[tuple[Array, Array, float, str]] = []
    for _, line, at, direction, style in sorted(found, key=lambda f: f[0]):
        anchor = shapely.get_coordinates(shapely.line_interpolate_point(line, at))[0]
        if any(np.hypot(*(anchor - u[0])) < 1.0 for u in under):
            continue
        half = label.length / 2 + _SAMPLE_STEP
        stations = np.arange(max(0.0, at - half), min(line.length, at + half) + 1e-9,
                             _SAMPLE_STEP)
        samples = shapely.get_coordinates(shapely.line_interpolate_point(line, stations))
        under.append((anchor, samples, direction, style))
        if len(under) == _ALTERNATIVES:
            break
    return under


def drawn_lines(shapes: list[tuple[Shape, BaseGeometry]]) -> list[tuple[BaseGeometry, str]]:
    """Every drawn line (each part of a multi-line) with its style label."""
    lines: list[tuple[BaseGeometry, str]] = []
    for shape, geom in shapes:
        if shape.kind != "line":
            continue
        lines.extend((g, shape.style.label) for g in shapely.get_parts(geom)
                     if g.geom_type == "LineString")
    return lines


def label_clues(labels: list[Label], shapes: list[tuple[Shape, BaseGeometry]],
                streets: list[Street]) -> tuple[list[Clue], list[Target]]:
    """Clues from the labels that name streets; one target per street."""
    targets = [Target(f"{s.name} ({', '.join(s.ways[:3])}{'…' if len(s.ways) > 3 else ''})",
                      f"{s.name}@{s.ways[0]}", s.geometry, s.geometry) for s in streets]
    candidates = street_candidates(labels, streets)
    lines = drawn_lines(shapes)
    tree = shapely.STRtree([g for g, _ in lines])
    clues: list[Clue] = []
    under = 0
    for i, streets_of_label in candidates.items():
        label = labels[i]
        found = _lines_under(label, lines, tree) if lines else []
        under += bool(found)
        alone: list[tuple[Array, Array, float, str | None]] = [(
            np.array([label.point.x, label.point.y]), np.empty((0, 2)),
            float(np.radians(label.angle)), None)]  # no line under it: the label itself
        for anchor, samples, direction, style in found or alone:
            clues.append(Clue(f"label {label.text!r}", anchor, samples,
                              tuple(streets_of_label), direction, source=i, drawing=style))
    log.info("labels: %d of %d name an OSM street (%d with drawn lines under them: %d "
             "clues)", len(candidates), len(labels), under, len(clues))
    return clues, targets


def _street_samples(street: BaseGeometry) -> _StreetSamples:
    step = max(3.0, street.length / _MAX_STREET_SAMPLES)
    points, directions = [], []
    for part in shapely.get_parts(street):
        stations = np.arange(0.0, part.length + 1e-9, step)
        xy = shapely.get_coordinates(shapely.line_interpolate_point(part, stations))
        ahead = shapely.get_coordinates(shapely.line_interpolate_point(part, stations + 1.0))
        behind = shapely.get_coordinates(shapely.line_interpolate_point(part, stations - 1.0))
        points.append(xy)
        directions.append(np.arctan2(ahead[:, 1] - behind[:, 1], ahead[:, 0] - behind[:, 0]))
    segments = [np.stack([xy[:-1], xy[1:]], axis=1)
                for xy in (shapely.get_coordinates(p) for p in shapely.get_parts(street))]
    return _StreetSamples(np.vstack(points), np.mod(np.concatenate(directions), np.pi),
                          np.concatenate(segments))


def _ray_hits(starts: Array, direction: Array, segments: Array) -> tuple[np.ndarray, Array]:
    """Where rays from `starts` along `direction` cross `segments`: the ray of each hit and the
    hit point (all crossings, vectorised)."""
    a, d = segments[:, 0], segments[:, 1] - segments[:, 0]
    denom = direction[0] * d[:, 1] - direction[1] * d[:, 0]  # cross(w, d)
    offset = a[None, :, :] - starts[:, None, :]  # (n, m, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (offset[..., 0] * d[:, 1] - offset[..., 1] * d[:, 0]) / denom
        u = (offset[..., 0] * direction[1] - offset[..., 1] * direction[0]) / denom
    ray, segment = np.nonzero((t > 0) & (u >= 0) & (u <= 1) & (np.abs(denom) > 1e-12))
    return ray, starts[ray] + t[ray, segment, None] * direction


def _rotations(clues: list[Clue], samples: dict[int, _StreetSamples], peaks: int = 4) -> list[float]:
    """Rotations (modulo π) most voted for by the text directions against their streets."""
    votes = np.zeros(180)
    for clue in clues:
        assert clue.direction is not None
        for t in clue.targets:
            bins = np.floor(np.degrees(np.mod(samples[t].directions - clue.direction, np.pi)))
            hist = np.bincount(bins.astype(int) % 180, minlength=180)
            votes += hist / max(hist.sum(), 1) / len(clue.targets)
    smooth = np.sum([np.roll(votes, k) for k in (-2, -1, 0, 1, 2)], axis=0)
    is_peak = (smooth >= np.roll(smooth, 1)) & (smooth > np.roll(smooth, -1))
    best = np.argsort(-np.where(is_peak, smooth, -1.0))[:peaks]
    found = []
    for b in best[smooth[best] > 0]:
        around = np.arange(b - 2, b + 3)  # the peak's centre of mass: finer than a degree
        weights = votes[around % 180]
        found.append(float(np.radians((around + 0.5) @ weights / max(weights.sum(), 1e-12))))
    return found


def label_hypotheses(clues: list[Clue], targets: list[Target], seed: int = 0) -> Hypotheses:
    """Similarity hypotheses from pairs of labels (see the module text)."""
    used = sorted({t for c in clues for t in c.targets})
    samples = {t: _street_samples(targets[t].outline) for t in used}
    rotations = _rotations(clues, samples)
    pairs = [(i, j) for i in range(len(clues)) for j in range(i + 1, len(clues))
             if clues[i].source != clues[j].source
             and np.hypot(*(clues[i].anchor - clues[j].anchor)) >= 30.0]
    if len(pairs) > _MAX_PAIRS:
        pairs = random.Random(seed).sample(pairs, _MAX_PAIRS)
    hypotheses = Hypotheses.stack([
        (_pair_hypotheses(clues[i], clues[j], theta, samples), n)
        for n, (i, j) in enumerate(pairs) for theta0 in rotations
        for theta in (theta0, theta0 + np.pi)])
    log.debug("labels: %d rotations, %d pairs, %d hypotheses", len(rotations), len(pairs),
              len(hypotheses))
    return hypotheses


def _pair_hypotheses(first: Clue, second: Clue, theta: float,
                     samples: dict[int, _StreetSamples]) -> Array:
    """For a rotation: each point of the first label's streets that runs parallel to it, a ray
    towards where the second label lies, and where it meets the second label's streets."""
    assert first.direction is not None
    v = second.anchor - first.anchor
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    w = rot @ (v / np.hypot(*v))
    found = [np.empty((0, 4))]
    for ti in first.targets:
        street = samples[ti]
        starts = street.points[_angle_gap(street.directions, first.direction + theta)
                               <= _STREET_PARALLEL]
        for tj in (t for t in second.targets if t != ti and len(starts)):
            ray, hits = _ray_hits(starts, w, samples[tj].segments)
            origin = starts[ray]
            scale = np.hypot(*(hits - origin).T) / float(np.hypot(*v))
            keep = (scale >= _SCALE_RANGE[0]) & (scale <= _SCALE_RANGE[1])
            found.append(similarities(first.anchor, second.anchor, origin[keep], hits[keep]))
    return np.vstack(found)
