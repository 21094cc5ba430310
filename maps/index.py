"""`<out>/index.html`: every run folder under an output folder, its counts and its files.

A plain HTML page with no script: it lists the runs (folders holding a `report.json`) in name
order, with the decision counts from the report and a link to each map and file of the run.
The runner gathers the runs (`IndexedRun`) and writes the page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from maps.i18n import texts

# Files listed first, in this order, with a description; other files follow by name.
KNOWN_FILES = ("map.html", "council-map.html", "council-map.geojson", "map.umap", "changes.osc",
               "changes.osm", "review.geojson", "maproulette.geojsonl", "report.json")
DECISIONS = ("create", "modify", "review", "missing", "unchanged", "skip")

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}ul{margin:0;padding-left:1.1em}
.maps a{font-weight:600}.n{font-variant-numeric:tabular-nums}
"""


@dataclass(frozen=True)
class IndexedRun:
    folder: str  # the run folder's name under <out>
    report: Mapping[str, Any]  # its report.json ({} when unreadable)
    files: Sequence[str]  # the files it holds


def index_html(runs: Sequence[IndexedRun], locale: str = "fr") -> str:
    """The index page of an output folder, listing `runs` in order."""
    t = texts(locale)
    rows = "".join(_row(run, t) for run in runs)
    body = (f"<table><tr><th>{_e(t['run'])}</th><th>{_e(t['counts'])}</th>"
            f"<th>{_e(t['files'])}</th></tr>{rows}</table>" if runs
            else f"<p>{_e(t['no_runs'])}</p>")
    return (f'<!DOCTYPE html>\n<html lang="{_e(locale)}">\n<head><meta charset="utf-8">'
            f"<title>{_e(t['index_title'])}</title><style>{_STYLE}</style></head>\n"
            f"<body><h1>{_e(t['index_title'])}</h1>\n{body}\n</body>\n</html>\n")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _row(run: IndexedRun, t: Mapping[str, str]) -> str:
    name = run.report.get("name") or run.folder
    counts = run.report.get("counts") or {}
    listed = "".join(f"<li>{_e(t.get(k, k))}{_e(t['colon'])}<span class=n>{_e(n)}</span></li>"
                     for k, n in _ordered(counts))
    return (f"<tr><td>{_e(name)}</td><td><ul>{listed}</ul></td>"
            f"<td>{_files(run, t)}</td></tr>")


def _ordered(counts: Mapping[str, Any]) -> list[tuple[str, Any]]:
    known = [(k, counts[k]) for k in DECISIONS if k in counts]
    return known + sorted((k, v) for k, v in counts.items() if k not in DECISIONS)


def _files(run: IndexedRun, t: Mapping[str, str]) -> str:
    present = {name for name in run.files if not name.startswith(".")}
    names = [n for n in KNOWN_FILES if n in present] + sorted(present - set(KNOWN_FILES))
    labels = {"map.html": t["reviewer_map"], "council-map.html": t["council_map"]}
    items = []
    for name in names:
        href = _e(quote(f"{run.folder}/{name}"))
        label = f"{_e(labels[name])} ({_e(name)})" if name in labels else _e(name)
        css = ' class="maps"' if name in labels else ""
        items.append(f'<li{css}><a href="{href}">{label}</a></li>')
    return f"<ul>{''.join(items)}</ul>"
