"""The :class:`Composer` that collects one report's sentences per section and the truth fields they
state; the section writers (:mod:`~rag.simulate.reports.chambers`, :mod:`~rag.simulate.reports.valves`,
:mod:`~rag.simulate.reports.vessels`) add to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from rag.simulate.reports import wording
from rag.simulate.reports.grades import finding_grades
from rag.simulate.truth import PatientTruth, StudyTruth
from rag.vocab.cutoffs import check_sex

_T = TypeVar("_T")


class Composer:
    """Collects the sentences of one report per section, and the truth fields they state."""

    def __init__(self, patient: PatientTruth, study: StudyTruth, rng: np.random.Generator) -> None:
        self.patient = patient
        self.study = study
        self.rng = rng
        self.sex = check_sex(patient.sex)
        self.grades = finding_grades(patient, study)
        self.sections: dict[str, list[str]] = {}
        self.mentioned: set[str] = set()
        # How terse this reader is: the chance of leaving out a normal statement.
        self.p_omit = float(rng.uniform(0.15, 0.45))
        self.lvef_text = wording.lvef_display(study.lvef, self.sex, rng)

    def pick(self, options: Sequence[_T]) -> _T:
        return wording.pick(self.rng, options)

    def chance(self, p: float) -> bool:
        return wording.chance(self.rng, p)

    def omit_normal(self) -> bool:
        return self.chance(self.p_omit)

    def say(self, section: str, sentence: str, *fields: str) -> None:
        self.sections.setdefault(section, []).append(sentence)
        self.mentioned.update(fields)
