"""The decision table: one `Decision` per source feature, plus one per `missing` OSM object."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from pipeline.kernel.osm import OsmElement
from pipeline.kernel.reasons import Reason, english, reason

METRES_PER_DEGREE = 111_320.0  # of latitude (and of longitude at the equator)


@dataclass(frozen=True)
class TagMerge:
    """The result of merging source tags into one OSM object's tags."""

    tags: dict[str, str]  # the proposed final tag set
    new: dict[str, str] = field(default_factory=dict)  # keys added
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (old, new)
    kept: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (osm, source)
    removed: dict[str, str] = field(default_factory=dict)  # key -> old value
    conflicts: tuple[str, ...] = ()  # keys whose difference needs a person

    @property
    def changes_anything(self) -> bool:
        return bool(self.new or self.changed or self.removed)

    def kept_reason(self, limit: int = 3) -> Reason | None:
        """"; OSM's value kept: name 'X' (source 'Y')" for a reason, or None when none was."""
        if not self.kept:
            return None
        shown = [reason("kept_value", key=k, osm=osm, source=src)
                 for k, (osm, src) in list(self.kept.items())[:limit]]
        return reason("kept", values=shown, more=and_more(len(self.kept) - limit))


def and_more(n: int) -> Reason | None:
    """" and 3 more" after a list cut short (None when nothing was left out)."""
    return reason("and_more", n=n) if n > 0 else None


CREATE = "create"
MODIFY = "modify"
UNCHANGED = "unchanged"
REVIEW = "review"
SKIP = "skip"
MISSING = "missing"
DECISIONS = (CREATE, MODIFY, UNCHANGED, REVIEW, SKIP, MISSING)


class SourceLike(Protocol):
    """What conflation needs of a source feature (the ingest step's `SourceFeature`)."""

    @property
    def source_id(self) -> str: ...
    @property
    def geometry(self) -> BaseGeometry | None: ...
    @property
    def tags(self) -> dict[str, str]: ...
    @property
    def skip_reason(self) -> Reason | str | None: ...


class Candidate(NamedTuple):
    """An OSM object considered for a source feature (up to five per feature: a named tuple,
    quick to build by the ten thousand)."""

    osm_key: str  # "node/123"
    distance_m: float
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"osm_id": self.osm_key, "distance_m": round(self.distance_m, 2),
                "score": round(self.score, 3)}


