"""The vendored web assets (Leaflet and our own map script), inlined into every page.

A page carries its scripts and styles inside itself, so it opens from a USB stick or an e-mail
attachment with no network; `vendored.json` pins each third-party file's version and sha256.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parent / "assets"
LEAFLET = "leaflet-1.9.4"
# Our map script, in parts that share `window.sig2osmLib`, in this order (map.js starts the pages).
OWN_JS = ("sig2osm/base.js", "sig2osm/context.js", "sig2osm/osm.js", "sig2osm/review.js",
          "sig2osm/map.js")
OWN_CSS = "sig2osm/map.css"

_CSS_URL = re.compile(r"url\((images/[A-Za-z0-9_.-]+)\)")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)


@cache
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ASSETS / "vendored.json").read_text(encoding="utf-8"))
    return data


def _read(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _data_uri(match: re.Match[str]) -> str:
    image = ASSETS / LEAFLET / match.group(1)
    if not image.is_file():
        return "none"  # an image we do not ship is never shown by these maps
    encoded = base64.b64encode(image.read_bytes()).decode("ascii")
    return f"url(data:image/png;base64,{encoded})"


@cache
def inline_css() -> str:
    """Leaflet's stylesheet with its images as data URIs, then ours."""
    leaflet = _CSS_URL.sub(_data_uri, _read(f"{LEAFLET}/leaflet.css"))
    return leaflet + "\n" + _read(OWN_CSS)


@cache
def inline_js() -> str:
    """Leaflet's licence, Leaflet (without its source-map comment, which would point at a
    missing file), then our map script."""
    licence = _read(f"{LEAFLET}/LICENSE")  # BSD-2-Clause: the notice travels with the code
    leaflet = _SOURCE_MAP.sub("", _read(f"{LEAFLET}/leaflet.js"))
    own = "\n".join(_read(name) for name in OWN_JS)
    script = f"/*! {licence} */\n{leaflet}\n{own}"
    if "</script" in script.lower():
        raise AssertionError("a vendored script contains '</script': it cannot be inlined")
    return script


def style_tag() -> str:
    return f"<style>\n{inline_css()}\n</style>"


def script_tag() -> str:
    return f"<script>\n{inline_js()}\n</script>"
