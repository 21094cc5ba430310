"""Optional-content layers (OCGs) and marked-content ids of each painted path, read from the
page's content streams.

PyMuPDF reports the OCG of a drawing only for some encodings (marked content on the page); GeoPDF
writers such as TerraGo also put `/OC` on form XObjects and interleave `BDC`/`EMC` with `q`/`Q`.
This walker tokenises the content streams (page and forms, recursively), keeps the stack of
marked-content layers and records the innermost layer of every path-painting operator, in the
order MuPDF sees them, so the n-th painting call lines up with PyMuPDF's `seqno`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import pypdf
from pypdf.generic import ArrayObject, DictionaryObject, NameObject

log = logging.getLogger(__name__)

_NAME = rb"/[^\s/\[\]()<>{}%]+"
# Only what matters is matched, in C: strings, comments, hex strings and inline images are
# consumed so their bytes are never read as operators; then marked content, XObjects and the
# painting operators as whole words (with the name operand of `/OC /name BDC` and `/name Do`).
_SCAN = re.compile(
    rb"%[^\r\n]*"
    rb"|\((?:[^()\\]|\\.|\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\))*\)"
    rb"|<(?!<)[0-9A-Fa-f\s]*>"
    rb"|(?<=\s)ID\s.*?\sEI(?=\s|$)"
    rb"|(?:/OC\s*(?P<oc>" + _NAME + rb")\s*|<<(?P<props>[^<>]*)>>\s*)?"
    rb"(?<!" + rb"[^\s\[\]()<>{}/%]" + rb")"
    rb"(?P<op>BDC|BMC|EMC|B\*|b\*|f\*|[SsfFBb])(?![^\s\[\]()<>{}/%])"
    rb"|(?P<xobj>" + _NAME + rb")\s*Do(?![^\s\[\]()<>{}/%])",
    re.S,
)
# Painting operators and how many device calls MuPDF makes for each (fill then stroke for B/b).
_PAINT = {b"S": 1, b"s": 1, b"f": 1, b"F": 1, b"f*": 1, b"B": 2, b"B*": 2, b"b": 2, b"b*": 2}
_MAX_DEPTH = 12


def ocg_name(obj: Any) -> str | None:
    """The display name of an OCG, or of the OCGs an OCMD refers to."""
    obj = obj.get_object() if obj is not None else None
    if not isinstance(obj, DictionaryObject):
        return None
    if obj.get("/Type") == "/OCMD":
        groups = obj.get("/OCGs")
        groups = groups.get_object() if groups is not None else None
        if isinstance(groups, ArrayObject):
            names = [n for n in (ocg_name(g) for g in groups) if n]
            return " + ".join(names) or None
        return ocg_name(groups)
    name = obj.get("/Name")
    return str(name) if name is not None else None


_Mark = tuple[str | None, int | None]  # a marked-content sequence: its OCG name, its MCID
_MCID = re.compile(rb"/MCID\s+(\d+)")


class _Walker:
    def __init__(self) -> None:
        self.calls: list[str | None] = []  # layer of each painting device call, in order
        self.mcids: list[int | None] = []  # marked-content id of each painting device call

    def walk(self, data: bytes, resources: Any, stack: list[_Mark], depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        resources = resources.get_object() if resources is not None else DictionaryObject()
        properties = _sub(resources, "/Properties")
        xobjects = _sub(resources, "/XObject")
        marks = 0  # marked-content sequences opened in this stream
        for match in _SCAN.finditer(data):
            op, xobj = match.group("op"), match.group("xobj")
            if xobj is not None:
                self._form(xobjects.get(_name(xobj)), stack, depth)
            elif op is None:
                continue
            elif op in _PAINT:
                layer = next((s[0] for s in reversed(stack) if s[0] is not None), None)
                mcid = next((s[1] for s in reversed(stack) if s[1] is not None), None)
                self.calls.extend([layer] * _PAINT[op])
                self.mcids.extend([mcid] * _PAINT[op])
            elif op in (b"BDC", b"BMC"):
                stack.append(self._mark(match, properties))
                marks += 1
            elif marks:  # EMC closing a sequence of this stream
                stack.pop()
                marks -= 1

    @staticmethod
    def _mark(match: re.Match[bytes], properties: Any) -> _Mark:
        oc, props = match.group("oc"), match.group("props")
        mcid = _MCID.search(props) if props else None
        return (ocg_name(properties.get(_name(oc))) if oc else None,
                int(mcid.group(1)) if mcid else None)

    def _form(self, ref: Any, stack: list[_Mark], depth: int) -> None:
        form = ref.get_object() if ref is not None else None
        if form is None or form.get("/Subtype") != "/Form":
            return
        layer = ocg_name(form.get("/OC")) if form.get("/OC") is not None else None
        try:
            data = form.get_data()
        except Exception as exc:  # a broken form stream paints nothing MuPDF could report
            log.debug("form XObject unreadable: %s", exc)
            return
        self.walk(data, form.get("/Resources"), [*stack, (layer, None)], depth + 1)


def _sub(resources: Any, key: str) -> Any:
    value = resources.get(key) if isinstance(resources, DictionaryObject) else None
    value = value.get_object() if value is not None else None
    return value if isinstance(value, DictionaryObject) else DictionaryObject()


def _name(token: bytes) -> NameObject:
    return NameObject(token.decode("latin-1"))


@dataclass(frozen=True)
class Painting:
    """What the content streams say of the page's path-painting device calls, in order."""

    layers: list[str | None]  # the OCG name of each call
    mcids: list[int | None]  # the marked-content id of each call (logical structure)


def page_painting(reader: pypdf.PdfReader, page_index: int) -> Painting:
    """The OCG name and marked-content id of every path-painting device call on the page."""
    page = reader.pages[page_index]
    contents = page.get_contents()
    data = contents.get_data() if contents is not None else b""
    walker = _Walker()
    walker.walk(data, page.get("/Resources"), [], 0)
    return Painting(walker.calls, walker.mcids)
