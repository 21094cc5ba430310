"""User-interface text of the maps, in French (the default) and English."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maps.errors import MapError
from pipeline.kernel.reasons import ENGLISH, JOINERS, SEPARATORS

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
        "part": "partie {n} sur {total}",
        "part_short": "partie {n}",
        "part_head": "Partie",
        "parts": "Les parties",
        "overview": "Vue d'ensemble",
        "overview_note": ("{n} objets, trop pour une seule page : la carte de relecture est en "
                          "{parts} parties, une par zone. Cliquez sur une zone pour l'ouvrir ; "
                          "les choix faits dans une partie se retrouvent dans le fichier de "
                          "décisions téléchargé depuis n'importe quelle autre."),
        "open_part": "Ouvrir la partie {n}",
        "index_title": "Cartes et fichiers produits par sig2osm",
        "run": "Jeu de données",
        "counts": "Décisions",
        "files": "Fichiers",
        "reviewer_map": "carte de relecture",
        "council_map": "carte du conseil de quartier",
        "no_runs": "Aucun résultat dans ce dossier.",
        # reviewer map: what OSM has, the pairs, the background
        "osm_objects": "Objets OSM existants",
        "osm_compared": "Objets OSM comparés",
        "links": "Liens source – OSM",
        "coverage": "Zone couverte par les données OSM",
        "background": "Fond : rues, bâtiments, eau (données OSM)",
        "osm_object": "Objet OSM",
        "version": "version",
        "linked_features": "Objets source liés",
        "source_feature": "Objet source",
        "tag_removed": "retiré",
        "proposed_tags": "Attributs qui auraient été proposés",
        "skip_note": "Rien n'est proposé à l'envoi pour cet objet.",
        # reviewing in the page
        "review_panel": "Relecture",
        "progress": "{done} / {total} décidés",
        "include_all": "Inclure les créations et modifications",
        "accept": "Accepter",
        "reject": "Rejeter",
        "match": "C'est cet objet OSM",
        "create_new": "Nouvel objet",
        "undo": "Annuler le choix",
        "next": "Suivant",
        "previous": "Précédent",
        "this_one": "c'est celui-ci",
        "pick_hint": "Cliquez sur l'objet OSM sur la carte (Échap pour annuler).",
        "download_decisions": "Télécharger les décisions",
        "select_area": "Sélectionner une zone",
        "select_hint": "Tracez un rectangle sur la carte.",
        "selected": "{n} sélectionné(s)",
        "accept_all": "Tout accepter",
        "reject_all": "Tout rejeter",
        "category": "Catégorie",
        "choice_accept": "accepté",
        "choice_reject": "rejeté",
        "choice_match": "associé à {osm}",
        "choice_create": "nouvel objet",
        "earlier": "décision d'une relecture antérieure",
        "keys": "Touches : n suivant · p précédent · a accepter · r rejeter · m choisir l'objet "
                "OSM · 1–5 candidat n° · c nouvel objet · u annuler · s zone · Échap",
        "nothing_to_review": "Rien à vérifier.",
        "storage_off": "Les choix ne sont pas gardés dans ce navigateur (stockage local "
                       "indisponible) : téléchargez-les avant de fermer la page.",
        "other_reason": "Autre motif",
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
        "part": "part {n} of {total}",
        "part_short": "part {n}",
        "part_head": "Part",
        "parts": "The parts",
        "overview": "Overview",
        "overview_note": ("{n} features, too many for one page: the review map is in {parts} "
                          "parts, one per area. Click an area to open it; choices made in one "
                          "part are in the decisions file downloaded from any other."),
        "open_part": "Open part {n}",
        "index_title": "Maps and files made by sig2osm",
        "run": "Dataset",
        "counts": "Decisions",
        "files": "Files",
        "reviewer_map": "review map",
        "council_map": "council map",
        "no_runs": "No result in this folder.",
        # reviewer map: what OSM has, the pairs, the background
        "osm_objects": "Existing OSM objects",
        "osm_compared": "Compared OSM objects",
        "links": "Source – OSM links",
        "coverage": "Area the OSM data covers",
        "background": "Background: streets, buildings, water (OSM data)",
        "osm_object": "OSM object",
        "version": "version",
        "linked_features": "Linked source features",
        "source_feature": "Source feature",
        "tag_removed": "removed",
        "proposed_tags": "Tags that would have been proposed",
        "skip_note": "Nothing is proposed for upload for this feature.",
        # reviewing in the page
        "review_panel": "Review",
        "progress": "{done} / {total} decided",
        "include_all": "Include creates and modifies",
        "accept": "Accept",
        "reject": "Reject",
        "match": "This is that OSM object",
        "create_new": "New object",
        "undo": "Undo the choice",
        "next": "Next",
        "previous": "Previous",
        "this_one": "this one",
        "pick_hint": "Click the OSM object on the map (Esc to cancel).",
        "download_decisions": "Download decisions",
        "select_area": "Select an area",
        "select_hint": "Draw a rectangle on the map.",
        "selected": "{n} selected",
        "accept_all": "Accept all",
        "reject_all": "Reject all",
        "category": "Category",
        "choice_accept": "accepted",
        "choice_reject": "rejected",
        "choice_match": "matched to {osm}",
        "choice_create": "new object",
        "earlier": "decided in an earlier review",
        "keys": "Keys: n next · p previous · a accept · r reject · m pick the OSM object · "
                "1–5 candidate no. · c new object · u undo · s area · Esc",
        "nothing_to_review": "Nothing to review.",
        "storage_off": "Choices are not kept in this browser (local storage unavailable): "
                       "download them before closing the page.",
        "other_reason": "Other reason",
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


# --- reasons -------------------------------------------------------------------------------
# Decisions say why as data (`pipeline.kernel.reasons`); a page renders them with the templates
# of its locale. English: the kernel's own (the words of the report); French: below, one per
# code, with the same parameters (a template may leave out one that would be English text).

FRENCH_REASONS: Mapping[str, str] = {
    "text": "{text}",
    "by_reviewer": "par un relecteur",
    "by_reviewer_on": "par un relecteur le {date}",
    "note": " ({text})",
    "ellipsis": " …",
    "and_more": " et {n} autre(s)",
    "another": "non identifié",
    "another_source_feature": "non identifié",
    "do_create": "créer",
    "do_modify": "modifier",
    "do_unchanged": "laisser tel quel",
    "same_position": "exactement à la même position",
    "within_gap": "à moins de {gap:.1f} m les uns des autres, du même type",
    "pair": "{osm_id} à {distance:.1f} m{name}{kind}",
    "pair_name": ", nom « {osm} » contre « {source} » (similarité {similarity:.2f})",
    "pair_kind": ", type différent (OSM {osm} ; source {source})",
    "kept": " ; valeur OSM conservée : {values}{more}",
    "kept_value": "{key} « {osm} » (source « {source} »)",
    "conflict": "{key} : OSM « {osm} », source « {source} »",
    "basis_reviewer": "association décidée {by}",
    "basis_ref": "même {key}",
    "basis_score": "score {score:.2f} : {pair}",
    "basis_street_reviewer": "rue décidée {by}",
    "basis_same_name": "même nom",
    "basis_near_name": "nom proche",
    "precision_profile": "source.low_precision",
    "precision_pdf": "couche extraite d'un plan PDF",
    "precision_rounded": "coordonnées arrondies à {step:.0f} m",
    "alone": "isolé",
    "with_others": "avec {n} autre(s)",
    "nul": "un caractère NUL",
    "not_utf8_byte": "l'octet 0x{byte}, qui n'est pas de l'UTF-8",
    "lone_surrogate": "un demi-caractère isolé U+{char}",
    "what_key": "la clé",
    "what_value": "la valeur de {key}",
    "street": "« {name} » ({osm_id}{more})",
    "more_ways": " et {n} autre(s) voie(s)",
    "street_ways": "« {name} » ({n} voie(s) OSM : {osm_id}{more} ; {basis})",
    "also_streets": " ; aussi {streets}{more}",
    "way_conflict": "{osm_id} {key} : OSM « {osm} », source « {source} »",
    "no_geometry": "pas de géométrie",
    "empty_geometry": "géométrie vide",
    "invalid_geometry": "géométrie {type} invalide et irréparable",
    "multipoint": "multipoint de {n} positions distinctes ; un seul point attendu",
    "required_field_empty": "le champ {field} est vide (requis par l'attribut {key})",
    "match_tag_left_out": "attribut {key} omis (champ {fields} vide) : l'objet n'est plus du "
                          "type que décrit osm.match",
    "tag_unwritable": "attribut {key} : {problem}",
    "text_empty": "{what} est vide",
    "text_blank": "{what} ne contient que des espaces",
    "text_long": "{what} compte {length} caractères, plus que les {max} qu'OSM accepte",
    "text_not_xml": "{what} contient le caractère U+{char} en position {position}, que XML ne "
                    "peut pas porter",
    "altered_text": "le champ {field} {problem} ; corrigez la valeur dans la source (elle n'est "
                    "jamais coupée ni modifiée)",
    "not_intact": "contient {what} en position {position}, que GDAL ne lit pas intact",
    "outlier": "point aberrant : à {km:,.0f} km du reste de la couche ({group}) ; corrigez ses "
               "coordonnées, ou indiquez source.outliers: keep",
    "outside_coverage": "hors de la zone couverte par les données OSM (tracée en pointillés) : "
                        "OSM a peut-être déjà cet objet",
    "rejected": "rejeté {by}{note} ; retirez-le de match.decisions pour le proposer à nouveau",
    "forced_create": "nouvel objet, décidé {by}",
    "forced_absent": "associé à {osm_id} {by}, mais cet objet n'est pas parmi les candidats OSM "
                     "(supprimé, modifié ou hors des données ?)",
    "forced_twice": "associé à {osm_id} {by}, mais cet objet est imposé deux fois (supprimé, "
                    "modifié ou hors des données ?)",
    "accepted": "accepté {by}",
    "ref_ambiguous": "plusieurs objets OSM portent {key}={value} : {osm_ids}",
    "matched_conflict": "associé à {osm_id} ({basis}) mais les valeurs diffèrent : {conflicts}",
    "matched_sets": "associé à {osm_id} ({basis}) ; ajoute ou change {keys}{kept}",
    "matched_same": "associé à {osm_id} ({basis}) ; OSM a déjà ces attributs{kept}",
    "held_by_other": "{osm_id} à {distance:.1f} m correspond (score {score:.2f}) mais appartient "
                     "déjà à l'objet source {owner} : nouvel objet ou doublon ?",
    "related_same_name": "OSM a {osm_id} ({kind}) nommé « {name} » à {distance:.1f} m : le même "
                         "objet cartographié comme un autre type, ou un nouvel objet ?",
    "source_duplicates": "les objets source {ids}{ids_more} sont {where} : un objet listé deux "
                         "fois dans la source, ou une position provisoire partagée ? (voir "
                         "{others}{others_more})",
    "rival_source": "{pair} correspond à cet objet et à l'objet source {source} à peu près "
                    "autant (scores {mine:.2f} et {theirs:.2f})",
    "two_osm_fit": "deux objets OSM correspondent à peu près autant : {pair} (score "
                   "{score:.2f}) et {other} (score {other_score:.2f})",
    "also_wanted": "{pair} (score {score:.2f}) est aussi voulu par l'objet source {source} "
                   "(score {other_score:.2f})",
    "uncertain": "association incertaine (score {score:.2f} sous {threshold:g}) : {pair}",
    "none_within": "aucun objet OSM de ce type à moins de {distance:g} m",
    "taken_by_other": "{pair} correspond (score {score:.2f}) mais est associé à l'objet source "
                      "{owner}, qui lui correspond mieux : nouvel objet ou doublon ?",
    "closest_taken": "le plus proche, {pair}, est associé à l'objet source {owner}",
    "no_fit": "aucun objet OSM ne correspond (meilleur : {pair}, score {score:.2f})",
    "low_precision": "source peu précise ({note}) : proposition « {proposed} »",
    "missing_from_source": "{osm_id} porte {key}={values}, que la source n'a plus ; vérifiez sur "
                           "le terrain avant toute suppression",
    "no_street_area": "aucune zone où chercher les noms de rue : indiquez match.area (ou "
                      "osm.bounds pour un fichier sans limites)",
    "no_name": "pas de {key} pour trouver la rue",
    "create_without_geometry": "un relecteur a demandé de le créer, mais une ligne sans "
                               "géométrie ne peut pas être créée : cartographiez la rue, puis "
                               "relancez",
    "forced_way_absent": "associé à {osm_id} {by}, mais cette voie n'est pas parmi les voies "
                         "OSM nommées de la zone",
    "no_street": "aucune rue OSM nommée « {name} » dans la zone (une ligne sans géométrie ne "
                 "peut pas être créée : cartographiez d'abord la rue)",
    "street_groups": "{n} groupes de voies OSM nommées « {name} » sont à au moins {gap:.0f} m "
                     "les uns des autres : {streets}{more} ; acceptez si c'est la même rue, "
                     "sinon répondez avec une voie de la bonne dans match.decisions",
    "rows_same_street": "les lignes {rows} nomment toutes la rue OSM {street} : une ligne en "
                        "double, ou une rue encore à cartographier ?",
    "closest_street_taken": "la plus proche, {street} (similarité {similarity:.2f}), est "
                            "associée à la ligne {owner}",
    "no_street_closest_taken": "aucune rue OSM nommée « {name} » dans la zone ({closest}) ; une "
                               "ligne sans géométrie ne peut pas être créée",
    "street_typo": "aucune rue OSM ne s'appelle exactement « {name} » ; {closest} : une ligne en "
                   "double avec une faute de frappe ?",
    "near_street_name": "aucune rue OSM ne s'appelle exactement « {name} » : la plus proche est "
                        "{street} (similarité {similarity:.2f}){also}",
    "street_conflict": "associé à {where} mais les valeurs diffèrent : {conflicts}{more}",
    "street_same": "associé à {where} ; OSM a déjà ces attributs{kept}",
    "street_sets": "associé à {where} ; ajoute ou change {keys} sur {changed} des {total} "
                   "voie(s){kept}",
    "unwritable_create": "ne peut pas être écrit dans OSM : {problem}",
    "unwritable_modify": "ne peut pas être écrit tel quel dans OSM : {problem}",
    "version_unknown": "l'objet OSM ou sa version est inconnu",
    "member_version_unknown": "{osm_id} : sa version est inconnue",
    "no_single_form": "un {type} n'a pas de forme OSM unique ; découpez-le dans la source",
    "short_line": "une ligne de moins de deux points distincts",
    "too_many_objects": "demande {count} objets OSM, plus que les {max} qu'un groupe de "
                        "modifications peut contenir",
}

# Chains and lists in French typography (a space before ";" and ":").
FRENCH_JOINERS: Mapping[str, str] = {"low_precision": ", ", "accepted": " : ", "": " ; "}
FRENCH_SEPARATORS: Mapping[str, str] = {"conflict": " ; ", "way_conflict": " ; "}

# The kind of a reason, for grouping reviews ("accept every review of this kind"): the codes
# that can open a decision's chain, by group.
KINDS: Mapping[str, Mapping[str, str]] = {
    "fr": {"low_precision": "Source peu précise", "source_duplicates": "Doublons dans la source",
           "contested": "Disputé avec un autre objet source",
           "two_osm_fit": "Deux objets OSM possibles", "uncertain": "Association incertaine",
           "duplicate": "Nouvel objet ou doublon ?", "related_same_name": "Même nom, autre type",
           "ref_ambiguous": "Référence en double dans OSM",
           "forced": "Décision de relecteur inapplicable", "conflict": "Valeurs différentes",
           "unwritable": "Impossible à écrire dans OSM", "street": "Rue à confirmer",
           "no_osm": "Aucun objet OSM proche", "matched": "Associé à un objet OSM",
           "reviewer": "Décidé par un relecteur",
           "outside_coverage": "Hors de la zone des données OSM"},
    "en": {"low_precision": "Low-precision source", "source_duplicates": "Duplicates in the source",
           "contested": "Contested with another source feature",
           "two_osm_fit": "Two possible OSM objects", "uncertain": "Uncertain match",
           "duplicate": "New object or duplicate?", "related_same_name": "Same name, another kind",
           "ref_ambiguous": "Reference twice in OSM",
           "forced": "Reviewer decision not applicable", "conflict": "Values differ",
           "unwritable": "Cannot be written to OSM", "street": "Street to confirm",
           "no_osm": "No OSM object nearby", "matched": "Matched to an OSM object",
           "reviewer": "Decided by a reviewer",
           "outside_coverage": "Outside the OSM data's area"},
}
KIND_OF_CODE: Mapping[str, str] = {
    "low_precision": "low_precision", "source_duplicates": "source_duplicates",
    "rival_source": "contested", "also_wanted": "contested", "two_osm_fit": "two_osm_fit",
    "uncertain": "uncertain", "taken_by_other": "duplicate", "held_by_other": "duplicate",
    "related_same_name": "related_same_name", "ref_ambiguous": "ref_ambiguous",
    "forced_absent": "forced", "forced_twice": "forced", "forced_way_absent": "forced",
    "matched_conflict": "conflict", "street_conflict": "conflict",
    "unwritable_create": "unwritable", "unwritable_modify": "unwritable",
    "street_groups": "street", "rows_same_street": "street", "street_typo": "street",
    "near_street_name": "street", "none_within": "no_osm", "no_fit": "no_osm",
    "closest_taken": "no_osm", "matched_sets": "matched", "matched_same": "matched",
    "street_sets": "matched", "street_same": "matched", "accepted": "reviewer",
    "forced_create": "reviewer", "outside_coverage": "outside_coverage",
}


def reason_texts(locale: str) -> dict[str, Any]:
    """What a page needs to say reasons in `locale`: templates, joiners, list separators, and
    the kind label of each code (for grouping)."""
    texts(locale)  # an unknown locale is said here too
    kinds = KINDS[locale]
    if locale == "fr":
        templates, joiners, separators = FRENCH_REASONS, FRENCH_JOINERS, FRENCH_SEPARATORS
    else:
        templates, joiners, separators = ENGLISH, {**JOINERS, "": "; "}, SEPARATORS
    return {"templates": dict(templates), "joiners": dict(joiners),
            "separators": dict(separators),
            "kinds": {code: kinds[kind] for code, kind in KIND_OF_CODE.items()}}
