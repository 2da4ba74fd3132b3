"""Finding grades of a report, and how alike two reports' findings are: the soft contrastive targets.

Every report is read into a vector of grades 0-3, one per finding phenotype of
:data:`rag.retrieve.voting.PHENOTYPES` (mitral regurgitation, LA dilation, pericardial effusion, ...),
each from its own section's text with the same keyword rules the neighbour votes use.

Contrastive training against the exact report makes every study its own class: with a few hundred
studies a video tower learns to tell the studies apart (patient anatomy, gain, heart rate) instead of
what they show, and the learned space does not carry over to unseen patients. Soft targets remove
that reward: a clip's target is spread over every report in the batch whose findings agree with its
own study's, weighted ``exp(-distance / temperature)`` where the distance sums the grade differences
over the findings the clip's view shows (all findings when the view is unknown). A reading of a
different study with the same findings is then as good an answer as the clip's own report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np

from rag.vocab.view_sections import informed_sections

__all__ = ["finding_affinity", "finding_names", "finding_sections", "report_grades", "view_finding_mask"]


@cache
def _findings() -> tuple[tuple[str, str], ...]:
    from rag.vocab.findings import PHENOTYPES

    return tuple((p.name, p.section) for p in PHENOTYPES.values() if p.kind == "finding" and p.rule is not None)


def finding_names() -> tuple[str, ...]:
    """The findings graded, in the order of every grade vector."""
    return tuple(name for name, _ in _findings())


def finding_sections() -> tuple[str, ...]:
    """The section each finding is read from, in the order of :func:`finding_names`."""
    return tuple(section for _, section in _findings())


def report_grades(sections: Mapping[str, str]) -> tuple[int, ...]:
    """A report's grade 0-3 per finding (:func:`finding_names` order), read from its section texts.

    A section the report leaves out gives 0 for its findings, as the neighbour votes read it.
    """
    from rag.vocab.findings import PHENOTYPES
    from rag.vocab.grades import statement_grade

    grades = []
    for name, section in _findings():
        rule = PHENOTYPES[name].rule
        assert rule is not None  # _findings keeps only findings with a rule
        grades.append(statement_grade(sections.get(section, ""), rule))
    return tuple(grades)


def view_finding_mask(view: str | None, *, threshold: float = 0.5) -> tuple[bool, ...]:
    """Which findings a clip of ``view`` shows: those whose section the view informs by >= ``threshold``.

    An unknown view (None) or a view that informs none of the findings' sections counts every finding.
    """
    names = finding_sections()
    if view is None:
        return (True,) * len(names)
    shown = set(informed_sections(view, threshold=threshold))
    mask = tuple(s in shown for s in names)
    return mask if any(mask) else (True,) * len(names)


def finding_affinity(
    clip_grades: Sequence[Sequence[int]],
    clip_masks: Sequence[Sequence[bool]],
    text_grades: Sequence[Sequence[int]],
    temperature: float,
) -> np.ndarray:
    """(clips, texts) affinities ``exp(-sum over shown findings |grade difference| / temperature)``.

    1.0 where a text's findings agree with the clip's study's on every finding the clip shows, smaller
    the more they differ. ``temperature`` must be > 0.
    """
    if temperature <= 0:
        raise ValueError(f"finding temperature must be > 0, got {temperature}")
    a = np.asarray(clip_grades, dtype=np.float32)
    m = np.asarray(clip_masks, dtype=np.float32)
    b = np.asarray(text_grades, dtype=np.float32)
    distance = (np.abs(a[:, None, :] - b[None, :, :]) * m[:, None, :]).sum(axis=2)
    affinity: np.ndarray = np.exp(-distance / temperature).astype(np.float32)
    return affinity
