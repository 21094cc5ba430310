"""The shared map page carries data text verbatim: template syntax in a tag value stays text."""

from __future__ import annotations

import json
import re

from maps.page import DATA_ID, Page, render_page, script_json

TEMPLATE_TEXT = "{{ 7 * 7 }} {% if true %}yes{% endif %} {# note #}"


def _data(page: str) -> object:
    found = re.search(rf'<script type="application/json" id="{DATA_ID}">(.*?)</script>', page,
                      re.DOTALL)
    assert found is not None
    return json.loads(found.group(1))


def test_template_syntax_in_data_and_title_is_not_evaluated() -> None:
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": None, "properties": {"name": TEMPLATE_TEXT}}]}
    page = render_page(Page(title=f"t {TEMPLATE_TEXT}", locale="fr", kind="reviewer",
                            config={}, data=data, header_html="<header>h</header>"))
    assert _data(page) == data
    assert "49" not in page.split("<title>")[1].split("</title>")[0]
    assert f"<title>t {TEMPLATE_TEXT}</title>" in page
    assert "<!--sig2osm:" not in page
    assert page.count("<header>h</header>") == 1


def test_non_finite_numbers_become_null_and_markup_is_escaped() -> None:
    value = {"a": [1.5, float("nan")], "b": {"c": float("inf")}, "d": "</script>&"}
    text = script_json(value)
    assert json.loads(text) == {"a": [1.5, None], "b": {"c": None}, "d": "</script>&"}
    assert "<" not in text and "&" not in text
    assert script_json({"x": [1, 2]}) == '{"x":[1,2]}'
