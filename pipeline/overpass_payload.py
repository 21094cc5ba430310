"""An Overpass answer checked element by element before anything uses or caches it.

Recorded answers (`osm.file`) and live ones (`pipeline.overpass`) pass through `check_payload`,
so an answer with a junk element is refused with the element and field named, the same way
from a file and over HTTP, and never enters the cache. What is checked is what the builder
(`osm_data_from_overpass_json`) and the writers rely on: ids and versions that fit OSM's
64-bit and 32-bit integers, coordinates that are finite degrees, tags of text, way nodes and
relation members that are references.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pipeline.kernel.errors import OsmDataError

OSM_TYPES = ("node", "way", "relation")
_MAX_ID = 2**63 - 1  # libosmium's object ids
_MAX_VERSION = 2**31 - 1


def check_payload(payload: Any, what: str) -> dict[str, Any]:
    """`payload` if it is an Overpass answer the pipeline can use, else `OsmDataError` naming
    `what` (the file or server), the element and the field."""
    if not isinstance(payload, dict) or not isinstance(payload.get("elements"), list):
        raise OsmDataError(f"{what}: JSON without an 'elements' list; expected an Overpass API "
                           "answer ([out:json]).")
    for key, kind in (("osm3s", dict), ("remark", str), ("generator", str)):
        if key in payload and not isinstance(payload[key], kind):
            raise OsmDataError(f"{what}: '{key}' is {_shown(payload[key])}; expected "
                               f"{'a mapping' if kind is dict else 'text'}.")
    base = payload.get("osm3s", {}).get("timestamp_osm_base")
    if base is not None and not isinstance(base, str):
        raise OsmDataError(f"{what}: osm3s.timestamp_osm_base is {_shown(base)}; expected text.")
    for index, element in enumerate(payload["elements"]):
        problem = _element_problem(element)
        if problem:
            raise OsmDataError(f"{what}: element {index + 1} ({_label(element)}): {problem}; the "
                               "answer cannot be used.")
    return payload


def _label(element: Any) -> str:
    if isinstance(element, dict) and isinstance(element.get("type"), str):
        return f"{element['type'][:20]}/{_shown(element.get('id'))}"
    return _shown(element)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _element_problem(element: Any) -> str | None:
    if not isinstance(element, dict):
        return "not a JSON object"
    kind = element.get("type")
    if not isinstance(kind, str):
        return f"'type' is {_shown(kind)}; expected node, way or relation"
    problem = _integer_problem(element, "id", -_MAX_ID, _MAX_ID)
    if problem or kind not in OSM_TYPES:
        return problem  # "area" and "count" pseudo-elements: only their id matters
    problem = (("version" in element and _integer_problem(element, "version", 0, _MAX_VERSION))
               or _tags_problem(element.get("tags", {})))
    if problem:
        return problem
    if kind == "node":
        return _point_problem(element, "node")
    if kind == "way":
        return _refs_problem(element.get("nodes", []), "nodes") or _geometry_problem(element)
    return _members_problem(element.get("members", []))


def _integer_problem(element: Mapping[str, Any], key: str, low: int, high: int) -> str | None:
    if key not in element:
        return f"no '{key}'"
    value = element[key]
    if isinstance(value, bool) or not isinstance(value, int):
        return f"'{key}' is {_shown(value)}; expected an integer"
    if not low <= value <= high:
        return f"'{key}' {value} is out of range ({low} to {high})"
    return None


def _tags_problem(tags: Any) -> str | None:
    if not isinstance(tags, dict):
        return f"'tags' is {_shown(tags)}; expected a mapping of text to text"
    for key, value in tags.items():
        if not isinstance(value, str):
            return f"tag {_shown(key)} has the value {_shown(value)}; expected text"
    return None


def _point_problem(point: Any, what: str) -> str | None:
    if not isinstance(point, dict):
        return f"{what} is {_shown(point)}; expected lat and lon"
    for key, limit in (("lat", 90.0), ("lon", 180.0)):
        value = point.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{what} '{key}' is {_shown(value)}; expected a number of degrees"
        if not (math.isfinite(value) and -limit <= value <= limit):
            return f"{what} '{key}' {value!r} is not between -{limit:g} and {limit:g}"
    return None


def _refs_problem(refs: Any, what: str) -> str | None:
    if not isinstance(refs, list):
        return f"'{what}' is {_shown(refs)}; expected a list of ids"
    for ref in refs:
        if isinstance(ref, bool) or not isinstance(ref, int) or not -_MAX_ID <= ref <= _MAX_ID:
            return f"'{what}' holds {_shown(ref)}; expected ids (integers)"
    return None


def _geometry_problem(element: Mapping[str, Any]) -> str | None:
    geometry = element.get("geometry", [])
    if not isinstance(geometry, list):
        return f"'geometry' is {_shown(geometry)}; expected a list of points"
    for point in geometry:
        problem = _point_problem(point, "a point of 'geometry'")
        if problem:
            return problem
    return None


def _members_problem(members: Any) -> str | None:
    if not isinstance(members, list):
        return f"'members' is {_shown(members)}; expected a list"
    for member in members:
        if not isinstance(member, dict) or member.get("type") not in OSM_TYPES:
            return f"member {_shown(member)}: expected a type of node, way or relation"
        problem = (_integer_problem(member, "ref", -_MAX_ID, _MAX_ID)
                   or (None if isinstance(member.get("role", ""), str)
                       else f"member role {_shown(member.get('role'))}: expected text")
                   or _geometry_problem(member))
        if problem:
            return f"member {member['type']}/{_shown(member.get('ref'))}: {problem}"
    return None
