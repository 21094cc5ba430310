"""Any Unicode tag key or value either round-trips through the writers and pyosmium, or is
refused with a reason; it is never cut or altered."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point

from exports.osmchange import build_changes, josm_xml, osmchange_xml
from exports.screening import refuse_unwritable
from pipeline.kernel.decisions import CREATE, SKIP, Decision
from pipeline.kernel.tag_rules import MAX_LENGTH, tag_problem
from pipeline.readback import read_change_file as read_objects

# Every code point, surrogates and controls included, and lengths around the API limit.
_TEXT = st.one_of(st.text(st.characters(codec=None), max_size=40),
                  st.text(st.characters(codec=None), min_size=250, max_size=260))


def _written_tags(key: str, value: str, suffix: str) -> dict[str, str] | None:
    decision = Decision("S", CREATE, "", {"amenity": "bench", key: value}, Point(1.5, 47.2))
    screened = refuse_unwritable([decision])[0]
    if screened.decision == SKIP:
        assert screened.reason.startswith("cannot be written to OSM: ")
        return None
    changes = build_changes([screened])
    text = osmchange_xml(changes) if suffix == ".osc" else josm_xml(changes, {"k": "v"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"t{suffix}"
        path.write_bytes(text.encode("utf-8"))
        (obj,) = read_objects(path).values()
    return obj.tags


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.one_of(st.just("name"), _TEXT), value=_TEXT,
       suffix=st.sampled_from([".osc", ".osm"]))
def test_any_tag_round_trips_or_is_refused_with_a_reason(key: str, value: str,
                                                         suffix: str) -> None:
    problem = tag_problem(key, value)
    tags = _written_tags(key, value, suffix)
    if problem is None:
        assert tags == {"amenity": "bench", key: value}
    else:
        assert tags is None
        assert problem  # a reason a person can read
        bad_length = len(key) > MAX_LENGTH or len(value) > MAX_LENGTH
        assert bad_length or not key.strip() or not value.strip() or "U+" in problem
