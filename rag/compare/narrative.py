"""The comparison's narrative: one statement per change, each citing its numbered evidence.

"Compared with the study of <date> (<n> days earlier): the LVEF has decreased from 58 % to 41 %
(-17 points, +/- 3) [1, 2, 5]. New moderate pericardial effusion [1, 8, 9]. No other significant
change [1]." Statements are composed from the calls only, so a sentence never says more than its
call, and every statement cites the prior's report and the neighbours and change pairs behind it.
"""

from __future__ import annotations

from rag.compare.result import Comparison, EvidenceItem, FindingChange, MeasurementDelta, Statement
from rag.vocab.findings import PHENOTYPES

__all__ = ["GRADE_WORDS", "EvidenceNumbering", "extractive_statements", "no_prior_statements"]

GRADE_WORDS = ("no", "mild", "moderate", "severe")
_ADVERBS = ("not", "mildly", "moderately", "severely")
_ADJECTIVES = ("reduced ", "dilated ", "elevated ")
_LABELS = {"lvef": "LVEF", "pasp": "PASP", "tapse": "TAPSE", "lvedd": "LV end-diastolic diameter"}


class EvidenceNumbering:
    """Numbers evidence items from 1 in the order they are first cited; the same item keeps its number."""

    def __init__(self) -> None:
        self.items: list[EvidenceItem] = []
        self._numbers: dict[tuple[str, int, str, str | None], int] = {}

    def add(self, item: EvidenceItem) -> int:
        key = (item.kind, item.study_id, item.role, item.section)
        if key not in self._numbers:
            self._numbers[key] = len(self.items) + 1
            self.items.append(item.model_copy(update={"number": self._numbers[key]}))
        return self._numbers[key]


def _label(name: str) -> str:
    return _LABELS.get(name, PHENOTYPES[name].description)


def _value(value: float, unit: str | None) -> str:
    digits = 0 if unit in ("%", "mmHg", "mm") else 1
    return f"{value:.{digits}f} {unit or ''}".strip()


def measurement_text(m: MeasurementDelta) -> str:
    """ "the LVEF has decreased from 58 % to 41 % (-17 %, +/- 3)"."""
    verb = "increased" if m.call == "increased" else "decreased"
    assert m.prior is not None and m.current is not None and m.delta is not None
    change = _value(m.delta, m.unit).replace("%", "points")
    spread = f", +/- {_value(m.spread, None)}" if m.spread is not None else ""
    sign = "+" if m.delta > 0 else ""
    return (
        f"the {_label(m.name)} has {verb} from {_value(m.prior, m.unit)} to {_value(m.current, m.unit)} "
        f"({sign}{change}{spread})"
    )


def finding_text(c: FindingChange) -> str:
    """ "new moderate pericardial effusion", "mitral regurgitation has worsened from mild to moderate",
    "new mildly reduced LV systolic function"."""
    what = _label(c.name)
    words = _ADVERBS if what.startswith(_ADJECTIVES) else GRADE_WORDS
    before, after = words[c.prior_grade], words[c.current_grade]
    if c.call == "new":
        return f"new {after} {what}"
    if c.call == "resolved":
        return f"the {before} {what} of the prior study has resolved"
    verb = "worsened" if c.call == "worse" else "improved"
    return f"{what} has {verb} from {before} to {after}"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def no_prior_statements(reason: str) -> list[Statement]:
    return [Statement(text=f"No prior study to compare with: {reason}.", evidence=[], kind="summary")]


def extractive_statements(comparison: Comparison) -> list[Statement]:
    """The statements of a comparison, composed from its calls."""
    date = comparison.prior_date.isoformat() if comparison.prior_date else f"study {comparison.prior_study_id}"
    days = f" ({comparison.interval_days} days earlier)" if comparison.interval_days is not None else ""
    lead = f"Compared with the study of {date}{days}: "
    prior_report = [e.number for e in comparison.evidence if e.kind == "prior_report"]
    out: list[Statement] = []
    for m in comparison.measurements:
        if m.call in ("increased", "decreased") and m.prior is not None and m.current is not None:
            out.append(Statement(text=measurement_text(m), evidence=m.evidence, kind="measurement", name=m.name))
    pairs: dict[str, list[int]] = {}
    for p in comparison.change_pairs:
        pairs.setdefault(p.section, []).append(p.evidence)
    for c in comparison.findings:
        if c.call != "unchanged":
            cited = sorted(set(c.evidence) | set(pairs.get(c.section, [])))
            out.append(Statement(text=finding_text(c), evidence=cited, kind="finding", name=c.name))
    everything = sorted({n for m in comparison.measurements for n in m.evidence} | set(prior_report))
    rest = "no other significant change" if out else "no significant change"
    out.append(Statement(text=rest, evidence=prior_report or everything[:6], kind="summary"))
    done = [s.model_copy(update={"text": _sentence(s.text)}) for s in out]
    done[0] = done[0].model_copy(update={"text": lead + done[0].text})
    return done
