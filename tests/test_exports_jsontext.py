"""`dumps_indented` writes the very bytes of `json.dumps(…, ensure_ascii=False, indent=n)`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exports.jsontext import dumps_indented

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                     st.text(st.characters(codec=None), max_size=12))
_KEYS = st.one_of(st.text(st.characters(codec=None), max_size=6), st.integers(), st.booleans(),
                  st.none(), st.floats(allow_nan=False))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES, indent=st.sampled_from([0, 1, 2, 4]))
def test_same_text_as_the_standard_library(value: Any, indent: int) -> None:
    assert dumps_indented(value, indent) == json.dumps(value, ensure_ascii=False, indent=indent)


def test_a_review_feature_shape() -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": (5.7, 45.1)},
               "properties": {"source_id": "é\u2028\"<", "distance_m": float("nan"),
                              "tags": {}, "candidates": [{"osm_id": "node/1", "score": 1e-7}],
                              "osm_ids": [], "nested": [[1, [2, {"a": None}]]]}}
    collection = {"type": "FeatureCollection", "features": [feature, feature]}
    assert dumps_indented(collection, 1) == json.dumps(collection, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("value", [{"a": object()}, [1, {"b": {2j: 1}}], {(1,): 2}, object()])
def test_what_json_refuses_is_refused_alike(value: Any) -> None:
    with pytest.raises(TypeError) as expected:
        json.dumps(value, indent=1)
    with pytest.raises(TypeError) as got:
        dumps_indented(value, 1)
    assert str(got.value) == str(expected.value)
