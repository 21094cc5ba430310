"""The profile as typed, frozen settings: one object, built once from YAML by
`pipeline.profile` and passed to every stage (the conflation reads `match`, the writers
`changeset`, the maps `map`, …). Every key is a field below with its type, default and meaning;
the loader walks these dataclasses, so adding a key is adding a field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_OVERPASS_URL = "https://overpass-api.de/api/interpreter"

TagMatch = dict[str, str | list[str]]


@dataclass(frozen=True)
class SourceConfig:
    """Where the municipal layer comes from and how to read it."""

    id: str  # field holding the stable source id (required)
    path: Path | None = None  # local file: .shp, .zip, .gpkg, .geojson, .json, .csv, .fgb
    url: str | None = None  # download instead of path (zip archives are unpacked)
    layer: str | None = None  # layer name in a multi-layer file (GeoPackage, zip with several .shp)
    crs: str | None = None  # assign or override the CRS, e.g. "EPSG:2154"
    encoding: str | None = None  # text encoding of a .dbf or .csv, e.g. cp1252
    x: str | None = None  # CSV column with longitude / easting (detected when null)
    y: str | None = None  # CSV column with latitude / northing (detected when null)
    delimiter: str | None = None  # CSV delimiter (sniffed when null)
    low_precision: bool | None = None  # send every match to review (null: auto, true for PDF layers)
    producer: str | None = None  # who publishes the data, for attribution
    licence: str | None = None  # the data's licence, e.g. "Licence Ouverte 2.0"
    date: str | None = None  # date of the data, e.g. "2024-03"
    # "file": geometries from the layer; "none": a table without geometry (street names), each
    # row matched to OSM ways by name within match.area (see conflation/attributes.py).
    geometry: str = "file"
    columns: list[str] = field(default_factory=list)  # names for a headerless CSV's columns
    swap_axes: bool = False  # the layer was published with x and y (lon and lat) swapped
    # Features far from the rest of the layer (a point at 0,0, one in another country):
    # "skip" them with their own reason, or "keep" them (a national layer with overseas parts).
    outliers: str = "skip"
    repair_text: bool = True  # repair double-encoded UTF-8 ("VillÃ©giature"), with a warning


@dataclass(frozen=True)
class OsmConfig:
    """Which OSM objects are candidates, and where they are read from."""

    # Tags that make an OSM object "the same kind": "*" any value, a list any of them; a list of
    # such mappings is "any of them" ([{highway: bus_stop}, {amenity: shelter}]).
    match: TagMatch | list[TagMatch]
    # Kinds related to `match` (a park's gardens and playgrounds): an object of such a kind with
    # the feature's name sends it to review instead of a create; it is never modified.
    related: list[TagMatch] = field(default_factory=list)
    file: list[Path] | None = None  # local extract(s); null: Overpass
    diff: list[Path] | None = None  # .osc files applied on top of `file`, in order
    bounds: list[float] | None = None  # [west, south, east, north] when the file declares no area
    overpass_url: str = DEFAULT_OVERPASS_URL
    date: str | None = None  # pin Overpass to a past state, e.g. "2024-01-01T00:00:00Z"
    area: str | None = None  # admin area by relation id ("relation/123" or "123") or by name
    expect_empty: bool = False  # allow a fetch that returns no candidate
    timeout: int = 180  # Overpass [timeout:…] in seconds
    maxsize: int = 536870912  # Overpass [maxsize:…] in bytes
    max_tiles: int = 64  # most Overpass queries (tiles of 0.5°) one fetch may send
    # OSM files drawn as the maps' background (streets, buildings, water); null: the run's own
    # extract (not a recorded Overpass answer, which holds candidates only); []: none.
    context: list[Path] | None = None
    # Without a local extract: ask Overpass once for the background around the layer.
    context_query: bool = False


@dataclass(frozen=True)
class MatchConfig:
    """How source features are matched to OSM objects."""

    distance: float = 30.0  # metres; farther than this is never the same object
    ref: str | None = None  # OSM key carrying the source id
    authoritative: list[str] = field(default_factory=list)  # keys where the source value wins
    policies: dict[str, str] = field(default_factory=dict)  # key -> tag merge policy name
    decisions: Path | None = None  # reviewer decisions file read on the next run
    review_margin: float = 0.1  # two candidates whose scores differ less than this → review
    match_threshold: float = 0.6  # score at or above which a pair is an automatic match
    review_threshold: float = 0.35  # score at or above which a pair is at least a review
    radii: dict[str, float] = field(default_factory=dict)  # per-geometry search radii (metres)
    remove: list[str] = field(default_factory=list)  # keys the source may remove from OSM objects
    # Tags compared as names when scoring; addresses: [addr:housenumber, addr:street].
    labels: list[str] = field(default_factory=lambda: ["name"])
    # [west, south, east, north]: where a geometry-less source's names are looked for among OSM
    # ways (null: the whole area the OSM data covers).
    area: list[float] | None = None
    # Features of the layer within this many metres of each other, of the same kind, are one
    # object listed twice: they go to review together (0: never looked for).
    duplicates: float = 3.0


@dataclass(frozen=True)
class ChangesetConfig:
    """Changeset tags and how the change is split for upload."""

    comment: str = "Import of municipal open data"
    source: str = ""
    hashtags: list[str] = field(default_factory=list)
    url: str | None = None  # the import plan page on the OSM wiki
    chunk_size: int = 1000  # elements per chunk, at most 10 000 (the API limit)
    chunk_layer: Path | None = None  # polygons (quartiers, communes) to split chunks by
    chunk_layer_name: str | None = None  # layer of chunk_layer in a multi-layer file (GeoPackage)
    chunk_field: str | None = None  # field naming each chunk polygon (null: its row number)
    instructions: str | None = None  # MapRoulette task instructions


@dataclass(frozen=True)
class MapConfig:
    """A council map: project layers styled by category, in French by default."""

    title: str = ""
    description: str = ""
    category: str | None = None  # field whose values give the legend entries
    colors: dict[str, str] = field(default_factory=dict)  # legend label (value) -> CSS colour
    popup_fields: list[str] = field(default_factory=list)  # fields shown in popups (empty: all)
    locale: str = "fr"  # language of the maps' text: fr or en
    tiles: bool = True  # show the OSM tile layer (the only request that leaves the machine)
    header: str = ""  # line under the title, e.g. the council's name
    labels: dict[str, str] = field(default_factory=dict)  # category value -> legend label
    symbols: dict[str, str] = field(default_factory=dict)  # legend label -> circle, square, …
    background: Path | None = None  # local layer drawn under the data (shows offline too)
    background_layer: str | None = None  # its layer name in a multi-layer file


@dataclass(frozen=True)
class Profile:
    """A whole profile, as loaded from YAML. Paths are absolute."""

    name: str  # run folder: <out>/<name>/
    source: SourceConfig
    osm: OsmConfig
    tags: dict[str, str]  # proposed tags; "{FIELD}" takes the field's value
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # FIELD -> {source: osm}
    match: MatchConfig = field(default_factory=MatchConfig)
    changeset: ChangesetConfig = field(default_factory=ChangesetConfig)
    map: MapConfig | None = None
    description: str = ""
    path: Path | None = None  # the profile file itself (set by the loader)

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path else Path.cwd()
