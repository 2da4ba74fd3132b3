"""Numeric measurements read from echo report text.

Each measurement has a canonical name and unit (``CANONICAL_UNITS``); values written in another
unit of the same quantity are converted (mm to cm, cm/s to m/s, ...). A value is taken only when a
unit of the right quantity follows it; the exceptions are the unitless E/e' ratio and LVEF, which
needs a percent sign. A range ("55-60%") gives its midpoint. Values outside a plausible range for
the quantity are dropped. PASP and RVSP stay separate names: the report's own wording is kept, and
a caller that treats them as equivalent can merge them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = ["CANONICAL_UNITS", "Measurement", "MeasurementSpan", "extract_measurements", "measurement_spans"]


@dataclass(frozen=True)
class Measurement:
    """One value read from a report, in its canonical unit (see ``CANONICAL_UNITS``)."""

    name: str
    value: float
    unit: str
    source: str = "report"


@dataclass(frozen=True)
class _Rule:
    name: str
    unit: str
    low: float
    high: float
    label: str


# Labels are case-insensitive regexes; (?-i:...) marks abbreviations that are words in lower case.
_RULES: tuple[_Rule, ...] = (
    _Rule(
        "lvef",
        "%",
        1.0,
        100.0,
        r"LVEF|LV\s*EF|(?<!RV\s)(?<!RV-)EF|(?<!right\sventricular\s)(?<!RV\s)ejection\s+fraction",
    ),
    _Rule(
        "lvidd",
        "cm",
        1.5,
        12.0,
        r"LVID\s*\(?d(?:iastole)?\)?|LVEDD|LVEDd"
        r"|LV\s+end[\s-]diastolic\s+(?:internal\s+)?(?:diameter|dimension)"
        r"|left\s+ventricular\s+end[\s-]diastolic\s+(?:internal\s+)?(?:diameter|dimension)"
        r"|left\s+ventricular\s+internal\s+(?:diameter|dimension)\s+(?:in|at)\s+(?:end[\s-])?diastole",
    ),
    _Rule(
        "lvids",
        "cm",
        0.5,
        10.0,
        r"LVID\s*\(?s(?:ystole)?\)?|LVESD|LVESd"
        r"|LV\s+end[\s-]systolic\s+(?:internal\s+)?(?:diameter|dimension)"
        r"|left\s+ventricular\s+end[\s-]systolic\s+(?:internal\s+)?(?:diameter|dimension)"
        r"|left\s+ventricular\s+internal\s+(?:diameter|dimension)\s+(?:in|at)\s+(?:end[\s-])?systole",
    ),
    _Rule(
        "ivsd",
        "cm",
        0.3,
        4.0,
        r"IVS\s*\(?d\)?|IVS|(?:interventricular\s+)?septal\s+(?:wall\s+)?thickness"
        r"|interventricular\s+septum",
    ),
    _Rule(
        "lvpwd",
        "cm",
        0.3,
        4.0,
        r"LVPW\s*\(?d\)?|LVPW|PWd|PWT|(?:LV\s+)?posterior\s+wall(?:\s+thickness)?",
    ),
    _Rule(
        "la_diameter",
        "cm",
        1.0,
        10.0,
        r"(?-i:LA)(?:\s+(?:AP\s+)?(?:diameter|dimension|size))?"
        r"|left\s+atri(?:um|al)(?:\s+(?:AP\s+)?(?:diameter|dimension|size))?",
    ),
    _Rule(
        "la_volume_index",
        "mL/m2",
        5.0,
        300.0,
        r"LAVI|(?-i:LA)\s*VI|indexed\s+(?:(?-i:LA)|left\s+atrial)\s+volume"
        r"|(?:(?-i:LA)|left\s+atri(?:um|al))\s+(?:volume|vol\.?)(?:\s+(?:index(?:ed)?|/\s*BSA))?",
    ),
    _Rule(
        "ra_area",
        "cm2",
        2.0,
        80.0,
        r"(?:(?-i:RA)|right\s+atri(?:um|al))\s+(?:end[\s-]?systolic\s+)?area",
    ),
    _Rule(
        "tapse",
        "mm",
        2.0,
        50.0,
        r"TAPSE|tricuspid\s+annular\s+plane\s+systolic\s+excursion",
    ),
    _Rule(
        "pasp",
        "mmHg",
        5.0,
        200.0,
        r"PASP|SPAP|(?-i:PA)\s+(?:systolic\s+)?pressure"
        r"|pulmonary\s+(?:artery\s+|arterial\s+)?(?:systolic\s+)?pressure",
    ),
    _Rule(
        "rvsp",
        "mmHg",
        5.0,
        200.0,
        r"RVSP|right\s+ventricular\s+systolic\s+pressure|(?-i:RV)\s+systolic\s+pressure",
    ),
    _Rule(
        "aortic_root",
        "cm",
        1.0,
        10.0,
        r"ao(?:rtic)?\s+root(?:\s+(?:diameter|dimension|size))?"
        r"|(?:aortic\s+)?sinus(?:es)?\s+of\s+valsalva|aortic\s+sinus(?:es)?",
    ),
    _Rule(
        "ivc_diameter",
        "cm",
        0.2,
        5.0,
        r"(?:IVC|inferior\s+vena\s+cava)(?:\s+(?:diameter|size|dimension))?",
    ),
    _Rule(
        "av_peak_velocity",
        "m/s",
        0.2,
        8.0,
        r"(?:AV|aortic(?:\s+valve)?|transaortic)\s+(?:peak\s+|max(?:imum|imal)?\s+)?(?:velocity|vel\.?|V\s*max)"
        r"|peak\s+(?:AV|aortic(?:\s+valve)?|transaortic)\s+(?:jet\s+)?(?:velocity|vel\.?)",
    ),
    _Rule(
        "av_mean_gradient",
        "mmHg",
        0.5,
        200.0,
        r"(?:AV|aortic(?:\s+valve)?|transaortic)\s+mean\s+(?:pressure\s+)?gradient"
        r"|mean\s+(?:AV|aortic(?:\s+valve)?|transaortic)\s+(?:pressure\s+)?gradient"
        r"|mean\s+(?:pressure\s+)?gradient\s+(?:across|through)\s+the\s+aortic\s+valve"
        r"|AV\s+(?:MG|mean\s+PG)",
    ),
    _Rule(
        "av_peak_gradient",
        "mmHg",
        1.0,
        300.0,
        r"(?:AV|aortic(?:\s+valve)?|transaortic)\s+(?:peak|max(?:imum|imal)?)\s+(?:pressure\s+)?gradient"
        r"|(?:peak|max(?:imum|imal)?)\s+(?:AV|aortic(?:\s+valve)?|transaortic)\s+(?:pressure\s+)?gradient"
        r"|(?:peak|max(?:imum|imal)?)\s+(?:pressure\s+)?gradient\s+(?:across|through)\s+the\s+aortic\s+valve"
        r"|AV\s+(?:peak\s+|max\s+)?PG",
    ),
    _Rule(
        "ava",
        "cm2",
        0.1,
        8.0,
        r"AVA|aortic\s+valve\s+area|AV\s+area",
    ),
    _Rule(
        "e_e_prime",
        "",
        1.0,
        60.0,
        r"E\s*/\s*e(?:\s*(?:'|′|’|prime))?(?:\s+ratio)?|E\s+to\s+e(?:'|′|’|\s*prime)\s+ratio",
    ),
)

CANONICAL_UNITS: dict[str, str] = {rule.name: rule.unit for rule in _RULES}
"""Canonical unit of each measurement name ("" for the unitless E/e' ratio)."""

# Factor from a normalised written unit (lower case, no spaces, "2" for squared) to the canonical one.
_FACTORS: dict[str, dict[str, float]] = {
    "%": {"%": 1.0},
    "cm": {"cm": 1.0, "mm": 0.1},
    "mm": {"mm": 1.0, "cm": 10.0},
    "cm2": {"cm2": 1.0, "sqcm": 1.0, "mm2": 0.01},
    "mL/m2": {"ml/m2": 1.0, "cc/m2": 1.0},
    "mmHg": {"mmhg": 1.0},
    "m/s": {"m/s": 1.0, "m/sec": 1.0, "cm/s": 0.01, "cm/sec": 0.01},
    "": {"": 1.0},
}

_FILLER_WORDS = (
    "is|was|are|were|of|at|by|to|be|about|around|approx\\.?|approximately|estimated|calculated|measured|"
    "measures|measuring|visually|quantitatively|qualitatively|mildly|moderately|severely|mild|moderate|"
    "severe|dilated|enlarged|increased|elevated|reduced|decreased|depressed|low|normal|preserved|"
    "borderline|biplane|simpson'?s|method|mod|2d|3d|m-mode|doppler|continuity|equation|vti|planimetry|"
    "peak|mean|max|maximum|average|avg|septal|lateral|medial|ratio|in|diastole|systole|the|range|"
    "greater|less|than|between|above|below|within|index|indexed|diameter|dimension|size|value|now|"
    "currently|today|visual|estimate|an|a"
)
# Between a label and its number: punctuation and filler words only, never another label or a
# sentence end, so a number is never borrowed from the next clause.
_GAP = rf"(?:\s*(?:[:=~≈<>≥≤(),\-–]|(?:{_FILLER_WORDS})(?!\w)))*?\s*"
_NUMBER = r"(?:(?<=\s)-)?(?:\d+(?:\.\d+)?|\.\d+)"
_RANGE = r"(?:\s*%?\s*(?:-|–|—|to|and)\s*(?P<hi>\d+(?:\.\d+)?|\.\d+))?"
_UNIT = (
    r"(?:\s*(?P<unit>mm\s*hg|(?:ml|cc)\s*/\s*m(?:2|²|\^2)|cm\s*/\s*s(?:ec)?|m\s*/\s*s(?:ec)?|"
    r"(?:cm|mm)(?:2|²|\^2)|sq\.?\s*cm|mm|cm|%)(?![a-z0-9]))?"
)


def _compile(rule: _Rule) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w)(?:{rule.label})(?!\w){_GAP}(?P<lo>{_NUMBER}){_RANGE}{_UNIT}", re.IGNORECASE)


