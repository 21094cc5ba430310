"""Tag merge policies, per key: a registry of functions that the profile names
(`match.policies`, `match.authoritative`) and `check` and the README describe.

A policy decides what happens to one key when a source feature is matched to an OSM object that
has another value for it; a key OSM lacks is always added. Values equal after normalising case,
accents, spacing, punctuation and common abbreviations (`Burger King` / `BURGER KING`,
`Av. Jean-Jaurès` / `Avenue Jean Jaures`) are no difference under any policy: OSM's spelling
stays. No tag is ever removed, except keys listed in `match.remove` that the source leaves empty.
A value set by mappers is replaced only for authoritative keys (invariant 3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum

from conflation.names import normalise_name
from pipeline.kernel.decisions import TagMerge
from pipeline.kernel.settings import MatchConfig


class Outcome(Enum):
    """What happens to a key whose OSM value differs from the source's."""

    KEEP = "keep"  # OSM's value stays, nothing said
    SHOW = "show"  # OSM's value stays, the difference is shown to reviewers
    REPLACE = "replace"  # the source's value replaces OSM's
    PROPOSE = "propose"  # the source's value is proposed; the feature goes to review


Policy = Callable[[str, str], Outcome]  # (OSM's value, the source's value) -> outcome


def add_if_missing(osm: str, source: str) -> Outcome:
    """add when OSM lacks the key; a different OSM value is kept and shown to reviewers"""
    return Outcome.SHOW


def keep_osm(osm: str, source: str) -> Outcome:
    """add when OSM lacks the key; a different OSM value is kept silently"""
    return Outcome.KEEP


def review_if_different(osm: str, source: str) -> Outcome:
    """add when OSM lacks the key; a different value is proposed and the feature reviewed"""
    return Outcome.PROPOSE


def authoritative(osm: str, source: str) -> Outcome:
    """the source's value replaces OSM's (the keys of match.authoritative)"""
    return Outcome.REPLACE


DEFAULT = "add-if-missing"
POLICIES: dict[str, Policy] = {
    DEFAULT: add_if_missing,
    "keep-osm": keep_osm,
    "review-if-different": review_if_different,
    "authoritative": authoritative,
}


def same_value(a: str, b: str) -> bool:
    """Equal after normalising case, accents, spacing, punctuation and abbreviations."""
    x = normalise_name(a)
    return bool(x) and x == normalise_name(b)


def policy_name(key: str, config: MatchConfig) -> str:
    """The policy a key follows: its own (`match.policies`), else `authoritative` for the keys
    of `match.authoritative`, else the default."""
    if key in config.policies:
        return config.policies[key]
    return "authoritative" if key in config.authoritative else DEFAULT


def policy_for(key: str, config: MatchConfig) -> Policy:
    return POLICIES[policy_name(key, config)]


def describe(name: str) -> str:
    """What a policy does, in the words of its function's docstring (shown by `check`)."""
    return (POLICIES[name].__doc__ or "").strip()


NO_POLICY = MatchConfig()  # every key add-if-missing, nothing removable


def merge_tags(osm_tags: Mapping[str, str], source_tags: Mapping[str, str],
               config: MatchConfig = NO_POLICY) -> TagMerge:
    """Merge `source_tags` into `osm_tags` key by key according to each key's policy."""
    tags = dict(osm_tags)
    new: dict[str, str] = {}
    changed: dict[str, tuple[str, str]] = {}
    kept: dict[str, tuple[str, str]] = {}
    removed: dict[str, str] = {}
    conflicts: list[str] = []
    for key, value in source_tags.items():
        old = osm_tags.get(key)
        if old is None:
            tags[key] = new[key] = value
            continue
        if old == value or same_value(old, value):
            continue
        outcome = policy_for(key, config)(old, value)
        if outcome in (Outcome.REPLACE, Outcome.PROPOSE):
            tags[key] = value
            changed[key] = (old, value)
            if outcome is Outcome.PROPOSE:
                conflicts.append(key)
        elif outcome is Outcome.SHOW:
            kept[key] = (old, value)
    for key in config.remove:
        if key not in source_tags and key in tags:
            removed[key] = tags.pop(key)
    return TagMerge(tags, new, changed, kept, removed, tuple(conflicts))
