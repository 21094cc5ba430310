"""The profile: one YAML file per layer, loaded once into the kernel's typed, frozen settings
(`pipeline.kernel.settings.Profile`).

Every key is a field of those dataclasses, with its type, default and meaning; the loader walks
them, so adding a key is adding a field. Errors name the key and its line, and suggest the
nearest known key for a typo; numbers are checked finite and in range, names that become paths
checked, and the names of policies and matching methods come from their registries.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, Union

import yaml

from conflation.matching import METHODS
from conflation.policies import POLICIES
from maps.legend import map_problems
from pipeline.kernel.errors import ProfileError
from pipeline.kernel.settings import Profile


class _Loader:
    """Turns a composed YAML node tree into dataclasses, collecting every problem at once."""

    def __init__(self, file: Path, base: Path) -> None:
        self.file = file
        self.base = base
        self.problems: list[str] = []
        self.lines: dict[str, int] = {}  # key (dotted, as in messages) -> its line

    def fail(self, key: str, node: yaml.Node | None, text: str) -> None:
        where = f"line {node.start_mark.line + 1}" if node is not None else "top level"
        self.problems.append(f"{key} ({where}): {text}")

    def build(self, cls: type, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            self.fail(key or "profile", node, f"expected a mapping of keys, got {_kind(node)}")
            return None
        hints = typing.get_type_hints(cls)
        loader_set = {"path"} if cls is Profile else set()
        known = {f.name for f in fields(cls) if f.name not in loader_set}
        values: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        suggested: set[str] = set()  # a typo already reported need not be reported as missing
        for key_node, value_node in node.value:
            name = str(key_node.value)
            full = f"{key}.{name}" if key else name
            if name not in known:
                near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
                suggested.update(near)
                hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(sorted(known))}"
                self.fail(full, key_node, f"unknown key{hint}")
                continue
            if name in seen:
                self.fail(full, key_node, "key given twice")
            seen[name] = value_node
            self.lines[full] = key_node.start_mark.line + 1
            values[name] = self.convert(hints[name], value_node, full)
        for f in fields(cls):
            if f.name in loader_set or f.name in seen or f.name in suggested:
                continue
            if f.default is MISSING and f.default_factory is MISSING:
                full = f"{key}.{f.name}" if key else f.name
                self.fail(full, node, f"missing required key (expected {_type_name(hints[f.name])})")
        if self.problems:
            return None
        return cls(**values)

    def convert(self, hint: Any, node: yaml.Node, key: str) -> Any:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin in (Union, types.UnionType):
            if _is_null(node) and type(None) in args:
                return None
            options = [a for a in args if a is not type(None)]
            if len(options) == 1:
                return self.convert(options[0], node, key)
            for option in options:  # e.g. str | list[str]: the one whose shape fits
                if _fits(option, node):
                    return self.convert(option, node, key)
            self.fail(key, node, f"expected {_type_name(hint)}, got {_kind(node)}")
            return None
        if is_dataclass(hint):
            return self.build(hint, node, key)  # type: ignore[arg-type]
        if origin is list:
            if _is_null(node):
                return []
            if not isinstance(node, yaml.SequenceNode):
                if args and args[0] is Path and isinstance(node, yaml.ScalarNode):
                    return [self.convert(Path, node, key)]  # one path where a list is allowed
                self.fail(key, node, f"expected a list ({_type_name(hint)}), got {_kind(node)}")
                return []
            return [self.convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(node.value)]
        if origin is dict:
            if _is_null(node):
                return {}
            if not isinstance(node, yaml.MappingNode):
                self.fail(key, node, f"expected a mapping ({_type_name(hint)}), got {_kind(node)}")
                return {}
            self.lines.update({f"{key}.{k.value}": k.start_mark.line + 1 for k, _ in node.value})
            return {
                str(k.value): self.convert(args[1], v, f"{key}.{k.value}") for k, v in node.value
            }
        return self.scalar(hint, node, key)

    def scalar(self, hint: Any, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode) or _is_null(node):
            self.fail(key, node, f"expected {_type_name(hint)}, got {_kind(node)}")
            return None
        try:
            value = yaml.safe_load(yaml.serialize(node))
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.fail(key, node, f"expected {_type_name(hint)}, got {node.value!r} that YAML "
                      f"cannot read as {tag} ({' '.join(str(exc).split())[:120]})")
            return None
        if hint is float and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e3 (no dot) as text
        if hint is bool:
            if isinstance(value, bool):
                return value
        elif hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif hint is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif hint is str:
            # Numbers are accepted where text is expected (a tag value "3", a ref 42).
            if not isinstance(value, (dict, list)) and value is not None:
                return value if isinstance(value, str) else _scalar_text(node)
        elif hint is Path:
            if isinstance(value, str) and value:
                path = Path(value).expanduser()
                return path if path.is_absolute() else (self.base / path).resolve()
        elif hint is Any:
            return value
        self.fail(key, node, f"expected {_type_name(hint)}, got {value!r}")
        return None


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _scalar_text(node: yaml.ScalarNode) -> str:
    return str(node.value)


def _fits(hint: Any, node: yaml.Node) -> bool:
    origin = typing.get_origin(hint)
    if origin is list:
        return isinstance(node, yaml.SequenceNode)
    if origin is dict or is_dataclass(hint):
        return isinstance(node, yaml.MappingNode)
    return isinstance(node, yaml.ScalarNode)


def _kind(node: yaml.Node | None) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if _is_null(node):
        return "null"
    return repr(node.value)


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"a list of {_type_name(args[0])}"
    if origin is dict:
        return f"a mapping of text to {_type_name(args[1])}"
    if is_dataclass(hint):
        return "a mapping"
    names = {str: "text", int: "an integer", float: "a number", bool: "true or false",
             Path: "a file path", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def load_profile(path: Path | str) -> Profile:
    """Read and validate a profile; raises `ProfileError` listing every problem with its line."""
    file = Path(path)
    if not file.is_file():
        raise ProfileError(f"Profile {file}: no such file.")
    try:
        text = file.read_text(encoding="utf-8")
        root = yaml.compose(text)
    except UnicodeDecodeError as exc:
        raise ProfileError(f"Profile {file}: not UTF-8 text ({exc}).") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(f"Profile {file}: malformed YAML{where}: {problem}.") from exc
    if root is None:
        raise ProfileError(f"Profile {file}: the file is empty; expected a mapping with name, "
                           "source, osm and tags.")
    tag_problems = _yaml_tag_problems(root)
    if tag_problems:
        raise ProfileError(f"Profile {file}: {len(tag_problems)} problem(s): "
                           f"{'; '.join(tag_problems)}.")
    loader = _Loader(file, file.resolve().parent)
    profile = loader.build(Profile, root, "")
    problems = loader.problems + (_semantic_problems(profile) + _value_problems(profile, loader.lines)
                                  if profile else [])
    if problems:
        listing = "; ".join(problems)
        raise ProfileError(f"Profile {file}: {len(problems)} problem(s): {listing}.")
    assert profile is not None
    return _with_path(profile, file.resolve())


def _with_path(profile: Profile, path: Path) -> Profile:
    from dataclasses import replace

    return replace(profile, path=path)


def _semantic_problems(profile: Profile) -> list[str]:
    problems = []
    src = profile.source
    if (src.path is None) == (src.url is None):
        problems.append("source: give exactly one of 'path' or 'url'")
    if not profile.osm.match or not all(profile.osm.match if isinstance(profile.osm.match, list)
                                        else [profile.osm.match]):
        problems.append("osm.match: give at least one tag, e.g. {amenity: bench}")
    if profile.source.outliers not in ("skip", "keep"):
        problems.append(f"source.outliers: expected 'skip' or 'keep', got "
                        f"{profile.source.outliers!r}")
    if profile.source.geometry not in METHODS:
        problems.append(f"source.geometry: expected {' or '.join(map(repr, METHODS))} (the "
                        f"matching methods), got {profile.source.geometry!r}")
    if not 1 <= profile.changeset.chunk_size <= 10000:
        problems.append("changeset.chunk_size: expected 1 to 10000 (the OSM API limit)")
    for key, policy in profile.match.policies.items():
        if policy not in POLICIES:
            near = difflib.get_close_matches(policy, sorted(POLICIES), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; known: {', '.join(POLICIES)}"
            problems.append(f"match.policies.{key}: unknown policy '{policy}'{hint}")
    if profile.map is not None:
        problems.extend(map_problems(profile.map))
    return problems


# --- values in range, names that can be folder names, YAML without foreign tags -------------

MAX_DISTANCE_M = 50_000.0  # search radii: beyond 50 km nothing is "the same object"
MAX_NAME_LENGTH = 100  # characters of a run name (a folder name: at most 255 bytes)
# Names that are files of <out>/ or that Windows cannot have as file names.
RESERVED_NAMES = frozenset({"index.html", "con", "prn", "aux", "nul",
                            *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))})
_NAME = re.compile(r"[\w][\w.\- ]*")
_STANDARD_TAGS = frozenset(f"tag:yaml.org,2002:{kind}" for kind in (
    "str", "int", "float", "bool", "null", "map", "seq", "timestamp"))
_MAX_NODES = 100_000  # a profile is a few hundred nodes; aliases of aliases can expand without end


def _yaml_tag_problems(root: yaml.Node) -> list[str]:
    """Tags such as `!!python/name:…` or `!!binary` name no value a profile can hold, nor does
    text with a NUL or a lone surrogate; aliases that expand without end are refused before
    anything walks them."""
    problems: list[str] = []
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    seen = 0
    while stack and len(problems) < 10:
        node, key = stack.pop()
        seen += 1
        if seen > _MAX_NODES:
            return [f"more than {_MAX_NODES} values once YAML aliases are expanded; write the "
                    "values out"]
        where = f"{key or 'profile'} (line {node.start_mark.line + 1})"
        problem = _plain_text_problem(node) if isinstance(node, yaml.ScalarNode) else None
        if problem:
            problems.append(f"{where}: {problem}")
        if node.tag not in _STANDARD_TAGS:
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            problems.append(f"{where}: YAML tag {ascii(shown)[1:-1]!r} is not allowed; write "
                            "the value plainly (text, number, list or mapping)")
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                name = f"{key}.{k.value}" if key else str(k.value)
                stack += [(k, key), (v, name if name.isprintable() else ascii(name)[1:-1])]
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{key}[{i}]") for i, item in enumerate(node.value))
    return problems


def _plain_text_problem(node: yaml.ScalarNode) -> str | None:
    """A NUL or a lone surrogate (written as `\\0` or `\\ud800` in a quoted string) is no
    text a file name, a tag or a report can hold. An escaped surrogate pair is joined into
    its character, as YAML means it."""
    try:
        node.value = node.value.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return f"{ascii(node.value)[:60]} holds a lone surrogate; expected plain text"
    if "\0" in node.value:
        return f"{ascii(node.value)[:60]} holds a NUL character; expected plain text"
    return None


def _value_problems(profile: Profile, lines: dict[str, int]) -> list[str]:
    """Every number finite and in its range, boxes in degrees, the run name a plain folder
    name; each problem names the key and its line."""
    def at(key: str) -> str:
        return f"{key} (line {lines[key]})" if key in lines else key

    m, osm = profile.match, profile.osm
    problems = [f"{at(key)}: {text}" for key, text in [
        ("name", _name_problem(profile.name)),
        ("match.distance", _range_problem(m.distance, "metres", MAX_DISTANCE_M, above=0)),
        ("match.match_threshold", _range_problem(m.match_threshold, "score", 1, at_least=0)),
        ("match.review_threshold", _range_problem(m.review_threshold, "score", 1, at_least=0)),
        ("match.review_margin", _range_problem(m.review_margin, "score", 1, at_least=0)),
        ("osm.timeout", _range_problem(osm.timeout, "seconds", 86_400, at_least=1)),
        ("osm.maxsize", _range_problem(osm.maxsize, "bytes", 2**40, at_least=1)),
        ("osm.max_tiles", _range_problem(osm.max_tiles, "tiles", 100_000, at_least=1)),
        ("match.duplicates", _range_problem(m.duplicates, "metres", 1_000, at_least=0)),
        ("osm.bounds", _box_problem(osm.bounds)),
        ("match.area", _box_problem(m.area)),
        *((f"match.radii.{k}", _range_problem(v, "metres", MAX_DISTANCE_M, above=0))
          for k, v in m.radii.items()),
    ] if text]
    if not problems and m.review_threshold > m.match_threshold:
        problems.append(f"{at('match.review_threshold')}: {m.review_threshold:g} is above "
                        f"match.match_threshold {m.match_threshold:g}; expected at most it")
    return problems


def _range_problem(value: float, unit: str, high: float, *, at_least: float | None = None,
                   above: float | None = None) -> str | None:
    low_ok = (at_least is None or value >= at_least) and (above is None or value > above)
    if math.isfinite(value) and low_ok and value <= high:
        return None
    lower = f"at least {at_least:g}" if at_least is not None else f"greater than {above:g}"
    return f"expected a finite number ({unit}) {lower} and at most {high:g}, got {value!r}"


def _box_problem(box: list[float] | None) -> str | None:
    if box is None:
        return None
    shown = "[" + ", ".join(repr(v) for v in box) + "]"
    expected = "expected [west, south, east, north] in degrees, west < east and south < north"
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        return f"{expected}, got {shown}"
    west, south, east, north = box
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        return f"{expected} (longitudes -180 to 180, latitudes -90 to 90), got {shown}"
    return None


def _name_problem(name: str) -> str | None:
    """The run name becomes the folder <out>/<name>/: one plain file name, on any system."""
    shown = ascii(name) if len(name) <= 60 else ascii(name[:60]) + f"… ({len(name)} characters)"
    if len(name) > MAX_NAME_LENGTH or len(name.encode("utf-8", "surrogatepass")) > 255:
        return f"{shown} is too long; expected at most {MAX_NAME_LENGTH} characters"
    if not _NAME.fullmatch(name) or name.endswith((" ", ".")):
        return (f"{shown} must be a plain folder name: letters, digits, '-', '_', '.' and spaces, "
                "starting with a letter or digit (no '/', control character or NUL)")
    if name.lower() in RESERVED_NAMES or name.split(".")[0].lower() in RESERVED_NAMES - {
            "index.html"}:
        return f"{shown} is a reserved name (a file of the output folder, or of Windows)"
    return None
