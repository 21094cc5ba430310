"""Indented JSON text, the same bytes as `json.dumps(value, ensure_ascii=False, indent=n)`.

The standard library writes indented JSON in pure Python through nested generators (its C
encoder only knows one separator for every level), which made `review.geojson` one of the
slowest outputs of a run. Here the innermost containers (those holding no container: tags,
coordinates, candidates) go through the C encoder with the separator of their level, and only
the levels above them are walked in Python.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Callable
from itertools import repeat
from typing import Any

_encode_str = json.encoder.encode_basestring  # the C function behind ensure_ascii=False
_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_CONTAINERS = (dict, list, tuple)


def dumps_indented(value: Any, indent: int) -> str:
    """`json.dumps(value, ensure_ascii=False, indent=indent)`, faster for large documents."""
    if not isinstance(value, _CONTAINERS):
        return _scalar(value)
    writer = _Writer(" " * indent)
    writer.container(value, "\n")
    return "".join(writer.out)


class _Writer:
    def __init__(self, step: str) -> None:
        self.step = step
        self.out: list[str] = []
        self.flat: dict[str, Callable[[Any, int], Any]] = {}  # C encoders by separator

    def container(self, value: Any, newline: str) -> None:
        """Appends a dict, list or tuple; `newline` is the line break and indent of its level."""
        if not value:
            self.out.append("{}" if isinstance(value, dict) else "[]")
            return
        inner = newline + self.step
        items = value.values() if isinstance(value, dict) else value
        if _make_encoder is not None and not any(map(isinstance, items, repeat(_CONTAINERS))):
            text = "".join(self._flat_encoder(inner)(value, 0))
            self.out.append(f"{text[0]}{inner}{text[1:-1]}{newline}{text[-1]}")
        elif isinstance(value, dict):
            self._dict(value, newline, inner)
        else:
            self._list(value, newline, inner)

    def _dict(self, value: dict[Any, Any], newline: str, inner: str) -> None:
        out, lead = self.out, "{" + inner
        for key, item in value.items():
            text = _encode_str(key if isinstance(key, str) else _key(key))
            if isinstance(item, str):
                out.append(f"{lead}{text}: {_encode_str(item)}")
            elif isinstance(item, _CONTAINERS):
                out.append(f"{lead}{text}: ")
                self.container(item, inner)
            else:
                out.append(f"{lead}{text}: {_scalar(item)}")
            lead = "," + inner
        out.append(newline + "}")

    def _list(self, value: list[Any] | tuple[Any, ...], newline: str, inner: str) -> None:
        out, lead = self.out, "[" + inner
        for item in value:
            if isinstance(item, str):
                out.append(lead + _encode_str(item))
            elif isinstance(item, _CONTAINERS):
                out.append(lead)
                self.container(item, inner)
            else:
                out.append(lead + _scalar(item))
            lead = "," + inner
        out.append(newline + "]")

    def _flat_encoder(self, inner: str) -> Callable[[Any, int], Any]:
        encoder = self.flat.get(inner)
        if encoder is None:
            assert _make_encoder is not None
            # markers, default, encoder, indent, key and item separators, sort_keys,
            # skipkeys, allow_nan: what json.dumps(ensure_ascii=False) passes, one level deep.
            encoder = _make_encoder(None, _not_serializable, _encode_str, None, ": ",
                                    "," + inner, False, False, True)
            self.flat[inner] = encoder
        return encoder


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _scalar(value: Any) -> str:
    """Strings, None, booleans and numbers, in the standard library's order of tests."""
    if isinstance(value, str):
        return _encode_str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    return str(_not_serializable(value))  # raises


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    """Dictionary keys that are not strings, converted as the standard library does."""
    if isinstance(key, float):
        return _float(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")