@dataclass(frozen=True)
class Decision:
    source_id: str | None
    decision: str
    reason: str
    tags: dict[str, str]  # proposed final tags
    geometry: BaseGeometry | None  # EPSG:4326; the source's, or the OSM object's for `missing`
    osm: OsmElement | None = None
    distance_m: float | None = None
    merge: TagMerge | None = None
    candidates: tuple[Candidate, ...] = ()
    proposed: str | None = None  # for a review: what would be done if accepted (create/modify)
    source_tags: dict[str, str] = field(default_factory=dict)
    # Further OSM objects of the same decision (a street table row matches all the ways of the
    # street) and, in the same order, their proposed final tags. `osm` stays the first one.
    extra_osm: tuple[OsmElement, ...] = ()
    extra_tags: tuple[dict[str, str], ...] = ()
    # `reason` as data, the outermost first (`pipeline.kernel.reasons`): the reviewer map says
    # it in the page's language. Empty for a decision made elsewhere with text only.
    why: tuple[Reason, ...] = ()

    def __post_init__(self) -> None:
        if len(self.extra_osm) != len(self.extra_tags):
            raise ValueError(f"decision for {self.source_id}: {len(self.extra_osm)} extra OSM "
                             f"objects but {len(self.extra_tags)} extra tag sets")

    @property
    def osm_key(self) -> str | None:
        return self.osm.key if self.osm else None

    @property
    def osm_keys(self) -> list[str]:
        """Every OSM object the decision touches: `osm` first, then `extra_osm`."""
        return [e.key for e in ((self.osm,) if self.osm else ()) + self.extra_osm]

    def to_json(self, geometry: dict[str, Any] | None = None,
                osm_geometry: dict[str, Any] | None = None) -> dict[str, Any]:
        """`geometry`, `osm_geometry`: the GeoJSON of the geometry and of the OSM object's,
        when already known (see `geometries_json`)."""
        merge = self.merge
        if geometry is None and self.geometry is not None:
            geometry = mapping(self.geometry)
        return {
            "source_id": self.source_id,
            "decision": self.decision,
            "reason": self.reason,
            "tags": self.tags,
            "geometry": geometry,
            "osm": self.osm.to_json(osm_geometry) if self.osm else None,
            "distance_m": self.distance_m,
            "merge": None if merge is None else {
                "tags": merge.tags, "new": merge.new,
                "changed": {k: list(v) for k, v in merge.changed.items()},
                "kept": {k: list(v) for k, v in merge.kept.items()},
                "removed": merge.removed, "conflicts": list(merge.conflicts)},
            "candidates": [c.to_json() for c in self.candidates],
            "proposed": self.proposed,
            "source_tags": self.source_tags,
            "extra_osm": [e.to_json() for e in self.extra_osm],
            "extra_tags": [dict(t) for t in self.extra_tags],
            "why": [r.to_json() for r in self.why],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        m = data.get("merge")
        merge = None if m is None else TagMerge(
            tags=m["tags"], new=m["new"],
            changed={k: (v[0], v[1]) for k, v in m["changed"].items()},
            kept={k: (v[0], v[1]) for k, v in m["kept"].items()},
            removed=m["removed"], conflicts=tuple(m["conflicts"]))
        return cls(
            source_id=data["source_id"],
            decision=data["decision"],
            reason=data["reason"],
            tags=dict(data["tags"]),
            geometry=shape(data["geometry"]) if data.get("geometry") else None,
            osm=OsmElement.from_json(data["osm"]) if data.get("osm") else None,
            distance_m=data.get("distance_m"),
            merge=merge,
            candidates=tuple(Candidate(c["osm_id"], c["distance_m"], c["score"])
                             for c in data.get("candidates", [])),
            proposed=data.get("proposed"),
            source_tags=dict(data.get("source_tags", {})),
            extra_osm=tuple(OsmElement.from_json(e) for e in data.get("extra_osm", ())),
            extra_tags=tuple(dict(t) for t in data.get("extra_tags", ())),
            why=tuple(Reason.from_json(r) for r in data.get("why", ())),
        )


def because(*chain: Reason) -> dict[str, Any]:
    """The `reason` and `why` fields of a decision said by `chain` (outermost first)."""
    return {"reason": english(chain), "why": chain}


def as_review(decision: Decision, why: Reason) -> Decision:
    """The decision held for review because of `why`; a review already says both."""
    if decision.decision == REVIEW:
        return replace(decision, **because(why, *decision.why))
    return replace(decision, decision=REVIEW, proposed=decision.decision, **because(why))


def geometries_json(geometries: Sequence[BaseGeometry | None]) -> list[dict[str, Any] | None]:
    """`mapping()` of each geometry (None stays None); the plain 2D points, nearly all of a
    run, in one vectorised call rather than a few shapely calls each."""
    array = np.empty(len(geometries), dtype=object)
    array[:] = list(geometries)
    plain = ((shapely.get_type_id(array) == 0) & ~shapely.has_z(array)
             & ~shapely.is_empty(array))
    xs = dict(zip(np.flatnonzero(plain).tolist(), zip(shapely.get_x(array[plain]).tolist(),
                                                      shapely.get_y(array[plain]).tolist(),
                                                      strict=True), strict=True))
    return [None if g is None else
            {"type": "Point", "coordinates": xs[i]} if i in xs else mapping(g)
            for i, g in enumerate(geometries)]



def geojson_bounds(geometries: Iterable[Mapping[str, Any] | None]
                   ) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of GeoJSON geometries, None when none has a point."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for part in c:
                walk(part)

    for geometry in geometries:
        if geometry and "coordinates" in geometry:
            walk(geometry["coordinates"])
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


def grown_bbox(bounds: tuple[float, float, float, float], metres: float
               ) -> tuple[float, float, float, float]:
    """(west, south, east, north) grown by `metres` on every side (degrees of longitude
    measured at the middle latitude), kept within the world."""
    west, south, east, north = bounds
    dlat = metres / METRES_PER_DEGREE
    dlon = dlat / max(math.cos(math.radians((south + north) / 2)), 0.01)
    return (max(west - dlon, -180.0), max(south - dlat, -90.0),
            min(east + dlon, 180.0), min(north + dlat, 90.0))


def decisions_json(decisions: Sequence[Decision]) -> list[dict[str, Any]]:
    """`[d.to_json() for d in decisions]`, faster."""
    geometries = geometries_json([d.geometry for d in decisions])
    osm_geometries = geometries_json([d.osm.geometry if d.osm else None for d in decisions])
    return [d.to_json(g, o) for d, g, o in zip(decisions, geometries, osm_geometries, strict=True)]


def count_decisions(decisions: Iterable[Decision]) -> dict[str, int]:
    counts = Counter(d.decision for d in decisions)
    return {name: counts.get(name, 0) for name in DECISIONS}
