"""Tag merge policies, per key, from a registry that the profile names.

A policy decides what happens to one key when a source feature is matched to an OSM object:

- ``add-if-missing`` (default): the source value is added when OSM lacks the key; when OSM has
  another value, OSM's value is kept and the difference is shown to reviewers (`kept`), without
  holding the feature for review (invariant 3: a mapper's value is never replaced silently).
- ``keep-osm``: the source value is added when OSM lacks the key; OSM's value is kept silently.
- ``review-if-different``: the proposal carries the source's value and the feature goes to
  review, so a reviewer who accepts it replaces OSM's.
- ``authoritative``: the source value replaces OSM's (keys listed in ``match.authoritative``).

Values equal after normalising case, accents, spacing, punctuation and common abbreviations
(`Burger King` / `BURGER KING`, `Av. Jean-Jaurès` / `Avenue Jean Jaures`) are not a difference
under any policy: OSM's spelling stays. No tag is ever removed, except keys listed in
``match.remove`` that the source leaves empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from conflation.names import normalise_name

ADD_IF_MISSING = "add-if-missing"
KEEP_OSM = "keep-osm"
REVIEW_IF_DIFFERENT = "review-if-different"
AUTHORITATIVE = "authoritative"

POLICIES: dict[str, str] = {
    ADD_IF_MISSING: "add when OSM lacks the key; a different OSM value is kept and shown",
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

    def kept_text(self, limit: int = 3) -> str:
        """"; OSM's value kept: name 'X' (source 'Y')" for a reason, or "" when none was."""
        if not self.kept:
            return ""
        shown = [f"{k} '{osm}' (source '{src}')" for k, (osm, src) in list(self.kept.items())[:limit]]
        more = f" and {len(self.kept) - limit} more" if len(self.kept) > limit else ""
        return "; OSM's value kept: " + ", ".join(shown) + more


def same_value(a: str, b: str) -> bool:
    """Equal after normalising case, accents, spacing, punctuation and abbreviations."""
    x = normalise_name(a)
    return bool(x) and x == normalise_name(b)


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
        if old == value or same_value(old, value):
            continue
        policy = policy_for(key, policies, authoritative)
        if policy == AUTHORITATIVE:
            tags[key] = value
            changed[key] = (old, value)
        elif policy == REVIEW_IF_DIFFERENT:
            tags[key] = value
            changed[key] = (old, value)
            conflicts.append(key)
        elif policy == ADD_IF_MISSING:
            kept[key] = (old, value)
    for key in removable:
        if key not in source_tags and key in tags:
            removed[key] = tags.pop(key)
    return TagMerge(tags, new, changed, kept, removed, tuple(conflicts))
