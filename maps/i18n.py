"""User-interface text of the maps, in French (the default) and English."""

from __future__ import annotations

from collections.abc import Mapping

from maps.errors import MapError

TEXTS: Mapping[str, Mapping[str, str]] = {
    "fr": {
        "create": "À créer",
        "modify": "À modifier",
        "unchanged": "Inchangé",
        "review": "À vérifier",
        "skip": "Ignoré",
        "missing": "Disparu de la source",
        "legend_reviewer": "Décisions",
        "legend": "Légende",
        "source_id": "n°",
        "distance": "Distance",
        "colon": " : ",
        "open_osm": "Voir sur openstreetmap.org",
        "open_josm": "Ouvrir dans JOSM",
        "tags": "Attributs OSM (tags)",
        "key": "clé",
        "osm_value": "valeur OSM",
        "proposed_value": "valeur proposée",
        "tag_new": "ajouté",
        "tag_changed": "modifié",
        "tag_kept": "conservé (valeur OSM)",
        "candidates": "Objets OSM candidats",
        "score": "score",
        "no_geometry": "{n} objet(s) sans géométrie ne figurent pas sur la carte.",
        "no_category": "Sans catégorie",
        "features": "Objets",
        "data_by": "Données",
        "licence": "licence",
        "licence_unknown": "licence non précisée",
        "date": "date",
        "basemap": "Fond de carte © contributeurs OpenStreetMap (ODbL)",
        "osm_data": "© contributeurs OpenStreetMap (ODbL)",
        "download": "Télécharger les données (GeoJSON)",
        "umap": "Fichier uMap",
        "print": "Imprimer",
        "reviewer_note": "Carte de relecture : ce que propose l'import, avant de l'ouvrir dans JOSM.",
        "index_title": "Cartes et fichiers produits par sig2osm",
        "run": "Jeu de données",
        "counts": "Décisions",
        "files": "Fichiers",
        "reviewer_map": "carte de relecture",
        "council_map": "carte du conseil de quartier",
        "no_runs": "Aucun résultat dans ce dossier.",
    },
    "en": {
        "create": "To create",
        "modify": "To modify",
        "unchanged": "Unchanged",
        "review": "To review",
        "skip": "Skipped",
        "missing": "Gone from the source",
        "legend_reviewer": "Decisions",
        "legend": "Legend",
        "source_id": "no.",
        "distance": "Distance",
        "colon": ": ",
        "open_osm": "View on openstreetmap.org",
        "open_josm": "Open in JOSM",
        "tags": "OSM tags",
        "key": "key",
        "osm_value": "OSM value",
        "proposed_value": "proposed value",
        "tag_new": "added",
        "tag_changed": "changed",
        "tag_kept": "kept (OSM value)",
        "candidates": "Candidate OSM objects",
        "score": "score",
        "no_geometry": "{n} feature(s) without geometry are not on the map.",
        "no_category": "No category",
        "features": "Features",
        "data_by": "Data",
        "licence": "licence",
        "licence_unknown": "licence not stated",
        "date": "date",
        "basemap": "Base map © OpenStreetMap contributors (ODbL)",
        "osm_data": "© OpenStreetMap contributors (ODbL)",
        "download": "Download the data (GeoJSON)",
        "umap": "uMap file",
        "print": "Print",
        "reviewer_note": "Review map: what the import proposes, before you open it in JOSM.",
        "index_title": "Maps and files made by sig2osm",
        "run": "Dataset",
        "counts": "Decisions",
        "files": "Files",
        "reviewer_map": "review map",
        "council_map": "council map",
        "no_runs": "No result in this folder.",
    },
}

LOCALES = tuple(TEXTS)


def texts(locale: str) -> Mapping[str, str]:
    """The UI strings of a locale; an unknown locale is an error naming the known ones."""
    try:
        return TEXTS[locale]
    except KeyError:
        raise MapError(f"map.locale: unknown locale {locale!r}; expected one of "
                       f"{', '.join(LOCALES)}.") from None
