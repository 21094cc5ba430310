"""A robust fit of page → map from uncertain matches (street labels, drawn parcels).

Each *clue* is a page feature that may lie on one of several map *targets*: a street label and
the OSM streets of its name, a drawn parcel and the cadastre parcels of its shape. The methods
(`label_matching`, `parcel_matching`) turn pairs of clues into similarity hypotheses (scale,
rotation, shift); here the hypotheses vote (a generalised Hough transform: the right one is
proposed by many pairs, wrong ones scatter), the best-supported few are scored against every
clue (how many independent targets they bring within tolerance: RANSAC's consensus), and the
winner is refined by iterated closest points (the drawn lines and outlines pulled onto their
targets) into the transform `pdf extract` uses. What comes out are control points: each inlier
clue's page anchor and the nearest map point of its target, with residuals in metres, and the
outliers named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from pipeline.kernel.errors import PdfError
from pipeline.pdf.georef import ControlPoint
from pipeline.pdf.transforms import (
    MIN_POINTS,
    Array,
    FittedTransform,
    fit_to_lines,
    fit_transform,
)

log = logging.getLogger(__name__)

_VOTE_ANGLE = np.radians(4.0)  # cells of the vote: rotation
_VOTE_SCALE = 0.1  # … log scale
_VOTE_SHIFT = 0.06  # … where the clues' centre lands, as a share of their extent
_VERIFIED = 30  # best-voted hypotheses scored against every clue
_SETTLE_ROUNDS = 3
_AFFINE_MATCHES = 8  # independent matches before "auto" considers an affine transform
_AFFINE_GAIN = 0.7  # … and its RMS error must be below this share of the Helmert one
_ICP_ROUNDS = 12


@dataclass(frozen=True)
class Target:
    """A map feature a clue may lie on (metric CRS)."""

    name: str  # e.g. "Rue de Siam (way/1, way/2)" or "parcel 930100000A0224"
    group: str  # independent unit: one street, one parcel
    anchor: BaseGeometry  # where a clue's anchor must fall (street line, parcel centroid)
    outline: BaseGeometry  # what a clue's samples must fall on (street line, parcel boundary)


@dataclass(frozen=True)
class Clue:
    """A page feature and the targets it may lie on."""

    name: str  # e.g. "label 'AV. DE LA GARE'" or "parcel 1-000123"
    anchor: Array  # (2,) page point: the control point's page position
    samples: Array  # (k, 2) page points that lie on the target's outline when placed
    targets: tuple[int, ...]
    direction: float | None = None  # radians, page: the street's direction under a label
    source: int = -1  # clues of one page feature (alternatives for one label): only the
                      # nearest to its target counts; -1: a clue of its own
    drawing: str | None = None  # style of the drawing the clue rests on (a street's line)


@dataclass(frozen=True)
class Similarity:
    """map = s·R(θ)·page + t, as (a, b, tx, ty) with a = s·cos θ, b = s·sin θ."""

    a: float
    b: float
    tx: float
    ty: float

    @property
    def scale(self) -> float:
        return float(np.hypot(self.a, self.b))

    @property
    def angle(self) -> float:
        return float(np.arctan2(self.b, self.a))

    def apply(self, xy: Array) -> Array:
        p = np.asarray(xy, dtype=float).reshape(-1, 2)
        return np.column_stack([self.a * p[:, 0] - self.b * p[:, 1] + self.tx,
                                self.b * p[:, 0] + self.a * p[:, 1] + self.ty])


def similarities(page0: Array, page1: Array, world0: Array, world1: Array) -> Array:
    """Rows (a, b, tx, ty) of the similarities taking two page points onto each pair of map
    points (rows of `world0`, `world1`)."""
    p = complex(page1[0] - page0[0], page1[1] - page0[1])
    z = ((world1[:, 0] - world0[:, 0]) + 1j * (world1[:, 1] - world0[:, 1])) / p
    t = (world0[:, 0] + 1j * world0[:, 1]) - z * complex(page0[0], page0[1])
    return np.column_stack([z.real, z.imag, t.real, t.imag])


@dataclass(frozen=True)
class Placement:
    """The outcome: control points, residuals, which clues agreed and which did not."""

    method: str  # "street labels" or "parcels"
    transform: FittedTransform
    control_points: tuple[ControlPoint, ...]
    matched: tuple[tuple[str, str], ...]  # (clue name, target name) of each control point
    outliers: tuple[tuple[str, str, float], ...]  # (clue, nearest target of its name, metres)
    independent: int  # distinct targets among the control points
    drawings: tuple[str, ...] = ()  # styles of the drawings the control points rest on

    @property
    def rms_m(self) -> float:
        return self.transform.rms


@dataclass(frozen=True)
class Hypotheses:
    """Similarity hypotheses, rows (a, b, tx, ty), and the pair of clues each came from."""

    params: Array
    pairs: np.ndarray  # an id per row: rows of one pair of clues share it

    @classmethod
    def stack(cls, parts: list[tuple[Array, int]]) -> Hypotheses:
        rows = [p for p, _ in parts if len(p)]
        ids = [np.full(len(p), i) for p, i in parts if len(p)]
        return cls(np.vstack(rows) if rows else np.empty((0, 4)),
                   np.concatenate(ids) if ids else np.empty(0, dtype=int))

    def __len__(self) -> int:
        return len(self.params)


def vote(hypotheses: Hypotheses, centre: Array, extent: float,
         keep: int = _VERIFIED) -> list[tuple[Similarity, int]]:
    """The best-supported hypotheses and their support: the number of distinct pairs of clues
    proposing one within a cell of (rotation, scale, where the clues' centre lands). A pair
    along a straight street proposes a whole line of hypotheses; it still counts once. Two
    grids, offset by half a cell, so a cluster on a cell border is not split."""
    if len(hypotheses) == 0:
        return []
    h = hypotheses.params
    angle = np.arctan2(h[:, 1], h[:, 0])
    log_scale = np.log(np.hypot(h[:, 0], h[:, 1]))
    lands = np.column_stack([h[:, 0] * centre[0] - h[:, 1] * centre[1] + h[:, 2],
                             h[:, 1] * centre[0] + h[:, 0] * centre[1] + h[:, 3]])
    best: dict[tuple[int, ...], tuple[int, int]] = {}  # cell → (support, a member row)
    for offset in (0.0, 0.5):
        scale_cell = np.floor(log_scale / _VOTE_SCALE + offset)
        # one length unit per scale cell, so the shift cells of its hypotheses line up
        unit = np.exp((scale_cell + 0.5 - offset) * _VOTE_SCALE) * extent * _VOTE_SHIFT
        cells = np.column_stack([np.floor(angle / _VOTE_ANGLE + offset), scale_cell,
                                 np.floor(lands / unit[:, None] + offset)]).astype(np.int64)
        cells[:, 0] %= round(2 * np.pi / _VOTE_ANGLE)
        _, cell_of = np.unique(cells, axis=0, return_inverse=True)
        cell_of = cell_of.reshape(-1)
        distinct = np.unique(np.column_stack([cell_of, hypotheses.pairs]), axis=0)
        support = np.bincount(distinct[:, 0], minlength=cell_of.max() + 1)
        for cell in np.argsort(-support)[:keep]:
            rows = np.flatnonzero(cell_of == cell)
            key = (round(offset * 2), int(cell))
            best[key] = (int(support[cell]), int(rows[len(rows) // 2]))
    ranked = sorted(best.values(), key=lambda v: -v[0])[:keep]
    return [(Similarity(*(float(x) for x in h[row])), support) for support, row in ranked]


class Problem:
    """Clues and targets, with every (clue, target) pair as flat arrays built once: scoring a
    hypothesis is one vectorised distance computation and a grouped minimum."""

    def __init__(self, method: str, clues: list[Clue], targets: list[Target]) -> None:
        self.method = method
        self.clues = clues
        self.targets = targets
        self.anchors = np.array([c.anchor for c in clues]).reshape(-1, 2)
        self._clue = np.repeat(np.arange(len(clues)), [len(c.targets) for c in clues])
        self._target = np.array([t for c in clues for t in c.targets], dtype=int)
        geoms = np.array([t.anchor for t in targets], dtype=object)
        point_targets = len(geoms) > 0 and bool((shapely.get_type_id(geoms) == 0).all())
        self._points = shapely.get_coordinates(geoms) if point_targets else None
        self._geoms = geoms

    def nearest(self, transform: Similarity | FittedTransform) -> tuple[Array, Array]:
        """Each clue placed by `transform`: distance to its nearest target, and that target."""
        best = np.full(len(self.clues), np.inf)
        which = np.full(len(self.clues), -1)
        if len(self._target) == 0:
            return best, which
        placed = transform.apply(self.anchors)[self._clue]
        if self._points is not None:
            gap = self._points[self._target] - placed
            dist = np.hypot(gap[:, 0], gap[:, 1])
        else:
            dist = shapely.distance(self._geoms[self._target], shapely.points(placed))
        order = np.lexsort((dist, self._clue))
        first = np.ones(len(order), dtype=bool)
        first[1:] = self._clue[order][1:] != self._clue[order][:-1]
        chosen = order[first]
        best[self._clue[chosen]] = dist[chosen]
        which[self._clue[chosen]] = self._target[chosen]
        return best, which

    def _one_per_source(self, dist: Array) -> Array:
        """Of alternative clues of one page feature, all but the nearest are set aside."""
        sources = np.array([c.source for c in self.clues])
        shared = sources >= 0
        if not shared.any():
            return dist
        order = np.lexsort((dist, sources))
        first = np.ones(len(order), dtype=bool)
        first[1:] = sources[order][1:] != sources[order][:-1]
        out = dist.copy()
        out[order[~first & shared[order]]] = np.inf
        return out

    def score(self, transform: Similarity | FittedTransform, tolerance: float
              ) -> tuple[int, float, Array, Array]:
        """Consensus of a transform: distinct target groups within `tolerance` metres; its
        cost, each clue counting its squared distance in tolerances, at most 1 (MSAC: a
        near-miss that gathers one more clue loosely does not beat a close fit); and each
        clue's distance and nearest target."""
        dist, which = self.nearest(transform)
        dist = self._one_per_source(dist)
        inliers = dist <= tolerance
        groups = {self.targets[t].group for t in which[inliers].tolist()}
        cost = float(np.minimum((dist / tolerance) ** 2, 1.0).sum())
        return len(groups), cost, dist, which

    def pairs(self, transform: Similarity | FittedTransform, inliers: np.ndarray,
              which: np.ndarray) -> tuple[Array, Array, Array]:
        """Page points of the inlier clues (anchors and samples), the nearest map points of
        their targets (anchor geometries and outlines) for `transform`, and the normal of the
        target line there ((0, 0) for a point target)."""
        page, geoms = [], []
        for i in inliers.tolist():
            clue, target = self.clues[i], self.targets[int(which[i])]
            page.append(clue.anchor.reshape(1, 2))
            geoms.append(np.array([target.anchor]))
            if len(clue.samples):
                page.append(clue.samples)
                geoms.append(np.full(len(clue.samples), target.outline, dtype=object))
        page_xy = np.vstack(page)
        targets = np.concatenate(geoms)
        placed = shapely.points(transform.apply(page_xy))
        nearest = shapely.get_coordinates(shapely.shortest_line(targets, placed))[0::2]
        return page_xy, nearest, _normals(targets, nearest)


def _normals(lines: np.ndarray, at: Array) -> Array:
    """Unit normals of each line at a point on it; (0, 0) for point geometries."""
    normals = np.zeros_like(at)
    lineal = shapely.get_dimensions(lines) == 1
    if not lineal.any():
        return normals
    geoms, points = lines[lineal], shapely.points(at[lineal])
    where = shapely.line_locate_point(geoms, points)
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(geoms, where + 0.5))
    behind = shapely.get_coordinates(shapely.line_interpolate_point(geoms, where - 0.5))
    tangent = ahead - behind
    length = np.hypot(tangent[:, 0], tangent[:, 1])
    ok = length > 1e-9
    unit = np.zeros_like(tangent)
    unit[ok] = tangent[ok] / length[ok, None]
    normals[lineal] = np.column_stack([-unit[:, 1], unit[:, 0]])
    return normals


