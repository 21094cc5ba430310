"""Why a decision was taken, as data: a `Reason` is a code and its parameters, rendered into a
sentence by a template of the reader's language.

The conflation, ingest and the export's last check say why with reasons, never with finished
sentences: `review.geojson` carries them (`why`) so the reviewer map renders them in the page's
language (`maps.i18n` holds the French templates; the English ones are here), and the English
text (`Decision.reason`: report, logs, MapRoulette tasks, `check`) is rendered from the same
reasons by `english`.

A template names parameters as `{name}` or `{name:spec}` (`spec`: `.1f`, `.2f`, `.0f`, `,.0f`
or `g`, as Python's format). A parameter is text, a number, a nested reason, a list of them
(joined with ", ", or with the separator of the items' code) or None (nothing). A decision's
reasons are a chain, the outermost first ("low-precision source …, <why it would be created>"):
each reason is joined to the next by its code's joiner ("; " unless said otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


class Reason(NamedTuple):
    code: str
    params: Mapping[str, Any] = {}

    def __str__(self) -> str:
        return render(self, ENGLISH)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "params": {k: _json(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reason:
        return cls(str(data["code"]), {k: _from_json(v) for k, v in data["params"].items()})


def reason(code: str, **params: Any) -> Reason:
    """`Reason(code, params)`, checked against the English templates (a code without one is
    a bug, said at once rather than when a page renders it)."""
    if code not in ENGLISH:
        raise KeyError(f"reason code {code!r} has no English template")
    return Reason(code, params)


def as_reason(value: Reason | str) -> Reason:
    """A reason, or text from elsewhere (a hand-made layer, an older cache) as a `text` reason."""
    return value if isinstance(value, Reason) else Reason("text", {"text": value})


def english(chain: Sequence[Reason]) -> str:
    """The chain of reasons as the one English sentence the report and the logs show."""
    return render_chain(chain, ENGLISH, JOINERS)


def render_chain(chain: Sequence[Reason], templates: Mapping[str, str],
                 joiners: Mapping[str, str]) -> str:
    parts = []
    for i, part in enumerate(chain):
        parts.append(render(part, templates))
        if i < len(chain) - 1:
            parts.append(joiners.get(part.code, "; "))
    return "".join(parts)


_FIELD = re.compile(r"\{(\w+)(?::([^}]*))?\}")


def render(part: Reason, templates: Mapping[str, str]) -> str:
    template = templates[part.code]
    return _FIELD.sub(lambda m: _value(part.params.get(m.group(1)), m.group(2), templates),
                      template)


def _value(value: Any, spec: str | None, templates: Mapping[str, str]) -> str:
    if value is None:
        return ""
    if isinstance(value, Reason):
        return render(value, templates)
    if isinstance(value, (list, tuple)):
        first = value[0] if value else None
        separator = SEPARATORS.get(first.code, ", ") if isinstance(first, Reason) else ", "
        return separator.join(_value(v, None, templates) for v in value)
    if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, Reason):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value.item() if hasattr(value, "item") else value  # numpy numbers as Python's


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"code", "params"}:
        return Reason.from_json(value)
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


# Each code's joiner to the reason that follows it in a chain (default "; ").
JOINERS: Mapping[str, str] = {"low_precision": ", ", "accepted": ": "}

# The separator of a list whose items are reasons of this code (default ", ").
SEPARATORS: Mapping[str, str] = {"conflict": "; ", "way_conflict": "; "}

# The English templates: `Decision.reason` is rendered with these, word for word as the report,
# the logs and the MapRoulette tasks have always said it.
ENGLISH: Mapping[str, str] = {
    # text from elsewhere, shown as it is
    "text": "{text}",
    # small parts of sentences
    "by_reviewer": "by reviewer",
    "by_reviewer_on": "by reviewer on {date}",
    "note": " ({text})",
    "ellipsis": " …",
    "and_more": " and {n} more",
    "another": "another",
    "another_source_feature": "another source feature",
    "do_create": "create",
    "do_modify": "modify",
    "do_unchanged": "unchanged",
    "same_position": "at the very same position",
    "within_gap": "within {gap:.1f} m of each other with the same kind",
    "pair": "{osm_id} at {distance:.1f} m{name}{kind}",
    "pair_name": ", name '{osm}' vs '{source}' (similarity {similarity:.2f})",
    "pair_kind": ", different kind (OSM {osm}; source {source})",
    "kept": "; OSM's value kept: {values}{more}",
    "kept_value": "{key} '{osm}' (source '{source}')",
    "conflict": "{key}: OSM '{osm}', source '{source}'",
    "basis_reviewer": "match decided {by}",
    "basis_ref": "same {key}",
    "basis_score": "score {score:.2f}: {pair}",
    "basis_street_reviewer": "street decided {by}",
    "basis_same_name": "same name",
    "basis_near_name": "near name",
    "precision_profile": "source.low_precision",
    "precision_pdf": "a layer extracted from a PDF map",
    "precision_rounded": "coordinates rounded to {step:.0f} m",
    "alone": "alone",
    "with_others": "with {n} other(s)",
    "nul": "a NUL character",
    "not_utf8_byte": "byte 0x{byte}, which is not UTF-8",
    "lone_surrogate": "a lone surrogate U+{char}",
    "what_key": "key",
    "what_value": "value of {key}",
    "street": "'{name}' ({osm_id}{more})",
    "more_ways": " and {n} more way(s)",
    "street_ways": "'{name}' ({n} OSM way(s): {osm_id}{more}; {basis})",
    "also_streets": "; also {streets}{more}",
    "way_conflict": "{osm_id} {key}: OSM '{osm}', source '{source}'",
    # a source feature that cannot be used (ingest)
    "no_geometry": "no geometry",
    "empty_geometry": "empty geometry",
    "invalid_geometry": "invalid {type} geometry beyond repair",
    "multipoint": "multi-point with {n} distinct locations; expected one point",
    "required_field_empty": "field {field} is empty (required by tag {key})",
    "match_tag_left_out": "tag {key} left out (field {fields} empty), so the feature is not of "
                          "the kind osm.match describes",
    "tag_unwritable": "tag {key}: {problem}",
    "text_empty": "{what} is empty",
    "text_blank": "{what} is only white space",
    "text_long": "{what} has {length} characters, more than the {max} OSM allows",
    "text_not_xml": "{what} holds character U+{char} at position {position}, which XML cannot "
                    "carry",
    "altered_text": "field {field} {problem}; fix the value in the source (it is never cut or "
                    "changed)",
    "not_intact": "holds {what} at position {position}, which GDAL does not read intact",
    "outlier": "outlier: {km:,.0f} km from the rest of the layer ({group}); fix its coordinates, "
               "or set source.outliers: keep",
    # screening and reviewers' verdicts
    "outside_coverage": "outside the area the OSM data covers, so OSM may already have it "
                        "(area: {area})",
    "rejected": "rejected {by}{note}; remove it from match.decisions to propose it again",
    "forced_create": "new object, decided {by}",
    "forced_absent": "matched to {osm_id} {by}, but that object is not among the OSM "
                     "candidates (deleted, retagged or outside the data?)",
    "forced_twice": "matched to {osm_id} {by}, but that object is forced twice (deleted, "
                    "retagged or outside the data?)",
    "accepted": "accepted {by}",
    # matching by place
    "ref_ambiguous": "several OSM objects carry {key}={value}: {osm_ids}",
    "matched_conflict": "matched {osm_id} ({basis}) but values differ: {conflicts}",
    "matched_sets": "matched {osm_id} ({basis}); sets {keys}{kept}",
    "matched_same": "matched {osm_id} ({basis}); OSM already has these tags{kept}",
    "held_by_other": "{osm_id} at {distance:.1f} m fits (score {score:.2f}) but already belongs "
                     "to source feature {owner}: new object or duplicate?",
    "related_same_name": "OSM has {osm_id} ({kind}) named '{name}' at {distance:.1f} m: the "
                         "same object mapped as another kind, or a new one?",
    "source_duplicates": "source features {ids}{ids_more} lie {where}: one object listed twice "
                         "in the source, or a shared placeholder position? (see "
                         "{others}{others_more})",
    "rival_source": "{pair} fits this feature and source feature {source} about equally "
                    "(scores {mine:.2f} and {theirs:.2f})",
    "two_osm_fit": "two OSM objects fit about equally: {pair} (score {score:.2f}) and {other} "
                   "(score {other_score:.2f})",
    "also_wanted": "{pair} (score {score:.2f}) is also wanted by source feature {source} "
                   "(score {other_score:.2f})",
    "uncertain": "uncertain match (score {score:.2f} below {threshold:g}): {pair}",
    "none_within": "no OSM object of this kind within {distance:g} m",
    "taken_by_other": "{pair} fits (score {score:.2f}) but is matched to source feature "
                      "{owner}, which fits it better: new object or duplicate?",
    "closest_taken": "the closest fit, {pair}, is matched to source feature {owner}",
    "no_fit": "no OSM object fits (best: {pair}, score {score:.2f})",
    "low_precision": "low-precision source ({note}): proposed {proposed}",
    "missing_from_source": "{osm_id} carries {key}={values}, which the source no longer has; "
                           "check on the ground before any deletion",
    # matching by name (tables without geometry)
    "no_street_area": "no area to look for street names in: give match.area (or osm.bounds for "
                      "a file without bounds)",
    "no_name": "no {key} to find the street by",
    "create_without_geometry": "a reviewer asked to create it, but a row without geometry "
                               "cannot be created: map the street, then run again",
    "forced_way_absent": "matched to {osm_id} {by}, but that way is not among the named OSM "
                         "ways of the area",
    "no_street": "no OSM street named '{name}' in the area (a row without geometry cannot be "
                 "created: map the street first)",
    "street_groups": "{n} groups of OSM ways named '{name}' lie {gap:.0f} m apart at least: "
                     "{streets}{more}; accept if they are all this street, else answer with a "
                     "way of the right one in match.decisions",
    "rows_same_street": "rows {rows} all name the OSM street {street}: a duplicate row, or a "
                        "street still to map?",
    "closest_street_taken": "the closest, {street} (similarity {similarity:.2f}), is matched to "
                            "row {owner}",
    "no_street_closest_taken": "no OSM street named '{name}' in the area ({closest}); a row "
                               "without geometry cannot be created",
    "street_typo": "no OSM street is named exactly '{name}'; {closest}: a duplicate row with a "
                   "typo?",
    "near_street_name": "no OSM street is named exactly '{name}': closest {street} (similarity "
                        "{similarity:.2f}){also}",
    "street_conflict": "matched {where} but values differ: {conflicts}{more}",
    "street_same": "matched {where}; OSM already has these tags{kept}",
    "street_sets": "matched {where}; sets {keys} on {changed} of {total} way(s){kept}",
    # the export's last check
    "unwritable_create": "cannot be written to OSM: {problem}",
    "unwritable_modify": "cannot be written to OSM as is: {problem}",
    "version_unknown": "the OSM object or its version is unknown",
    "member_version_unknown": "{osm_id}: its version is unknown",
    "no_single_form": "a {type} has no single OSM form; split it in the source",
    "short_line": "a line with fewer than two distinct points",
    "too_many_objects": "needs {count} OSM objects, more than the {max} one changeset may hold",
}
