"""What a tag must be to go into an OSM file: the API's limits and what XML 1.0 can carry.

A key or value that breaks a rule is refused with a reason; it is never truncated or cleaned,
because a shortened value is a wrong value that nobody asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipeline.kernel.reasons import Reason, reason

MAX_LENGTH = 255  # the OSM API's limit for keys and values, in Unicode characters

# Characters outside XML 1.0's Char production: C0 controls other than tab, newline and carriage
# return, lone surrogates, U+FFFE and U+FFFF. An XML parser refuses a file holding them, even
# escaped as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text_problem(text: str, what: Reason) -> Reason | None:
    """Why `text` cannot be written as a tag key or value, or None when it can."""
    if not text.strip():
        return reason("text_empty" if not text else "text_blank", what=what)
    if len(text) > MAX_LENGTH:
        return reason("text_long", what=what, length=len(text), max=MAX_LENGTH)
    bad = _NOT_XML.search(text)
    if bad:
        return reason("text_not_xml", what=what, char=f"{ord(bad.group()):04X}",
                      position=bad.start())
    return None


def tag_reason(key: str, value: str) -> Reason | None:
    """Why the tag `key=value` cannot go into a change file, or None when it can."""
    return text_problem(key, reason("what_key")) or text_problem(
        value, reason("what_value", key=_shown(key)))


def tag_problem(key: str, value: str) -> str | None:
    """`tag_reason` in words."""
    problem = tag_reason(key, value)
    return None if problem is None else str(problem)


def tags_problem(tags: Mapping[str, str]) -> Reason | None:
    """The first problem among `tags`, in key order, or None."""
    texts = [*tags, *tags.values()]
    if all(0 < len(t) <= MAX_LENGTH and not t.isspace() for t in texts) and not _NOT_XML.search(
            "".join(texts)):
        return None  # the usual case, seen at once; otherwise find and explain the first problem
    for key in sorted(tags):
        problem = tag_reason(key, tags[key])
        if problem:
            return problem
    return None


def _shown(key: str) -> str:
    """A key as it can be shown in a message, whatever it holds."""
    return ascii(key) if _NOT_XML.search(key) or len(key) > 60 else key
