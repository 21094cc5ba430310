"""Tag templates: the profile's `tags:` values with `{FIELD}` placeholders, filled per feature.

A placeholder names a field of the layer, optionally with a mark:

- `{FIELD}`: the field's value (after the profile's `values:` map). When it is empty, the *tag*
  is left out and the feature stays usable (a `wheelchair` column filled for half the rows).
- `{FIELD?}`: an optional part: empty, it writes nothing and the tag is written from its other
  parts (`addr:housenumber: "{numero}{rep?}"` gives "12" or "12bis").
- `{FIELD|default}`: `default` when the field is empty (`fee: "{PAYANT|no}"`).
- `{FIELD!}`: required: when it is empty the feature is `skip`, with the field named.

Every tag left out is counted per tag and field, for the log, the report and `check`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

PLAIN, OPTIONAL, DEFAULT, REQUIRED = "plain", "optional", "default", "required"


@dataclass(frozen=True)
class Placeholder:
    field: str
    mode: str = PLAIN
    default: str = ""


@dataclass(frozen=True)
class Template:
    """One tag's template, split into literal text and placeholders."""

    key: str
    parts: tuple[str | Placeholder, ...]

    @property
    def fields(self) -> list[str]:
        return [p.field for p in self.parts if isinstance(p, Placeholder)]

    @property
    def constant(self) -> bool:
        return not self.fields


def parse_placeholder(text: str) -> Placeholder:
    """`FIELD`, `FIELD?`, `FIELD!` or `FIELD|default`."""
    if "|" in text:
        name, default = text.split("|", 1)
        return Placeholder(name.strip(), DEFAULT, default)
    if text.endswith("?"):
        return Placeholder(text[:-1].strip(), OPTIONAL)
    if text.endswith("!"):
        return Placeholder(text[:-1].strip(), REQUIRED)
    return Placeholder(text.strip())


def parse_template(key: str, template: str) -> Template:
    parts: list[str | Placeholder] = []
    position = 0
    for match in PLACEHOLDER.finditer(template):
        if match.start() > position:
            parts.append(template[position:match.start()])
        parts.append(parse_placeholder(match.group(1)))
        position = match.end()
    if position < len(template):
        parts.append(template[position:])
    return Template(key, tuple(parts))


def template_fields(template: str) -> list[str]:
    """The field names a template reads (marks removed)."""
    return [parse_placeholder(m).field for m in PLACEHOLDER.findall(template)]


@dataclass(frozen=True)
class Rendered:
    """The tags of one feature, and what could not be filled."""

    tags: dict[str, str]
    left_out: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (tag, empty fields)
    missing_required: tuple[tuple[str, str], ...] = ()  # (tag, field)


@dataclass
class TagTemplates:
    """The profile's templates, parsed once; `render` fills them for one feature."""

    templates: tuple[Template, ...]
    values: Mapping[str, Mapping[str, str]]
    left_out: Counter[tuple[str, tuple[str, ...]]] = field(default_factory=Counter)

    @classmethod
    def from_profile(cls, tags: Mapping[str, str],
                     values: Mapping[str, Mapping[str, str]]) -> TagTemplates:
        return cls(tuple(parse_template(k, v) for k, v in tags.items()), values)

    def render(self, attributes: Mapping[str, Any]) -> Rendered:
        tags: dict[str, str] = {}
        left_out: list[tuple[str, tuple[str, ...]]] = []
        required: list[tuple[str, str]] = []
        for template in self.templates:
            value, empty, must = self._fill(template, attributes)
            required.extend((template.key, name) for name in must)
            if value:
                tags[template.key] = value
            elif not template.constant:
                left_out.append((template.key, tuple(empty)))
        if not required:
            self.left_out.update(left_out)
        return Rendered(tags, tuple(left_out), tuple(required))

    def _fill(self, template: Template, attributes: Mapping[str, Any]
              ) -> tuple[str, list[str], list[str]]:
        """The value ("" when the tag is left out), the empty fields, the empty required ones."""
        text: list[str] = []
        empty: list[str] = []
        must: list[str] = []
        for part in template.parts:
            if isinstance(part, str):
                text.append(part)
                continue
            value = field_text(attributes.get(part.field))
            value = self.values.get(part.field, {}).get(value, value)
            if not value:
                if part.mode == DEFAULT:
                    value = part.default
                elif part.mode != OPTIONAL:
                    empty.append(part.field)
                    if part.mode == REQUIRED:
                        must.append(part.field)
            text.append(value)
        if empty:
            return "", empty, must
        return "".join(text).strip(), [], must

    def summary(self) -> dict[str, dict[str, Any]]:
        """Tag -> how many usable features lost it, and the empty fields that caused it."""
        result: dict[str, dict[str, Any]] = {}
        for (key, fields), count in sorted(self.left_out.items()):
            entry = result.setdefault(key, {"features": 0, "fields": []})
            entry["features"] += count
            entry["fields"] = sorted({*entry["fields"], *fields})
        return result


def field_text(value: Any) -> str:
    """A field value as tag text: 574.0 is "574", None is ""."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()
