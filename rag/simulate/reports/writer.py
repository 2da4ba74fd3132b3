"""Assembling a report (:func:`write_report`): header, indication, comparison, laid-out sections and
conclusion, in the order and style this reader draws, with the answer key in :class:`SimReport`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from rag.simulate.reports.comparison import comparison_line
from rag.simulate.reports.composer import Composer
from rag.simulate.reports.findings import conclusion_lines, write_findings
from rag.simulate.reports.header import header_lines, indication_line
from rag.simulate.reports.layout import headed_lines, prose_lines
from rag.simulate.reports.wording import DATE_STYLES, chance, pick
from rag.simulate.truth import PatientTruth, StudyTruth
from rag.vocab.sections import ECHO_SECTIONS

REPORT_STYLES: Final[tuple[str, ...]] = ("colon", "block", "markdown", "dash", "prose")
"""How sections are laid out: ``Left Ventricle: ...``, a heading line, ``## LV``, ``LV - ...``, or
unheaded prose whose sentences the parser classifies by the anatomy they name."""


@dataclass(frozen=True)
class SimReport:
    """One simulated echo report and its answer key.

    ``mentioned`` holds the :class:`~rag.simulate.truth.StudyTruth` field names the text states
    (``"lvesd_cm"`` for the derived LVIDs, ``"heart_rate"`` when the header gives it); a field not in
    it is simply not written, as normal findings often are not. ``sections`` maps each anatomical
    section written to its text, sentences joined by single spaces, exactly as
    :func:`rag.ingest.sections.parse_echo_report` should return it; header, indication, comparison and
    conclusion are Free Text and not in it.
    """

    text: str
    mentioned: frozenset[str]
    sections: Mapping[str, str]
    style: str


def write_report(
    patient: PatientTruth, study: StudyTruth, prior: StudyTruth | None, rng: np.random.Generator
) -> SimReport:
    """Write the report of ``study`` (one of ``patient``'s), comparing it with ``prior`` when given.

    Deterministic for the generator's state; the generator is advanced.

    Raises:
        ValueError: ``prior`` is not dated before ``study``, or the patient's sex is not "M" or "F".
    """
    if prior is not None and prior.date >= study.date:
        raise ValueError(
            f"prior study of {prior.date.isoformat()} is not before the current study of "
            f"{study.date.isoformat()}; pass an earlier study of the patient as prior, or None"
        )
    composer = Composer(patient, study, rng)
    style = pick(rng, ("colon", "colon", "block", "markdown", "dash", "prose"))
    date_style = int(rng.integers(DATE_STYLES))
    header, with_rate = header_lines(patient, study, rng, date_style)
    indication = indication_line(patient, study, rng)
    write_findings(composer)
    comparison = ""
    if prior is not None:
        comparison = comparison_line(prior, study, rng, date_style)
    elif chance(rng, 0.3):
        comparison = pick(rng, ("Comparison: None.", "Comparison: No prior study available."))
    comparison_first = chance(rng, 0.75)

    lines = [*header, indication]
    if comparison and comparison_first:
        lines.append(comparison)
    lines.append("")
    if style == "prose":
        lines += prose_lines(composer.sections, rng)
    else:
        lines += headed_lines(composer.sections, style, rng)
        if chance(rng, 0.55):
            heading = pick(rng, ("Conclusion:", "Conclusions:", "Impression:", "Summary:", "IMPRESSION"))
            conclusion = conclusion_lines(composer)
            numbered = chance(rng, 0.6)
            lines.append(heading)
            lines += [f"{i}. {line}" for i, line in enumerate(conclusion, 1)] if numbered else [" ".join(conclusion)]
            lines.append("")
    if comparison and not comparison_first:
        lines += [comparison, ""]
    text = "\n".join(lines).strip() + "\n"
    mentioned = set(composer.mentioned)
    if with_rate:
        mentioned.add("heart_rate")
    sections = {name: " ".join(composer.sections[name]) for name in ECHO_SECTIONS if name in composer.sections}
    return SimReport(text=text, mentioned=frozenset(mentioned), sections=MappingProxyType(sections), style=style)


def write_patient_reports(patient: PatientTruth, rng: np.random.Generator) -> tuple[SimReport, ...]:
    """One report per study of ``patient``, each compared with the study before it."""
    reports = []
    prior: StudyTruth | None = None
    for study in patient.studies:
        reports.append(write_report(patient, study, prior, rng))
        prior = study
    return tuple(reports)
