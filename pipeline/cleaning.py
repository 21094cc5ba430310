"""Attribute values as published, made usable: plain JSON-friendly values, lists as text, and
double-encoded UTF-8 repaired (with a count per field, so nothing is changed silently).

Mojibake: text encoded as UTF-8, then read as cp1252 (or latin-1) and encoded again, shows as
`VillÃ©giature` or `dâ€™Aulnay`. Such a value is repaired only when decoding it back gives valid
UTF-8 with fewer mojibake marks; the repairs are counted per field for the log and the report.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Lead bytes of two- and three-byte UTF-8 sequences as they look when read as cp1252/latin-1,
# followed by a continuation byte read the same way.
_MOJIBAKE = re.compile("[ÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîï]"
                       "[\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]")


_HIGH_RUN = re.compile("[\u0080-\u00ff€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]{2,}")


def plain(value: Any) -> Any:
    """An attribute value as a JSON-friendly Python value: no NaN, no numpy or pandas types;
    lists (GeoJSON arrays, GDAL list fields) as `a;b` text, mappings as JSON text."""
    if value is None or type(value) in (str, int, bool):  # most values: nothing to do
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # numpy scalars and arrays
    elif hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple)):
        items = [plain(v) for v in value]
        return ";".join("" if v is None else _scalar_text(v) for v in items)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _scalar_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def repair_mojibake(text: str) -> str | None:
    """The text double-encoded UTF-8 stood for, or None when it is not mojibake. Each run of
    cp1252 characters is decoded on its own, so a value mixing a correct `é` and a broken
    `â€™` ("Allée dâ€™Aulnay") is repaired too."""
    if not _MOJIBAKE.search(text):
        return None
    fixed = _HIGH_RUN.sub(_decoded_run, text)
    return fixed if fixed != text else None


def _decoded_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if not _MOJIBAKE.search(run):
        return run
    for encoding in ("cp1252", "latin-1"):
        try:
            return run.encode(encoding).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return run


@dataclass
class TextRepairs:
    """Repairs made in one layer, per field, with one example each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, tuple[str, str]] = field(default_factory=dict)

    def clean(self, attributes: dict[str, Any]) -> dict[str, Any]:
        for name, value in attributes.items():
            if isinstance(value, str) and not value.isascii():  # ASCII cannot be mojibake
                fixed = repair_mojibake(value)
                if fixed is not None:
                    attributes[name] = fixed
                    self.counts[name] += 1
                    self.examples.setdefault(name, (value, fixed))
        return attributes

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: {"values": count, "example": list(self.examples[name])}
                for name, count in sorted(self.counts.items())}
