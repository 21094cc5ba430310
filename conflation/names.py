"""Name similarity: normalised names (case, accents, punctuation, abbreviations) compared with
rapidfuzz.

"Av. Jean-Jaurès", "AVENUE JEAN JAURES" and "av jean jaures" all normalise to
"avenue jean jaures"; a typo still scores high ("avenue jean jaurse" ≈ 0.94).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

# French and English abbreviations as written on signs, in GIS tables and in OSM notes.
# Keys are normalised tokens (lower case, no accents, no trailing dot).
ABBREVIATIONS: dict[str, str] = {
    "av": "avenue", "ave": "avenue", "bd": "boulevard", "bld": "boulevard", "blvd": "boulevard",
    "boul": "boulevard", "r": "rue", "pl": "place", "pte": "porte", "rte": "route",
    "che": "chemin", "ch": "chemin", "chem": "chemin", "imp": "impasse", "all": "allee",
    "sq": "square", "crs": "cours", "fbg": "faubourg", "fg": "faubourg", "qu": "quai",
    "res": "residence", "lot": "lotissement", "sen": "sentier", "pas": "passage",
    "st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes",
    "gal": "general", "gen": "general", "mal": "marechal", "pdt": "president",
    "prof": "professeur", "dr": "docteur", "mgr": "monseigneur", "cdt": "commandant",
    "cne": "capitaine", "lt": "lieutenant", "ndame": "notre dame", "nd": "notre dame",
    "str": "strasse", "rd": "road", "ln": "lane", "sqr": "square", "hwy": "highway",
    "mt": "mount", "ctr": "center", "centre": "center", "dept": "department",
    "univ": "universite", "bibl": "bibliotheque", "pharm": "pharmacie",
    "&": "et", "and": "et", "und": "et",
}
SAME_NAME = 0.95  # similarity of one typo (see `name_similarity`): the same name
_PUNCT = re.compile(r"[^\w&]+")
_DIGITS = re.compile(r"\d+")


@lru_cache(maxsize=200_000)
def normalise_name(name: str) -> str:
    """Lower case, no accents, punctuation as spaces, abbreviations expanded, ß as ss."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("'", " ").replace("’", " ")
    tokens = [t for t in _PUNCT.sub(" ", text).split() if t]
    return " ".join(ABBREVIATIONS.get(t, t) for t in tokens)


def name_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two names after normalisation.

    The best of plain edit similarity and word-order-insensitive similarity, raised to 0.95
    for a single typo (one edit or two letters swapped) and to 0.92 when one name is a
    whole-word part of the other ("Ursenbacher Höhe" / "Wanderparkplatz Ursenbacher Höhe";
    at least five letters: short generic words such as "Café" say little). Different numbers
    ("Parking 1" / "Parking 2", "12 rue X" / "14 rue X") cap it at 0.5: different objects.
    """
    x, y = normalise_name(a), normalise_name(b)
    if not x or not y:
        return 0.0
    if x == y:
        return 1.0
    score = max(fuzz.ratio(x, y), fuzz.token_sort_ratio(x, y)) / 100.0
    short, long_ = sorted((x, y), key=len)
    if len(short) >= 3 and OSA.distance(x, y, score_cutoff=1) <= 1:
        score = max(score, 0.95)
    if len(short.replace(" ", "")) >= 5 and f" {short} " in f" {long_} ":
        score = max(score, 0.92)
    if _DIGITS.findall(x) != _DIGITS.findall(y):
        score = min(score, 0.5)
    return score
