"""Page-to-map transforms fitted on control points: Helmert, affine, 2nd-order polynomial,
projective. Each fit reports the residual of every point and the RMS error, in map units.

Coordinates are normalised (centred, scaled) before solving so polynomial terms stay well
conditioned with Lambert-93 or UTM coordinates in the millions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.kernel.errors import PdfError

Array = NDArray[np.float64]

# Smallest number of control points that determines each transform.
MIN_POINTS = {"helmert": 2, "affine": 3, "projective": 4, "polynomial": 6}
TRANSFORMS = tuple(MIN_POINTS)


@dataclass(frozen=True)
class _Norm:
    centre: Array
    scale: float

    @classmethod
    def of(cls, xy: Array) -> _Norm:
        centre = xy.mean(axis=0)
        scale = float(np.abs(xy - centre).max()) or 1.0
        return cls(centre, scale)

    def forward(self, xy: Array) -> Array:
        return (xy - self.centre) / self.scale

    def inverse(self, xy: Array) -> Array:
        return xy * self.scale + self.centre


@dataclass(frozen=True)
class FittedTransform:
    """A transform from page coordinates to map coordinates, with its fit quality."""

    name: str
    params: Array
    src_norm: _Norm
    dst_norm: _Norm
    residuals: Array  # distance between fitted and given map position, per control point
    rms: float

    def apply(self, xy: Array) -> Array:
        """Map an (n, 2) array of page coordinates to map coordinates."""
        pts = np.asarray(xy, dtype=float).reshape(-1, 2)
        if len(pts) == 0:
            return pts
        out = _EVAL[self.name](self.params, self.src_norm.forward(pts))
        return self.dst_norm.inverse(out)


def _design_poly(uv: Array, degree: int) -> Array:
    u, v = uv[:, 0], uv[:, 1]
    cols = [np.ones_like(u), u, v]
    if degree == 2:
        cols += [u * u, u * v, v * v]
    return np.column_stack(cols)


def _fit_helmert(uv: Array, xy: Array) -> Array:
    u, v = uv[:, 0], uv[:, 1]
    one, zero = np.ones_like(u), np.zeros_like(u)
    rows = np.vstack([np.column_stack([u, -v, one, zero]), np.column_stack([v, u, zero, one])])
    params, *_ = np.linalg.lstsq(rows, np.concatenate([xy[:, 0], xy[:, 1]]), rcond=None)
    return params


def _eval_helmert(p: Array, uv: Array) -> Array:
    a, b, tx, ty = p
    return np.column_stack([a * uv[:, 0] - b * uv[:, 1] + tx, b * uv[:, 0] + a * uv[:, 1] + ty])


def _fitter(degree: int) -> Callable[[Array, Array], Array]:
    def fit(uv: Array, xy: Array) -> Array:
        params, *_ = np.linalg.lstsq(_design_poly(uv, degree), xy, rcond=None)
        return np.asarray(params, dtype=np.float64)

    return fit


def _evaluator(degree: int) -> Callable[[Array, Array], Array]:
    def evaluate(p: Array, uv: Array) -> Array:
        return np.asarray(_design_poly(uv, degree) @ p, dtype=float)

    return evaluate


def _fit_projective(uv: Array, xy: Array) -> Array:
    u, v = uv[:, 0], uv[:, 1]
    x, y = xy[:, 0], xy[:, 1]
    one, zero = np.ones_like(u), np.zeros_like(u)
    rows = np.vstack([
        np.column_stack([u, v, one, zero, zero, zero, -u * x, -v * x]),
        np.column_stack([zero, zero, zero, u, v, one, -u * y, -v * y]),
    ])
    params, *_ = np.linalg.lstsq(rows, np.concatenate([x, y]), rcond=None)
    return params


def _eval_projective(p: Array, uv: Array) -> Array:
    u, v = uv[:, 0], uv[:, 1]
    w = p[6] * u + p[7] * v + 1.0
    return np.column_stack([(p[0] * u + p[1] * v + p[2]) / w, (p[3] * u + p[4] * v + p[5]) / w])


_FIT: dict[str, Callable[[Array, Array], Array]] = {
    "helmert": _fit_helmert, "affine": _fitter(1), "polynomial": _fitter(2),
    "projective": _fit_projective,
}
_EVAL: dict[str, Callable[[Array, Array], Array]] = {
    "helmert": _eval_helmert, "affine": _evaluator(1), "polynomial": _evaluator(2),
    "projective": _eval_projective,
}


def choose_transform(n_points: int) -> str:
    """The transform used when the user names none: Helmert for 2 points, affine from 3 on.

    Affine stays the default with more points: its redundancy is what makes a wrong control
    point stand out by its residual (a polynomial through 6 points fits any 6 points exactly).
    """
    return "helmert" if n_points < 3 else "affine"


def fit_transform(name: str | None, page_xy: Array, map_xy: Array, where: str) -> FittedTransform:
    """Fit `name` (or the default for the number of points) from page to map coordinates."""
    src = np.asarray(page_xy, dtype=float).reshape(-1, 2)
    dst = np.asarray(map_xy, dtype=float).reshape(-1, 2)
    name = name or choose_transform(len(src))
    if name not in MIN_POINTS:
        raise PdfError(f"{where}: unknown transform '{name}'; expected one of "
                       f"{', '.join(TRANSFORMS)}.")
    if len(src) < MIN_POINTS[name]:
        raise PdfError(f"{where}: the {name} transform needs at least {MIN_POINTS[name]} control "
                       f"points, got {len(src)}.")
    src_norm, dst_norm = _Norm.of(src), _Norm.of(dst)
    params = _FIT[name](src_norm.forward(src), dst_norm.forward(dst))
    if not np.all(np.isfinite(params)):
        raise PdfError(f"{where}: the control points do not determine a {name} transform "
                       "(are they aligned or repeated?).")
    fitted = dst_norm.inverse(_EVAL[name](params, src_norm.forward(src)))
    residuals = np.hypot(*(fitted - dst).T)
    rms = float(np.sqrt(np.mean(residuals ** 2)))
    return FittedTransform(name, params, src_norm, dst_norm, residuals, rms)


def fit_to_lines(name: str, page_xy: Array, map_xy: Array, normals: Array,
                 where: str) -> FittedTransform:
    """Fit a Helmert or affine transform so that each page point lands on a line through its
    map point: across the line (along `normals[i]`) only, or on the point itself where the
    normal is (0, 0). A point on a street is then free to slide along it, which is what a
    street label tells (not where along the street it is). Residuals are the distances left
    across the lines (or to the points)."""
    if name not in ("helmert", "affine"):
        return fit_transform(name, page_xy, map_xy, where)
    src = np.asarray(page_xy, dtype=float).reshape(-1, 2)
    dst = np.asarray(map_xy, dtype=float).reshape(-1, 2)
    n = np.asarray(normals, dtype=float).reshape(-1, 2)
    free = np.hypot(n[:, 0], n[:, 1]) < 0.5  # point-to-point rows: both axes
    rows_n = np.vstack([n[~free], np.tile([1.0, 0.0], (int(free.sum()), 1)),
                        np.tile([0.0, 1.0], (int(free.sum()), 1))])
    rows_src = np.vstack([src[~free], src[free], src[free]])
    rows_dst = np.vstack([dst[~free], dst[free], dst[free]])
    src_norm, dst_norm = _Norm.of(src), _Norm.of(dst)
    u, x = src_norm.forward(rows_src), dst_norm.forward(rows_dst)
    nx, ny = rows_n[:, 0], rows_n[:, 1]
    if name == "helmert":
        design = np.column_stack([nx * u[:, 0] + ny * u[:, 1], ny * u[:, 0] - nx * u[:, 1],
                                  nx, ny])
    else:
        d = _design_poly(u, 1)
        design = np.hstack([nx[:, None] * d, ny[:, None] * d])
    target = nx * x[:, 0] + ny * x[:, 1]
    solved, *_ = np.linalg.lstsq(design, target, rcond=None)
    params = solved if name == "helmert" else solved.reshape(2, 3).T
    if len(target) < MIN_POINTS[name] * 2 or not np.all(np.isfinite(params)):
        raise PdfError(f"{where}: the matches do not determine a {name} transform.")
    fitted = dst_norm.inverse(_EVAL[name](params, src_norm.forward(src)))
    gap = fitted - dst
    residuals = np.where(free, np.hypot(gap[:, 0], gap[:, 1]), np.abs((gap * n).sum(axis=1)))
    rms = float(np.sqrt(np.mean(residuals ** 2)))
    return FittedTransform(name, np.asarray(params, dtype=float), src_norm, dst_norm, residuals,
                           rms)
