"""How the sections are laid out on the page: headed (colon, heading line, markdown, dash; full or
abbreviated heading names) or unheaded prose paragraphs."""

from __future__ import annotations

from typing import Final

import numpy as np

from rag.simulate.reports.wording import chance, pick
from rag.vocab.sections import (
    AORTA,
    ATRIAL_SEPTUM,
    AV,
    ECHO_SECTIONS,
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

# Heading names per section: spelled out, abbreviated.
_HEADINGS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    LV: (("Left Ventricle", "Left Ventricular Size and Function"), ("LV",)),
    WALL_MOTION: (
        ("Resting Segmental Wall Motion Analysis", "Regional Wall Motion", "Wall Motion"),
        ("LV Wall Motion", "Wall Motion"),
    ),
    RV: (("Right Ventricle", "Right Ventricular Size and Function"), ("RV",)),
    LA: (("Left Atrium",), ("LA",)),
    RA: (("Right Atrium",), ("RA",)),
    ATRIAL_SEPTUM: (("Atrial Septum", "Interatrial Septum"), ("IAS",)),
    MV: (("Mitral Valve",), ("MV",)),
    AV: (("Aortic Valve",), ("AV",)),
    TV: (("Tricuspid Valve",), ("TV",)),
    PV: (("Pulmonic Valve", "Pulmonary Valve"), ("PV",)),
    PERICARDIUM: (("Pericardium",), ("Pericardium",)),
    AORTA: (("Aorta", "Aortic Root", "Aortic Root and Ascending Aorta"), ("Ao", "Aorta")),
    IVC: (("Inferior Vena Cava", "IVC", "Systemic Veins"), ("IVC",)),
    PA: (("Pulmonary Artery", "Pulmonary Artery Pressure", "Pulmonary Pressures"), ("PA", "PASP")),
    PULMONARY_VEINS: (("Pulmonary Veins",), ("Pulmonary Veins",)),
}
# Headings that read as a finding when written alone on a line in mixed case; they get a colon there.
_FINDING_LIKE: Final = frozenset({"Wall Motion", "Regional Wall Motion", "Pulmonary Artery Pressure"})


def headed_lines(sections: dict[str, list[str]], style: str, rng: np.random.Generator) -> list[str]:
    naming = pick(rng, ("full", "full", "short", "mixed"))
    case = pick(rng, ("title", "upper", "title_colon"))
    blank = style != "colon" or chance(rng, 0.5)
    one_line = chance(rng, 0.6)
    lines: list[str] = []
    for section in ECHO_SECTIONS:
        sentences = sections.get(section)
        if not sentences:
            continue
        full, short = _HEADINGS[section]
        use_short = naming == "short" or (naming == "mixed" and chance(rng, 0.5))
        heading = pick(rng, short if use_short else full)
        body = " ".join(sentences)
        if style == "colon":
            lines.append(f"{heading.upper() if case == 'upper' else heading}: {body}")
        elif style == "dash":
            lines.append(f"{heading.upper() if case == 'upper' else heading} - {body}")
        else:
            if style == "markdown":
                lines.append(f"{'#' * int(rng.integers(2, 4))} {heading}")
            elif case == "upper":
                lines.append(heading.upper())
            elif case == "title_colon" or heading in _FINDING_LIKE:
                lines.append(f"{heading}:")
            else:
                lines.append(heading)
            lines += [body] if one_line else sentences
        if blank:
            lines.append("")
    return lines


def prose_lines(sections: dict[str, list[str]], rng: np.random.Generator) -> list[str]:
    lines = ["Findings:"] if chance(rng, 0.6) else []
    paragraph: list[str] = []
    for section in ECHO_SECTIONS:
        paragraph += sections.get(section, [])
        if paragraph and chance(rng, 0.35):
            lines += [" ".join(paragraph), ""]
            paragraph = []
    if paragraph:
        lines += [" ".join(paragraph), ""]
    return lines
