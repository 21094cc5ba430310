"""Legend of a council map: category labels, their colours and symbols, and checks on them.

Light on purpose (no Folium import): the profile loader calls `map_problems`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from maps.i18n import LOCALES
from pipeline.kernel.settings import MapConfig

SHAPES = ("circle", "square", "triangle", "diamond")
# Okabe–Ito colours first (readable with colour-blindness), then a few more.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442",
           "#000000", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf")
_COLOUR = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,30})$")


@dataclass(frozen=True)
class LegendEntry:
    label: str
    colour: str
    shape: str
    count: int  # features of this category drawn on the map


def map_problems(config: MapConfig) -> list[str]:
    """Problems in a `map:` section, for the profile check (each names its key)."""
    problems = []
    if config.locale not in LOCALES:
        problems.append(f"map.locale: unknown locale {config.locale!r}; expected one of "
                        f"{', '.join(LOCALES)}")
    for key, colour in config.colors.items():
        if not _COLOUR.match(colour):
            problems.append(f"map.colors.{key}: {colour!r} is not a CSS colour (#rrggbb or a name)")
    for key, shape in config.symbols.items():
        if shape not in SHAPES:
            problems.append(f"map.symbols.{key}: unknown symbol {shape!r}; expected one of "
                            f"{', '.join(SHAPES)}")
    return problems


def legend_entries(collection: Mapping[str, Any], config: MapConfig,
                   t: Mapping[str, str]) -> tuple[list[LegendEntry], list[int]]:
    """One entry per category label, and each feature's entry index (-1: not drawn)."""
    features = collection["features"]
    labels = [category_label(f["properties"], config, t) for f in features]
    drawn = Counter(label for label, f in zip(labels, features, strict=True) if f["geometry"])
    listed = [k for k in config.colors if k in drawn]  # the profile's order first
    order = listed + sorted(set(drawn) - set(listed))
    palette = iter(c for c in PALETTE if c not in config.colors.values())
    entries = [LegendEntry(label, config.colors.get(label) or next(palette, "#555555"),
                           config.symbols.get(label, "circle"), drawn[label]) for label in order]
    index = {e.label: i for i, e in enumerate(entries)}
    categories = [index[label] if f["geometry"] else -1
                  for label, f in zip(labels, features, strict=True)]
    return entries, categories


def category_label(props: Mapping[str, Any], config: MapConfig, t: Mapping[str, str]) -> str:
    """The legend label of a feature: its category value, renamed by `map.labels`."""
    if config.category is None:
        return config.title or t["features"]
    value = props.get(config.category)
    if value is None or str(value).strip() == "":
        return t["no_category"]
    text = str(value)
    return config.labels.get(text, text)


def missing_fields(config: MapConfig, present: Collection[str]) -> list[str]:
    """The category and popup fields the layer lacks, as "map.popup_fields[1] 'x'"."""
    wanted = ([("map.category", config.category)] if config.category else []) + [
        (f"map.popup_fields[{i}]", name) for i, name in enumerate(config.popup_fields)]
    return [f"{key} '{name}'" for key, name in wanted if name not in present]