def best_hypothesis(problem: Problem, hypotheses: Hypotheses, tolerance_points: float,
                    floor_m: float) -> tuple[Similarity | FittedTransform, int] | None:
    """The voted hypothesis that brings the most independent targets within tolerance
    (metres: `tolerance_points` page points at the hypothesis' scale, at least `floor_m`),
    each first settled by a few rounds of fitting a similarity on its inliers (a hypothesis
    from two clues is only as good as those two)."""
    centre = problem.anchors.mean(axis=0)
    extent = float(np.ptp(problem.anchors, axis=0).max()) or 1.0
    best: tuple[float, int, Similarity | FittedTransform] | None = None
    for hypothesis, support in vote(hypotheses, centre, extent):
        tol = max(floor_m, tolerance_points * hypothesis.scale)
        settled = _settle(problem, hypothesis, 2.0 * tol)
        count, cost, _, _ = problem.score(settled, tol)
        log.debug("hypothesis %.3f m/pt, rotation %.1f°: %d pairs, %d targets, cost %.2f",
                  hypothesis.scale, np.degrees(hypothesis.angle), support, count, cost)
        if count >= 2 and (best is None or cost < best[0]):
            best = (cost, count, settled)
    return None if best is None else (best[2], best[1])


def _settle(problem: Problem, start: Similarity, tolerance: float
            ) -> Similarity | FittedTransform:
    current: Similarity | FittedTransform = start
    for _ in range(_SETTLE_ROUNDS):
        _, _, dist, which = problem.score(current, tolerance)
        inliers = np.flatnonzero(dist <= tolerance)
        if len(inliers) < 3:
            return current
        page, world, normals = problem.pairs(current, inliers, which)
        try:
            current = fit_to_lines("helmert", page, world, normals, "matches")
        except PdfError:
            return current
    return current


