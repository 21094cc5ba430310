"""Text that GDAL cannot read intact from a GeoJSON file, found in the file itself.

GDAL reads strings as C strings: a NUL escaped in a GeoJSON value (`"Rue\\u0000Nul"`) ends the
value there (`Rue`), and a lone surrogate (`"\\ud800"`) or a byte that is not UTF-8 becomes
U+FFFD. Such a value would go into OSM altered without anyone knowing. When the file holds any
of these, it is read again with Python's JSON parser (which keeps them) to say which feature
and which field hold what; ingest then refuses those features (`skip`, with the reason).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pipeline.kernel.reasons import Reason, reason

# A NUL escape, or any surrogate escape (a valid pair is checked after parsing).
_SUSPECT = re.compile(rb"\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_ALTERED = re.compile("[\x00\ud800-\udfff]")


def altered_values(path: Path) -> dict[int, tuple[str, Reason]]:
    """Feature index -> (field, what is wrong) for the features of the GeoJSON `path` holding
    a value GDAL would alter; empty for a clean file (the usual case, seen at once)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        if not _SUSPECT.search(raw):
            return {}
    except UnicodeDecodeError:  # bytes that are not UTF-8: kept as lone surrogates below
        text = raw.decode("utf-8", "surrogateescape")
    try:
        collection = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return {}  # GDAL read it somehow; nothing more can be said
    features = collection.get("features") if isinstance(collection, dict) else None
    found: dict[int, tuple[str, Reason]] = {}
    for index, feature in enumerate(features if isinstance(features, list) else []):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        for field, value in (properties.items() if isinstance(properties, dict) else ()):
            problem = _problem(value)
            if problem:
                found[index] = (str(field), problem)
                break
    return found


def _problem(value: Any) -> Reason | None:
    if not isinstance(value, str):
        return None
    bad = _ALTERED.search(value)
    if bad is None:
        return None
    code = ord(bad.group())
    what = (reason("nul") if code == 0 else
            reason("not_utf8_byte", byte=f"{code - 0xDC00:02X}") if 0xDC80 <= code <= 0xDCFF else
            reason("lone_surrogate", char=f"{code:04X}"))
    return reason("not_intact", what=what, position=bad.start())
