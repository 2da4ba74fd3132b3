"""The ``Comparison:`` paragraph of a follow-up report: the prior study's date and, clause by clause,
what changed since it (from :func:`rag.simulate.truth.changes`)."""

from __future__ import annotations

from typing import Final

import numpy as np

from rag.simulate.reports.wording import ADV, chance, format_date, join_clauses, pick
from rag.simulate.truth import EFFUSION_GRADES, GRADES, StudyTruth, changes

_VALVE_NAMES: Final = {
    "mr": "mitral regurgitation",
    "ar": "aortic regurgitation",
    "tr": "tricuspid regurgitation",
    "aortic_stenosis": "aortic stenosis",
}
_CHAMBER_NAMES: Final = {"rv_dilation": "right ventricle", "la_dilation": "left atrium", "ra_dilation": "right atrium"}


def _chamber_state(grade: int) -> str:
    return "normal in size" if grade == 0 else f"{ADV[grade]} dilated"


def _change_clause(field: str, before: str, after: str, rng: np.random.Generator) -> str:
    """One clause of the comparison, e.g. ``the LVEF has decreased from 61% to 39%``.

    LVEF numbers are always separated from the label by a verb, so the measurement reader does not
    take the prior value for the current one.
    """
    if field == "lvef":
        if float(after) < float(before):
            return pick(
                rng,
                (
                    f"the LVEF has decreased from {before}% to {after}%",
                    f"the ejection fraction has fallen from {before}% to {after}%",
                    f"LV systolic function has worsened (ejection fraction down from {before}% to {after}%)",
                ),
            )
        return pick(
            rng,
            (
                f"the LVEF has improved from {before}% to {after}%",
                f"the ejection fraction has increased from {before}% to {after}%",
                f"LV systolic function has improved (ejection fraction up from {before}% to {after}%)",
            ),
        )
    if field == "lvedd_cm":
        if float(after) > float(before):
            return pick(rng, ("the left ventricle has dilated further", "the left ventricular cavity is larger"))
        return "the left ventricular cavity is smaller"
    a, b = int(before), int(after)
    if field == "effusion":
        if a == 0:
            return pick(
                rng,
                (
                    f"a new {EFFUSION_GRADES[b]} pericardial effusion has developed",
                    f"the {EFFUSION_GRADES[b]} pericardial effusion is new",
                ),
            )
        if b == 0:
            return pick(
                rng,
                (
                    "the pericardial effusion has resolved",
                    "the previously noted pericardial effusion is no longer seen",
                ),
            )
        verb = "increased" if b > a else "decreased"
        return f"the pericardial effusion has {verb} from {EFFUSION_GRADES[a]} to {EFFUSION_GRADES[b]}"
    if field in _VALVE_NAMES:
        name = _VALVE_NAMES[field]
        if a == 0:
            return pick(rng, (f"{GRADES[b]} {name} is new", f"there is new {GRADES[b]} {name}"))
        if b == 0:
            return f"the previously noted {name} is no longer seen"
        if b > a:
            return pick(
                rng,
                (
                    f"{name} has progressed from {GRADES[a]} to {GRADES[b]}",
                    f"{name} has worsened from {GRADES[a]} to {GRADES[b]}",
                ),
            )
        return f"{name} has improved from {GRADES[a]} to {GRADES[b]}"
    chamber = _CHAMBER_NAMES[field]
    if a == 0:
        return f"the {chamber} is now {_chamber_state(b)} (previously normal in size)"
    if b == 0:
        return f"the {chamber} is now normal in size (previously {_chamber_state(a)})"
    word = "larger" if b > a else "smaller"
    return f"the {chamber} is {word}, now {_chamber_state(b)} (previously {_chamber_state(a)})"


def comparison_line(prior: StudyTruth, study: StudyTruth, rng: np.random.Generator, date_style: int) -> str:
    """A one-line ``Comparison:`` paragraph naming the prior study's date and what changed."""
    date = format_date(prior.date, date_style)
    diff = changes(prior, study)
    order = ["lvef", "lvedd_cm", *(name for name in diff if name not in ("lvef", "lvedd_cm"))]
    clauses = []
    for name in order:
        if name in diff:
            before, _, after = diff[name].partition(" -> ")
            clauses.append(_change_clause(name, before, after, rng))
    if not clauses:
        text = pick(
            rng,
            (
                f"Compared with the prior study of {date}, there is no significant change.",
                f"No significant change since the prior study of {date}.",
                f"Prior study dated {date} reviewed. Findings are unchanged.",
            ),
        )
    else:
        body = join_clauses(clauses)
        text = pick(
            rng,
            (
                f"Compared with the prior study of {date}, {body}.",
                f"Compared to the previous echocardiogram dated {date}, {body}.",
                f"Prior study dated {date} reviewed. Since then, {body}.",
            ),
        )
        if chance(rng, 0.4):
            text += " Otherwise no significant change."
    return f"Comparison: {text}"
