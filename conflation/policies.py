"""Tag merge policies, per key, from a registry that the profile names.

A policy decides what happens to one key when a source feature is matched to an OSM object:

- ``add-if-missing`` (default): the source value is added when OSM lacks the key; when OSM has
  another value, OSM's value is kept and the feature goes to review (invariant 3: a mapper's
  value is never replaced silently, and a difference is shown to a person).
- ``keep-osm``: the source value is added when OSM lacks the key; OSM's value is kept silently.
- ``review-if-different``: like add-if-missing, but the proposal carries the source's value, so a
  reviewer who accepts it replaces OSM's.
- ``authoritative``: the source value replaces OSM's (keys listed in ``match.authoritative``).

No tag is ever removed, except keys listed in ``match.remove`` that the source leaves empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ADD_IF_MISSING = "add-if-missing"
KEEP_OSM = "keep-osm"
REVIEW_IF_DIFFERENT = "review-if-different"
AUTHORITATIVE = "authoritative"

POLICIES: dict[str, str] = {
    ADD_IF_MISSING: "add when OSM lacks the key; a different OSM value is kept and reviewed",
    KEEP_OSM: "add when OSM lacks the key; a different OSM value is kept silently",
    REVIEW_IF_DIFFERENT: "add when missing; a different value is proposed and reviewed",
    AUTHORITATIVE: "the source value replaces OSM's",
}


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


def policy_for(key: str, policies: Mapping[str, str], authoritative: tuple[str, ...] | list[str]) -> str:
    if key in policies:
        return policies[key]
    if key in authoritative:
        return AUTHORITATIVE
    return ADD_IF_MISSING


def merge_tags(
    osm_tags: Mapping[str, str],
    source_tags: Mapping[str, str],
    policies: Mapping[str, str] | None = None,
    authoritative: tuple[str, ...] | list[str] = (),
    removable: tuple[str, ...] | list[str] = (),
) -> TagMerge:
    """Merge `source_tags` into `osm_tags` key by key according to each key's policy."""
    policies = policies or {}
    tags = dict(osm_tags)
    new: dict[str, str] = {}
    changed: dict[str, tuple[str, str]] = {}
    kept: dict[str, tuple[str, str]] = {}
    removed: dict[str, str] = {}
    conflicts: list[str] = []
    for key, value in source_tags.items():
        old = osm_tags.get(key)
        if old is None:
            tags[key] = value
            new[key] = value
            continue
        if old == value:
            continue
        policy = policy_for(key, policies, authoritative)
        if policy == AUTHORITATIVE:
            tags[key] = value
            changed[key] = (old, value)
        elif policy == REVIEW_IF_DIFFERENT:
            tags[key] = value
            changed[key] = (old, value)
            conflicts.append(key)
        else:
            kept[key] = (old, value)
            if policy == ADD_IF_MISSING:
                conflicts.append(key)
    for key in removable:
        if key not in source_tags and key in tags:
            removed[key] = tags.pop(key)
    return TagMerge(tags, new, changed, kept, removed, tuple(conflicts))