@functools.cache
def _patterns() -> tuple[tuple[_Rule, re.Pattern[str]], ...]:
    """The compiled rules (compiled on first use: importing this module stays cheap)."""
    return tuple((rule, _compile(rule)) for rule in _RULES)


def _unit_key(unit: str | None) -> str:
    if not unit:
        return ""
    key = "".join(unit.lower().split()).replace("²", "2").replace("^2", "2").replace("sq.", "sq")
    return key


def _measurement(rule: _Rule, match: re.Match[str]) -> Measurement | None:
    """The match as a Measurement in canonical units, or None when its unit or value is implausible."""
    factor = _FACTORS[rule.unit].get(_unit_key(match["unit"]))
    if factor is None:
        return None
    low = float(match["lo"])
    value = low
    if match["hi"] is not None:
        high = float(match["hi"])
        if high < low:
            return None
        value = (low + high) / 2
    value = round(value * factor, 4)
    if not rule.low <= value <= rule.high:
        return None
    return Measurement(name=rule.name, value=value, unit=rule.unit)


@dataclass(frozen=True)
class MeasurementSpan:
    """A measurement found in a text and where its value stands: ``text[start:end]`` is the number,
    range and unit (``"60 to 65%"``), without the label."""

    measurement: Measurement
    start: int
    end: int


def measurement_spans(text: str) -> list[MeasurementSpan]:
    """Measurements named in ``text`` with the spans of their values, in text order, at most one per name.

    Never raises on odd text: anything that does not read as label, number and fitting unit is
    skipped.
    """
    found: list[tuple[int, int, MeasurementSpan]] = []
    for order, (rule, pattern) in enumerate(_patterns()):
        for match in pattern.finditer(text):
            measurement = _measurement(rule, match)
            if measurement is not None:
                end = match.end("unit") if match["unit"] is not None else match.end()
                found.append((match.start(), order, MeasurementSpan(measurement, match.start("lo"), end)))
                break
    found.sort(key=lambda item: (item[0], item[1]))
    return [span for _, _, span in found]


def extract_measurements(text: str) -> list[Measurement]:
    """Measurements named in ``text``, in text order, at most one per name (the first plausible one).

    Never raises on odd text: anything that does not read as label, number and fitting unit is
    skipped.
    """
    return [span.measurement for span in measurement_spans(text)]
