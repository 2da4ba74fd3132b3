"""The phenotypes a study is read for: measurements and graded findings, each voted by one section.

A continuous phenotype reads a stored measurement; a finding reads its grade 0-3 from the section's
text with a keyword rule (:mod:`rag.vocab.grades`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from rag.core.errors import ConfigError
from rag.vocab.grades import GradeRule
from rag.vocab.sections import AORTA, AV, ECHO_SECTIONS, IVC, LA, LV, MV, PA, PERICARDIUM, RA, RV, TV, WALL_MOTION

__all__ = ["PHENOTYPES", "Phenotype"]


_SIZE = r"dilat\w*|enlarg\w*|\bsize\b"


_ADJECTIVES = frozenset({"reduced", "dilated", "elevated"})
_ADVERBS = ("", "mildly", "moderately", "severely")
_ADJECTIVE_GRADES = ("no", "mild", "moderate", "severe")


@dataclass(frozen=True)
class Phenotype:
    """A predicted quantity and the one section whose neighbours vote for it.

    Attributes:
        name: the phenotype's name.
        section: the ``ECHO_SECTIONS`` name whose neighbours vote.
        kind: ``continuous`` (a stored measurement) or ``finding`` (a grade read from section text).
        measurements: for continuous ones, the measurement names to read, first found wins.
        unit: for continuous ones, the unit of the value.
        rule: for findings, how to read the grade from text.
        positive_grade: for findings, the lowest grade that counts as positive.
    """

    name: str
    section: str
    kind: Literal["continuous", "finding"]
    measurements: tuple[str, ...] = ()
    unit: str | None = None
    rule: GradeRule | None = None
    positive_grade: int = 1
    description: str = ""

    def wording(self, grade: int) -> str:
        """The sentence that states this finding at ``grade`` (0-3), in words the grade reader reads back.

        ``Moderate mitral regurgitation.``, ``Severely reduced LV systolic function.``, ``No pericardial
        effusion.``; a description that starts with an adjective ("reduced", "dilated", "elevated") takes
        an adverb, and grade 0 of it reads "Normal ..." without the adjective.
        """
        if not 0 <= grade <= 3:
            raise ConfigError(f"grade must be 0-3, got {grade}")
        first, _, rest = self.description.partition(" ")
        if first in _ADJECTIVES:
            text = f"Normal {rest}" if grade == 0 else f"{_ADVERBS[grade]} {self.description}"
        else:
            text = f"{_ADJECTIVE_GRADES[grade]} {self.description}"
        return text[0].upper() + text[1:] + "."

    def __post_init__(self) -> None:
        if self.section not in ECHO_SECTIONS:
            raise ConfigError(
                f"phenotype '{self.name}': unknown section '{self.section}'; allowed: {list(ECHO_SECTIONS)}"
            )
        if self.kind == "continuous" and not self.measurements:
            raise ConfigError(f"phenotype '{self.name}' is continuous but names no measurement")
        if self.kind == "finding" and self.rule is None:
            raise ConfigError(f"phenotype '{self.name}' is a finding but has no grade rule")
        if not 1 <= self.positive_grade <= 3:
            raise ConfigError(f"phenotype '{self.name}': positive_grade must be 1-3, got {self.positive_grade}")


def _continuous(name: str, section: str, measurements: tuple[str, ...], unit: str, description: str) -> Phenotype:
    return Phenotype(name, section, "continuous", measurements=measurements, unit=unit, description=description)


def _finding(name: str, section: str, keyword: str, description: str, *, bare: int | None = 1) -> Phenotype:
    return Phenotype(name, section, "finding", rule=GradeRule(keyword, bare), description=description)


PHENOTYPES: Mapping[str, Phenotype] = MappingProxyType(
    {
        p.name: p
        for p in (
            _continuous("lvef", LV, ("lvef",), "%", "LV ejection fraction"),
            _continuous("lvedd", LV, ("lvidd",), "cm", "LV end-diastolic internal diameter"),
            _continuous("lvesd", LV, ("lvids",), "cm", "LV end-systolic internal diameter"),
            _continuous("ivsd", LV, ("ivsd",), "cm", "septal wall thickness at end diastole"),
            _continuous("la_diameter", LA, ("la_diameter",), "cm", "LA antero-posterior diameter"),
            _continuous("tapse", RV, ("tapse",), "mm", "tricuspid annular plane systolic excursion"),
            _continuous("pasp", PA, ("pasp", "rvsp"), "mmHg", "pulmonary artery systolic pressure"),
            _continuous("aortic_root", AORTA, ("aortic_root",), "cm", "aortic root diameter"),
            _continuous("ivc_diameter", IVC, ("ivc_diameter",), "cm", "IVC diameter"),
            _finding("lv_dilation", LV, _SIZE, "LV dilation"),
            _finding("lv_hypertrophy", LV, r"hypertroph\w*|(?-i:\bLVH\b)|wall thickness", "LV hypertrophy"),
            _finding(
                "lv_systolic_dysfunction",
                LV,
                r"systolic function|ejection fraction|(?-i:\bLVEF\b|\bEF\b)",
                "reduced LV systolic function",
                bare=None,
            ),
            _finding(
                "wall_motion_abnormality",
                WALL_MOTION,
                r"hypokines\w*|akines\w*|dyskines\w*|wall motion",
                "regional or global wall motion abnormality",
            ),
            _finding("rv_dilation", RV, _SIZE, "RV dilation"),
            _finding(
                "rv_systolic_dysfunction",
                RV,
                r"systolic function|\bfunction\b|(?-i:\bTAPSE\b)",
                "reduced RV systolic function",
                bare=None,
            ),
            _finding("la_dilation", LA, _SIZE, "LA dilation"),
            _finding("ra_dilation", RA, _SIZE, "RA dilation"),
            _finding("mitral_regurgitation", MV, r"regurgitation|insufficiency|(?-i:\bMR\b)", "mitral regurgitation"),
            _finding("mitral_stenosis", MV, r"stenosis|(?-i:\bMS\b)", "mitral stenosis"),
            _finding("aortic_stenosis", AV, r"stenosis|(?-i:\bAS\b)", "aortic stenosis"),
            _finding(
                "aortic_regurgitation",
                AV,
                r"regurgitation|insufficiency|(?-i:\bAR\b|\bAI\b)",
                "aortic regurgitation",
            ),
            _finding(
                "tricuspid_regurgitation", TV, r"regurgitation|insufficiency|(?-i:\bTR\b)", "tricuspid regurgitation"
            ),
            _finding("pericardial_effusion", PERICARDIUM, r"effusion", "pericardial effusion"),
            _finding("aortic_root_dilation", AORTA, r"dilat\w*|enlarg\w*|aneurys\w*", "dilated aortic root"),
            _finding("dilated_ivc", IVC, r"dilat\w*|plethor\w*", "dilated IVC"),
            _finding(
                "pulmonary_hypertension",
                PA,
                r"pulmonary hypertension|pulmonary artery systolic pressure|(?-i:\bPASP\b|\bRVSP\b)",
                "elevated pulmonary artery systolic pressure",
                bare=None,
            ),
        )
    }
)
"""Every phenotype and the section whose neighbours vote for it."""
