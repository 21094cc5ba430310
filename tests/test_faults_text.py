"""Fault injection, text: markup in every value that the import plan shows (from the profile
and from the data), read back by a Markdown parser (with GitHub's autolinks) and a MediaWiki
parser. Before: `[text](javascript:…)` became a link, `}}{{Delete}}[[Category:Spam]]` a
template and a category, and a backtick broke out of a code span."""

from __future__ import annotations

import html
import re

import mwparserfromhell
from markdown_it import MarkdownIt

from exports.import_plan import (
    CODE_OF_CONDUCT,
    CONTRIBUTORS,
    GUIDELINES,
    OUTLINE,
    PlanFacts,
    import_plan_files,
)
from pipeline.kernel.settings import ChangesetConfig, MatchConfig, OsmConfig, Profile, SourceConfig

OURS = {GUIDELINES, CODE_OF_CONDUCT, OUTLINE, CONTRIBUTORS}
HOSTILE = {
    "link": "[click](javascript:alert(1))",
    "template": "}}{{Delete}}[[Category:Spam]]",
    "code": "x` [evil](https://evil.example/a) `y",
    "switches": "__NOTOC__ ~~~~ ''bold'' '''b''' <b>x</b> &amp;",
    "urls": "https://evil.example/b www.evil.example",
    "table": "a | b || c\n|-\n! d",
    "heading": "\n== H ==\n* item\n# one",
}


def _plan() -> dict[str, str]:
    h = HOSTILE
    profile = Profile(
        name="benches", description=h["template"],
        source=SourceConfig(id="ID", producer=h["link"], licence=h["switches"], date=h["urls"],
                            url="https://data.example/x?a=1&b=[2]"),
        osm=OsmConfig(match={"amenity": h["code"]}),
        tags={"amenity": "bench", h["table"]: "{ID}", "note": h["code"]},
        values={"ID": {h["heading"]: h["link"]}},
        match=MatchConfig(ref=h["code"], authoritative=[h["template"]]),
        changeset=ChangesetConfig(hashtags=[h["switches"]], comment=h["link"]))
    facts = PlanFacts(counts={"create": 1}, objects={}, chunks=1, chunk_max_elements=10, tasks=1,
                      changeset_tags={"comment": h["link"], "source": h["code"]},
                      source_info={"driver": h["template"], "crs": h["urls"],
                                   "sha256": h["code"]},
                      osm_origin=h["heading"], osm_meta={"osm_base": h["switches"]})
    return import_plan_files(profile, facts)


def _text(rendered_html: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", rendered_html)).split())


def test_markdown_shows_every_value_and_links_only_to_our_pages() -> None:
    md = MarkdownIt("gfm-like")  # tables, and links found in plain text as GitHub does
    text = _plan()["import-plan.md"]
    tokens = md.parse(text)
    hrefs = {child.attrs["href"] for token in tokens for child in (token.children or [])
             if child.type == "link_open"}
    assert GUIDELINES in hrefs and hrefs <= OURS
    assert not [t for t in tokens if t.type in ("html_block", "html_inline")]
    shown = _text(md.render(text))
    for value in HOSTILE.values():
        assert " ".join(value.split()) in shown, value


def test_mediawiki_shows_every_value_and_links_only_to_our_pages() -> None:
    text = _plan()["import-plan.wiki"]
    code = mwparserfromhell.parse(text)
    assert not code.filter_templates() and not code.filter_wikilinks()
    links = {str(link.url) for link in code.filter_external_links()}
    assert GUIDELINES in links and links <= OURS
    assert {str(tag.tag) for tag in code.filter_tags()} <= {"code", "table", "tr", "td", "th", "li"}
    assert "H" not in {str(h.title).strip() for h in code.filter_headings()}
    assert not re.search(r"^(\* item|# one|== H ==|! d)", text, re.MULTILINE)  # no line of data
    assert "__NOTOC__" not in text and "~~~" not in text and "''" not in text
    shown = " ".join(html.unescape(code.strip_code(normalize=True, collapse=True)).split())
    for value in ("}}{{Delete}}[[Category:Spam]]", "[click](javascript:alert(1))",
                  "https://evil.example/b www.evil.example"):
        assert value in shown, value
