"""Feature attributes from a PDF's logical structure, as GDAL writes them into a GeoPDF.

GDAL's PDF writer (and other GIS exporters) keep each vector feature as a structure element
(`/S /feature`, its id as `/T`) under one element per layer (`/S /Feature`, the layer name as
`/T`), with the feature's fields as user properties (`/A << /O /UserProperties /P [<< /N name
/V value >> …] >>`) and the marked content (`/MCID n`) that draws it on the page. Reading them
back gives each drawing its source attributes (the Grenoble meters keep their HOROD_ID), and
tells which features the page holds but draws nothing for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pypdf
from pypdf.generic import ArrayObject, DictionaryObject

log = logging.getLogger(__name__)

_MAX_DEPTH = 32
_MAX_ELEMENTS = 1_000_000


@dataclass(frozen=True)
class StructFeature:
    """One feature of the logical structure and the marked content that draws it."""

    mcid: int
    name: str | None  # the element's /T (GDAL: the feature id)
    layer: str | None  # the /T of the nearest enclosing element that has one (GDAL: the layer)
    attributes: dict[str, Any] = field(default_factory=dict)


def _text(value: Any) -> str | None:
    return None if value is None else str(value.get_object() if hasattr(value, "get_object")
                                          else value)


def _value(value: Any) -> Any:
    value = value.get_object() if hasattr(value, "get_object") else value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (ArrayObject, list)):
        return ";".join(str(_value(v)) for v in value)
    return str(value)


def _user_properties(element: DictionaryObject) -> dict[str, Any]:
    found: dict[str, Any] = {}
    attributes = element.get("/A")
    attributes = attributes.get_object() if attributes is not None else None
    for block in (attributes if isinstance(attributes, ArrayObject) else [attributes]):
        block = block.get_object() if block is not None else None
        if not isinstance(block, DictionaryObject) or block.get("/O") != "/UserProperties":
            continue
        for prop in block.get("/P") or []:
            prop = prop.get_object()
            if isinstance(prop, DictionaryObject) and prop.get("/N") is not None:
                found[str(prop["/N"])] = _value(prop.get("/V"))
    return found


def page_features(reader: pypdf.PdfReader, page_index: int) -> dict[int, StructFeature]:
    """The structure elements that mark content on the page, by MCID (empty without a
    structure tree). A broken tree is logged and read as far as it goes."""
    root: Any = reader.trailer["/Root"].get_object()
    tree = root.get("/StructTreeRoot") if isinstance(root, DictionaryObject) else None
    if tree is None:
        return {}
    page_ref = reader.pages[page_index].indirect_reference
    found: dict[int, StructFeature] = {}
    stack: list[tuple[Any, str | None, Any, int]] = [(tree.get_object().get("/K"), None, None, 0)]
    seen = 0
    while stack and seen < _MAX_ELEMENTS:
        node, layer, page, depth = stack.pop()
        node = node.get_object() if hasattr(node, "get_object") else node
        seen += 1
        if isinstance(node, ArrayObject) and depth < _MAX_DEPTH:
            stack.extend((kid, layer, page, depth + 1) for kid in reversed(node))
        elif isinstance(node, DictionaryObject) and depth < _MAX_DEPTH:
            _element(node, layer, page, depth, page_ref, found, stack)
    if seen >= _MAX_ELEMENTS:
        log.warning("PDF structure tree: more than %d elements; the rest not read", _MAX_ELEMENTS)
    return found


def _element(node: DictionaryObject, layer: str | None, page: Any, depth: int, page_ref: Any,
             found: dict[int, StructFeature], stack: list[tuple[Any, str | None, Any, int]]
             ) -> None:
    page = node.get("/Pg", page)
    kids: Any = node.get("/K")
    kids = kids.get_object() if hasattr(kids, "get_object") else kids
    marks = [kids] if isinstance(kids, int) else [
        k for k in (kids if isinstance(kids, ArrayObject) else []) if isinstance(k, int)]
    if marks and _same_page(page, page_ref):
        name = _text(node.get("/T"))
        attributes = _user_properties(node)
        for mcid in marks:
            found[int(mcid)] = StructFeature(int(mcid), name, layer, attributes)
    if kids is not None and not isinstance(kids, int):
        stack.append((kids, _text(node.get("/T")) or layer, page, depth + 1))


def _same_page(page: Any, page_ref: Any) -> bool:
    if page is None or page_ref is None:
        return page is None  # no page named: the tree's only page
    return getattr(page, "idnum", None) == getattr(page_ref, "idnum", None)
