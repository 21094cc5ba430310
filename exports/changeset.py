"""Changeset tags for the upload: what the import is, where the data comes from, under which
licence, with which tool, and where its import plan is.

osmChange has no place for changeset tags; they go into `changeset-tags.json`, the chunk index,
the import plan, and the JOSM files' <changeset> element, which JOSM offers in its upload dialog
(without `hashtags`, see `josm_changeset_tags`).
"""

from __future__ import annotations

import logging

from pipeline.kernel import __version__
from pipeline.kernel.errors import ExportError
from pipeline.kernel.settings import Profile
from pipeline.kernel.tag_rules import tag_problem

log = logging.getLogger(__name__)


def changeset_tags(profile: Profile) -> dict[str, str]:
    """comment (ending with the hashtags), hashtags, source, created_by, import=yes, url, license.

    `source` is the profile's changeset.source, or else "producer, date" of the source layer;
    `license` is source.licence. Keys without a value are left out (and logged)."""
    cs = profile.changeset
    hashtags = [h if h.startswith("#") else f"#{h}" for h in cs.hashtags]
    missing_tags = [h for h in hashtags if h not in cs.comment.split()]
    comment = " ".join([cs.comment.strip(), *missing_tags]).strip()
    src = profile.source
    source = cs.source.strip() or ", ".join(p for p in (src.producer, src.date) if p)
    tags = {
        "comment": comment,
        "hashtags": ";".join(hashtags),
        "source": source,
        "created_by": f"sig2osm {__version__}",
        "import": "yes",
        "url": cs.url or "",
        "license": src.licence or "",
    }
    absent = [k for k, v in tags.items() if not v]
    if absent:
        log.warning("changeset tags without a value, left out: %s (set changeset.url, "
                    "changeset.source, source.producer/date/licence in the profile)",
                    ", ".join(absent))
    tags = {k: v for k, v in tags.items() if v}
    for key, value in tags.items():
        problem = tag_problem(key, value)
        if problem:
            raise ExportError(f"Profile {profile.path}: changeset tag {key}: {problem}; "
                              "shorten it in the changeset section.")
    return dict(sorted(tags.items()))


def josm_changeset_tags(tags: dict[str, str]) -> dict[str, str]:
    """The tags of a JOSM file's <changeset>: all but `hashtags`, so every JOSM version shows the
    hashtags once. The comment already ends with them. JOSM's upload dialog (18646, Debian's
    version, and later) appends the file's `hashtags` values to the comment whether or not it
    holds them (a doubled "#sig2osm"), and fills the `hashtags` tag itself from the comment;
    versions that know no `hashtags` keep the comment as it is."""
    return {k: v for k, v in tags.items() if k != "hashtags"}
