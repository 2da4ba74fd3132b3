"""Echo sentence classifier: which anatomical section a sentence names first.

The vocabulary is a table of case-insensitive phrases per EchoPrime section plus case-sensitive
abbreviations (``EF``, ``MR``, ``AS``, ...), compiled into one regex tried longest term first, so
"right ventricular systolic pressure" (Pulmonary Artery) wins over "right ventricular" (Right
Ventricle). A sentence written in capitals ignores the abbreviations that are ordinary words
("AS", "MS"). A sentence naming the left ventricle only as the place of a regional wall motion
abnormality goes to Resting Segmental Wall Motion Analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.vocab.sections import (
    AORTA,
    ATRIAL_SEPTUM,
    AV,
    IVC,
    LA,
    LV,
    MV,
    PA,
    PERICARDIUM,
    PULMONARY_VEINS,
    PV,
    RA,
    RV,
    TV,
    WALL_MOTION,
)

__all__ = ["classify"]

# Case-insensitive regex snippets without capturing groups, each starting with a letter (the
# matcher dispatches on it); a space matches spaces or hyphens.
_ECHO_TERMS: dict[str, tuple[str, ...]] = {
    LV: (
        "left ventricles?",
        "left ventricular",
        "left and right ventric(?:les?|ular)",
        "both ventricles",
        "biventricular",
        "lv",
        "lvef",
        "lvid[ds]?",
        "lvedd",
        "lvesd",
        "lvpwd?",
        "ivsd?",
        "lvh",
        "lv mass",
        "ejection fraction",
        "interventricular septum",
        "septal thickness",
        "wall thickness",
        "concentric (?:hypertrophy|remodell?ing)",
        "eccentric (?:hypertrophy|remodell?ing)",
        "hypertrophy",
        "systolic (?:function|dysfunction)",
        "diastolic (?:function|dysfunction)",
        "impaired relaxation",
        "filling pressures?",
        "lv filling pressures?",
        "mitral inflow",
        "e/a(?: ratio)?",
        "e/e(?:'|′|’| prime)?",
        "deceleration time",
        "pseudonormal(?:ization)?",
        "restrictive filling",
        "global longitudinal strain",
        "gls",
        "fractional shortening",
        "cardiomyopathy",
        "apical thrombus",
        "lv thrombus",
        "ventricular thrombus",
    ),
    WALL_MOTION: (
        "wall motion",
        "hypokine(?:sis|tic|sia)",
        "akine(?:sis|tic|sia)",
        "dyskine(?:sis|tic|sia)",
        "regional",
        "segmental",
        *(
            f"{wall} (?:walls?|segments?)"
            for wall in (
                "inferior",
                "anterior",
                "posterior",
                "septal",
                "lateral",
                "apical",
                "inferolateral",
                "anterolateral",
                "inferoseptal",
                "anteroseptal",
            )
        ),
        "antero(?:septal|lateral)",
        "infero(?:septal|lateral)",
        "apical (?:cap|segments?)",
        *(f"{artery} territory" for artery in ("lad", "rca", "lcx", "circumflex")),
    ),
    RV: (
        "right ventricles?",
        "right ventricular",
        "rv",
        "rvh",
        "tapse",
        "tricuspid annular plane systolic excursion",
        "rv fac",
        "fractional area change",
        "rv free wall",
    ),
    LA: (
        "left atri(?:um|al|a)",
        "left and right atri(?:a|al|um)",
        "both atria",
        "biatrial",
        "lavi",
        "left atrial appendage",
        "laa",
    ),
    RA: ("right atri(?:um|al)",),
    ATRIAL_SEPTUM: (
        "atrial septum",
        "inter ?atrial septum",
        "interatrial",
        "atrial septal",
        "atrial septal (?:defect|aneurysm)",
        "ias",
        "pfo",
        "patent foramen ovale",
        "foramen ovale",
        "asd",
        "lipomatous hypertrophy",
        "bubble study",
        "agitated saline",
        "saline contrast",
    ),
    MV: (
        "mitral",
        "mitral valve",
        "mitral annul(?:ar|us) calcification",
        "mvp",
        "mva",
        "mitraclip",
        "mac",
        "chordae",
        "papillary muscles?",
        "systolic anterior motion",
    ),
    AV: (
        "aortic valve",
        "aortic",
        "tricuspid aortic valve",
        "bicuspid",
        "trileaflet",
        "ava",
        "lvot",
        "left ventricular outflow tract",
        "tavr",
        "tavi",
        "savr",
        "transaortic",
    ),
    TV: ("tricuspid", "tricuspid valve"),
    PV: (
        "pulmonic",
        "pulmonic valve",
        "pulmonary valve",
        "pulmonary (?:regurgitation|insufficiency|stenosis)",
        "rvot",
        "right ventricular outflow tract",
    ),
    PERICARDIUM: (
        "pericardi(?:um|al|tis)",
        "effusions?",
        "tamponade",
        "fat pad",
    ),
    AORTA: (
        "aorta",
        "aortic root",
        "aortic arch",
        "aortic sinus(?:es)?",
        "sinus(?:es)? of valsalva",
        "sinotubular junction",
        "aortic (?:dilation|dilatation|dimensions?|size|aneurysm|dissection|coarctation)",
        "coarctation",
        "ao root",
    ),
    IVC: (
        "ivc",
        "inferior vena cava",
        "vena cava",
        "hepatic veins?",
        "ra pressure",
        "right atrial pressure",
        "inspiratory collapse",
        "respiratory (?:variation|collapse)",
        "collapsibility",
        "sniff",
    ),
    PA: (
        "pulmonary arter(?:y|ies)",
        "mpa",
        "pasp",
        "rvsp",
        "spap",
        "pulmonary (?:artery )?(?:systolic )?pressures?",
        "pulmonary hypertension",
        "right ventricular systolic pressure",
        "rv systolic pressure",
        "pulmonary acceleration time",
        "pulmonary vascular resistance",
    ),
    PULMONARY_VEINS: ("pulmonary veins?", "pulmonary venous"),
}

# Case-sensitive abbreviations (two-letter ones collide with English words in lower case).
_ECHO_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    LV: ("EF",),
    LA: ("LA",),
    RA: ("RA",),
    MV: ("MV", "MR", "MS"),
    AV: ("AV", "AS", "AR", "AI"),
    TV: ("TV", "TR"),
    PV: ("PV", "PR", "PI"),
    IVC: ("RAP",),
    PA: ("PA",),
}

# Abbreviations that are ordinary words when a sentence is written in capitals ("AS", "MS").
_SHOUTED_AMBIGUOUS = frozenset({"AS", "AR", "MS", "PR", "PI", "PA"})


@dataclass(frozen=True)
class _Matcher:
    pattern: re.Pattern[str]
    sections: dict[str, str]

    def first(self, sentence: str) -> str | None:
        match = self.pattern.search(sentence)
        if match is None or match.lastgroup is None:
            return None
        return self.sections[match.lastgroup]


def _phrase(snippet: str) -> str:
    return snippet.replace(" ", r"[\s-]+")


def _build_matcher(skip: frozenset[str]) -> _Matcher:
    """One regex over all terms, dispatched on the first letter so each position tries few terms."""
    entries = [
        (section, snippet, f"(?i:{_phrase(snippet)})")
        for section, snippets in _ECHO_TERMS.items()
        for snippet in snippets
    ]
    entries += [
        (section, abbr, abbr) for section, abbrs in _ECHO_ABBREVIATIONS.items() for abbr in abbrs if abbr not in skip
    ]
    # Longest first, so "right ventricular systolic pressure" wins over "right ventricular".
    entries.sort(key=lambda entry: -len(entry[1]))
    by_letter: dict[str, list[str]] = {}
    sections: dict[str, str] = {}
    for i, (section, snippet, regex) in enumerate(entries):
        if not snippet[0].isalpha():
            raise ValueError(f"Echo term {snippet!r} must start with a letter.")
        by_letter.setdefault(snippet[0].lower(), []).append(f"(?P<t{i}>{regex})")
        sections[f"t{i}"] = section
    branches = "|".join(f"(?=[{letter}{letter.upper()}])(?:{'|'.join(terms)})" for letter, terms in by_letter.items())
    return _Matcher(re.compile(rf"(?<!\w)(?:{branches})(?!\w)"), sections)


_MATCHER = _build_matcher(frozenset())
_SHOUTED_MATCHER = _build_matcher(_SHOUTED_AMBIGUOUS)
_SHOUTED_WORD = re.compile(r"\b[A-Z]{4,}\b")
_REGIONAL = re.compile(r"(?i)(?<!\w)(?:(?:hypo|a|dys)kine\w*|wall[\s-]+motion)(?!\w)")
_LV_GENERAL = re.compile(
    r"(?i)(?<!\w)(?:global(?:ly)?|diffuse(?:ly)?|ejection fraction|lvef|ef|systolic|diastolic|function|size|"
    r"dimensions?|thickness|dilat\w*|hypertroph\w*|cavity|volumes?|mass|thrombus)(?!\w)"
)


def _is_shouted(sentence: str) -> bool:
    return not any(char.islower() for char in sentence) and len(_SHOUTED_WORD.findall(sentence)) >= 2


def classify(sentence: str) -> str | None:
    """The section whose anatomy the sentence names first, or None."""
    section = (_SHOUTED_MATCHER if _is_shouted(sentence) else _MATCHER).first(sentence)
    if section == LV and _REGIONAL.search(sentence) and not _LV_GENERAL.search(sentence):
        return WALL_MOTION
    return section
