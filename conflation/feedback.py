"""Reviewer decisions fed back into the next run (`match.decisions`).

A reviewer's verdict on a source feature, keyed by source id:

- ``accept``: the proposal under review is carried out (a proposed match is made, a proposed
  create is created).
- ``reject``: without an OSM id, the feature is not imported: it becomes ``skip`` with the
  reason "rejected by reviewer on <date>", run after run. With an OSM id (``reject`` +
  ``osm: node/123``), that pairing is forbidden: the feature is matched among the other
  candidates, or created.
- ``node/123`` / ``way/4`` / ``relation/5`` (or ``match`` + ``osm``): the feature is that OSM
  object, whatever the distances and names say.
- ``create``: the feature is a new object, whatever its neighbours.

The file is YAML (``"S12": reject``, or ``"S12": {decision: reject, osm: node/9, date: …}``) or
CSV with a header ``source_id,decision[,osm_id][,date][,note]``. Parsing works on text; reading
the file is the pipeline's job.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.kernel.reasons import Reason, reason

ACCEPT, REJECT, MATCH, CREATE_NEW = "accept", "reject", "match", "create"
ACTIONS = (ACCEPT, REJECT, MATCH, CREATE_NEW)
_OSM_KEY = re.compile(r"^(node|way|relation)/\d+$")


class ReviewerDecisionError(ValueError):
    """A decisions file entry that cannot be understood (caught and re-raised by the pipeline)."""


@dataclass(frozen=True)
class ReviewerDecision:
    source_id: str
    action: str  # accept, reject, match, create
    osm_key: str | None = None  # "node/123": the object forced (match) or ruled out (reject)
    date: str | None = None
    note: str | None = None

    def by(self) -> Reason:
        """'by reviewer on 2024-05-02' or 'by reviewer', for reasons."""
        return reason("by_reviewer_on", date=self.date) if self.date else reason("by_reviewer")


def parse_decisions(text: str, kind: str, origin: str) -> dict[str, ReviewerDecision]:
    """Decisions from the text of a YAML (`kind` 'yaml') or CSV ('csv') file named `origin`."""
    rows = _csv_rows(text) if kind == "csv" else _yaml_rows(text, origin)
    result: dict[str, ReviewerDecision] = {}
    problems: list[str] = []
    for where, source_id, entry in rows:
        try:
            decision = _decision(source_id, entry)
        except ReviewerDecisionError as exc:
            problems.append(f"{where} (source id {source_id!r}): {exc}")
            continue
        if source_id in result:
            problems.append(f"{where}: source id {source_id!r} is decided twice")
        result[source_id] = decision
    if problems:
        raise ReviewerDecisionError(f"{origin}: " + "; ".join(problems))
    return result


def _yaml_rows(text: str, origin: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ReviewerDecisionError(f"{origin}: malformed YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ReviewerDecisionError(f"{origin}: expected a mapping of source id to decision")
    rows: list[tuple[str, str, Mapping[str, Any]]] = []
    for key, value in data.items():
        entry = value if isinstance(value, dict) else {"decision": value}
        rows.append((f"entry {key}", str(key), entry))
    return rows


def _csv_rows(text: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"source_id", "decision"} - set(reader.fieldnames or [])
    if missing:
        raise ReviewerDecisionError(f"CSV header lacks {', '.join(sorted(missing))}; expected "
                                    "source_id,decision[,osm_id][,date][,note]")
    return [(f"line {n}", (row.get("source_id") or "").strip(), row)
            for n, row in enumerate(reader, start=2)]


def _decision(source_id: str, entry: Mapping[str, Any]) -> ReviewerDecision:
    if not source_id:
        raise ReviewerDecisionError("empty source id")
    raw = str(entry.get("decision") or "").strip()
    osm = str(entry.get("osm") or entry.get("osm_id") or "").strip() or None
    date = entry.get("date")
    note = entry.get("note")
    action = raw.lower()
    if _OSM_KEY.match(raw):
        action, osm = MATCH, raw
    if action not in ACTIONS:
        raise ReviewerDecisionError(f"decision {raw!r}: expected accept, reject, create or an OSM "
                                    "id such as node/123")
    if osm is not None and not _OSM_KEY.match(osm):
        raise ReviewerDecisionError(f"OSM id {osm!r}: expected node/…, way/… or relation/…")
    if action == MATCH and osm is None:
        raise ReviewerDecisionError("'match' needs the OSM id (osm: node/123)")
    return ReviewerDecision(source_id, action, osm, str(date) if date else None,
                            str(note) if note else None)