def refine(problem: Problem, start: Similarity | FittedTransform, transform: str,
           tolerance_points: float, floor_m: float) -> tuple[FittedTransform, float]:
    """Iterated closest points from `start`: each round, the inlier clues' anchors and samples
    are paired with the nearest points of their targets and `transform` is fitted on those
    pairs; the tolerance narrows to the fit's spread. Returns the fit and the last tolerance."""
    current: Similarity | FittedTransform = start
    tol = max(floor_m, tolerance_points * _scale(start))
    fitted: FittedTransform | None = None
    for _ in range(_ICP_ROUNDS):
        _, _, dist, which = problem.score(current, tol)
        inliers = np.flatnonzero(dist <= tol)
        if len(inliers) < 2:
            break
        page, world, normals = problem.pairs(current, inliers, which)
        name = transform if len(page) >= 2 * MIN_POINTS[transform] else "helmert"
        fitted = fit_to_lines(name, page, world, normals, "control points from matches")
        current = fitted
        tol = max(floor_m, min(tol, 4.0 * float(np.median(fitted.residuals)) + floor_m))
    if fitted is None:
        raise PdfError(f"the {problem.method} do not determine a transform (fewer than two "
                       "agree).")
    return fitted, tol


def _scale(transform: Similarity | FittedTransform) -> float:
    """Metres per page point, on average over directions."""
    if isinstance(transform, Similarity):
        return transform.scale
    o, x, y = transform.apply(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    return float(np.sqrt(abs((x - o)[0] * (y - o)[1] - (x - o)[1] * (y - o)[0])))


def place(problem: Problem, hypotheses: Hypotheses, *, transform: str,
          tolerance_points: float, floor_m: float, min_independent: int, where: str) -> Placement:
    """The control points found from the problem's clues, or a `PdfError` saying why none."""
    method, clues, targets = problem.method, problem.clues, problem.targets
    found = best_hypothesis(problem, hypotheses, tolerance_points, floor_m)
    if found is None or found[1] < 2:
        raise PdfError(f"{where}: no placement by {method}: of {len(hypotheses)} hypotheses "
                       f"from {len(clues)} clues, none brings two independent matches together.")
    fitted, tol = _refine_chosen(problem, found[0], transform, tolerance_points, floor_m)
    transform = fitted.name
    _, _, dist, which = problem.score(fitted, tol)
    inliers = np.flatnonzero(dist <= tol)
    groups = sorted({targets[int(which[i])].group for i in inliers})
    if len(groups) < min_independent:
        raise PdfError(f"{where}: only {len(groups)} independent matches by {method} "
                       f"({', '.join(groups[:6]) or 'none'}); at least {min_independent} are "
                       "needed to trust a placement.")
    page, world, _ = problem.pairs(fitted, inliers, which)
    anchors = np.concatenate([[0], np.cumsum([1 + len(clues[i].samples) for i in inliers])[:-1]])
    points = tuple(ControlPoint(f"m{n}", (float(page[k, 0]), float(page[k, 1])),
                                (float(world[k, 0]), float(world[k, 1])))
                   for n, k in enumerate(anchors.tolist(), start=1))
    final = fit_transform(transform if len(points) >= MIN_POINTS[transform] else "helmert",
                          np.array([p.page_xy for p in points]),
                          np.array([p.map_xy for p in points]), where)
    matched = tuple((clues[i].name, targets[int(which[i])].name) for i in inliers)
    drawings = tuple(sorted({d for i in inliers if (d := clues[i].drawing) is not None}))
    return Placement(method, final, points, matched, _outliers(problem, fitted, inliers),
                     len(groups), drawings)


def _refine_chosen(problem: Problem, start: Similarity | FittedTransform, transform: str,
                   tolerance_points: float, floor_m: float) -> tuple[FittedTransform, float]:
    """`refine` with `transform`, or for "auto" a Helmert transform (a map is a similarity of
    the ground: scale, rotation, shift), unless an affine one fits clearly better with enough
    matches to tell (a map drawn in degrees of longitude and latitude is stretched)."""
    if transform != "auto":
        return refine(problem, start, transform, tolerance_points, floor_m)
    helmert = refine(problem, start, "helmert", tolerance_points, floor_m)
    count, _, _, _ = problem.score(helmert[0], helmert[1])
    if count < _AFFINE_MATCHES:
        return helmert
    affine = refine(problem, helmert[0], "affine", tolerance_points, floor_m)
    better = affine[0].rms < _AFFINE_GAIN * helmert[0].rms
    return affine if better and problem.score(affine[0], affine[1])[0] >= count else helmert


def _outliers(problem: Problem, fitted: FittedTransform, inliers: np.ndarray
              ) -> tuple[tuple[str, str, float], ...]:
    """Clues (one per page feature) that name a target but lie far from it: the nearest."""
    dist, which = problem.nearest(fitted)
    placed = {problem.clues[i].source if problem.clues[i].source >= 0 else -1 - i
              for i in inliers.tolist()}
    nearest: dict[int, int] = {}
    for i, clue in enumerate(problem.clues):
        key = clue.source if clue.source >= 0 else -1 - i
        if key not in placed and which[i] >= 0 and (key not in nearest
                                                    or dist[i] < dist[nearest[key]]):
            nearest[key] = i
    return tuple((problem.clues[i].name, problem.targets[int(which[i])].name, float(dist[i]))
                 for i in sorted(nearest.values()))
