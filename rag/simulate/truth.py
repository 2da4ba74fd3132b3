"""Ground truth of the simulated archive: patients, their studies over time, and each study's findings.

Every simulated pixel and report sentence is derived from these values, so they are the answer key of
the demo, the tests and the benchmarks. Generation is deterministic for a seed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

import numpy as np

GRADES: tuple[str, ...] = ("none", "mild", "moderate", "severe")
EFFUSION_GRADES: tuple[str, ...] = ("none", "small", "moderate", "large")

FIRST_NAMES_F: tuple[str, ...] = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Ana", "Mei",
    "Fatima", "Olga", "Priya", "Amara",
)  # fmt: skip
FIRST_NAMES_M: tuple[str, ...] = (
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Carlos", "Wei",
    "Ahmed", "Ivan", "Arjun", "Kofi",
)  # fmt: skip
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Nguyen",
    "Kowalski",
    "Okafor",
)


class Course(StrEnum):
    """How a patient's heart changes between studies."""

    STABLE = "stable"
    CARDIOTOXICITY = "cardiotoxicity"  # LVEF falls after a cardiotoxic therapy, may partly recover
    EFFUSION = "effusion"  # a pericardial effusion appears, then resolves
    VALVE_PROGRESSION = "valve_progression"  # aortic stenosis or mitral regurgitation worsens
    DILATED = "dilated"  # LV dilates with falling LVEF, secondary MR and LA enlargement


@dataclass(frozen=True)
class StudyTruth:
    """The state of one patient's heart at one study. Grades are 0-3 (see ``GRADES``)."""

    study_index: int  # 0 for the first study of the patient
    date: dt.date
    heart_rate: float  # beats per minute
    lvef: float  # %, 10-75
    lvedd_cm: float  # LV end-diastolic internal diameter
    wall_cm: float  # septal / posterior wall thickness at end diastole (>1.1 = hypertrophy)
    rv_dilation: int
    rv_dysfunction: bool
    la_dilation: int
    ra_dilation: int
    effusion: int  # 0-3, EFFUSION_GRADES
    mr: int  # mitral regurgitation
    ar: int  # aortic regurgitation
    tr: int  # tricuspid regurgitation
    aortic_stenosis: int
    av_thickened: bool
    ivc_dilated: bool
    ivc_collapse: bool  # >50 % inspiratory collapse
    pasp_mmhg: float
    wall_motion: str  # "normal" or the abnormal region, e.g. "inferior hypokinesis"

    @property
    def lvesd_cm(self) -> float:
        """LV end-systolic diameter consistent with the LVEF (Teichholz-like cube relation)."""
        return float(self.lvedd_cm * (1.0 - self.lvef / 100.0) ** (1.0 / 3.0) * 1.05)

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["date"] = self.date.isoformat()
        row["lvesd_cm"] = round(self.lvesd_cm, 2)
        return row


@dataclass(frozen=True)
class PatientTruth:
    """A simulated patient with fake but realistic identity and 1-4 studies months apart."""

    index: int
    patient_id: str
    name: str  # DICOM PN, "LAST^FIRST"
    sex: str  # "M" | "F"
    birth_date: dt.date
    course: Course
    studies: tuple[StudyTruth, ...] = field(default_factory=tuple)


def _baseline(rng: np.random.Generator, date: dt.date) -> StudyTruth:
    """A first study. Right-heart, aortic-valve and IVC findings are drawn more often than in a
    clinic's population (about one patient in four to five has each), so that an archive of a few hundred
    patients holds enough of every grade to learn and to score them."""
    abnormal = rng.random() < 0.3
    return StudyTruth(
        study_index=0,
        date=date,
        heart_rate=float(rng.uniform(55, 95)),
        lvef=float(rng.uniform(30, 45) if abnormal and rng.random() < 0.5 else rng.uniform(55, 68)),
        lvedd_cm=float(rng.uniform(4.2, 5.4)),
        wall_cm=float(rng.uniform(1.2, 1.5) if rng.random() < 0.2 else rng.uniform(0.8, 1.05)),
        rv_dilation=int(rng.random() < 0.2) * int(rng.integers(1, 4)),
        rv_dysfunction=bool(rng.random() < 0.15),
        la_dilation=int(rng.random() < 0.25) * int(rng.integers(1, 4)),
        ra_dilation=int(rng.random() < 0.22) * int(rng.integers(1, 4)),
        effusion=int(rng.random() < 0.1),
        mr=int(rng.choice(4, p=[0.55, 0.3, 0.1, 0.05])),
        ar=int(rng.choice(4, p=[0.62, 0.2, 0.12, 0.06])),
        tr=int(rng.choice(4, p=[0.5, 0.3, 0.13, 0.07])),
        aortic_stenosis=int(rng.choice(4, p=[0.72, 0.1, 0.11, 0.07])),
        av_thickened=bool(rng.random() < 0.2),
        ivc_dilated=bool(rng.random() < 0.2),
        ivc_collapse=True,
        pasp_mmhg=float(rng.uniform(20, 34)),
        wall_motion="normal",
    )


def _consistent(s: StudyTruth) -> StudyTruth:
    """Derived findings that follow from the others (so the archive is physiologically coherent)."""
    wall_motion = s.wall_motion
    if s.lvef < 45 and wall_motion == "normal":
        wall_motion = "global hypokinesis"
    elif s.lvef >= 50 and wall_motion == "global hypokinesis":
        wall_motion = "normal"  # recovered function
    av_thickened = s.av_thickened or s.aortic_stenosis > 0
    ivc_collapse = not s.ivc_dilated or s.ra_dilation < 2
    pasp = s.pasp_mmhg + 8.0 * max(s.tr - 1, 0) + (6.0 if s.ivc_dilated else 0.0)
    return replace(
        s,
        lvef=float(np.clip(s.lvef, 10, 75)),
        wall_motion=wall_motion,
        av_thickened=av_thickened,
        ivc_collapse=ivc_collapse,
        pasp_mmhg=float(round(pasp, 1)),
    )


def _next(prev: StudyTruth, course: Course, step: int, n: int, rng: np.random.Generator, date: dt.date) -> StudyTruth:
    s = replace(
        prev, study_index=step, date=date, heart_rate=float(np.clip(prev.heart_rate + rng.normal(0, 6), 50, 110))
    )
    if course is Course.CARDIOTOXICITY:
        if step == 1:
            s = replace(s, lvef=prev.lvef - float(rng.uniform(12, 22)))
        elif step >= 2:
            s = replace(s, lvef=prev.lvef + float(rng.uniform(-3, 8)))
    elif course is Course.EFFUSION:
        if step == 1:
            s = replace(s, effusion=int(rng.integers(1, 4)))
        elif step >= 2:
            s = replace(s, effusion=max(prev.effusion - int(rng.integers(1, 4)), 0))
    elif course is Course.VALVE_PROGRESSION:
        if prev.aortic_stenosis > 0 or rng.random() < 0.5:
            s = replace(s, aortic_stenosis=min(prev.aortic_stenosis + 1, 3), av_thickened=True)
        else:
            s = replace(s, mr=min(prev.mr + 1, 3), la_dilation=min(prev.la_dilation + int(prev.mr >= 1), 3))
    elif course is Course.DILATED:
        s = replace(
            s,
            lvedd_cm=prev.lvedd_cm + float(rng.uniform(0.3, 0.7)),
            lvef=prev.lvef - float(rng.uniform(6, 12)),
            mr=min(prev.mr + 1, 3),
            la_dilation=min(prev.la_dilation + 1, 3),
        )
    else:  # stable: measurement noise only
        s = replace(s, lvef=prev.lvef + float(rng.normal(0, 2)), lvedd_cm=prev.lvedd_cm + float(rng.normal(0, 0.1)))
    return _consistent(s)


def simulate_patients(n: int, seed: int = 0, *, start: dt.date = dt.date(2019, 1, 1)) -> list[PatientTruth]:
    """``n`` patients, each with 1-4 studies 2-9 months apart following one :class:`Course`."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    courses = list(Course)
    patients = []
    for i in range(n):
        course = courses[int(rng.choice(len(courses), p=[0.4, 0.15, 0.15, 0.15, 0.15]))]
        n_studies = int(rng.choice([1, 2, 3, 4], p=[0.2, 0.35, 0.3, 0.15]))
        if course is not Course.STABLE:
            n_studies = max(n_studies, 2)
        date = start + dt.timedelta(days=int(rng.integers(0, 720)))
        studies = [_consistent(_baseline(rng, date))]
        for k in range(1, n_studies):
            date = date + dt.timedelta(days=int(rng.integers(60, 270)))
            studies.append(_next(studies[-1], course, k, n_studies, rng, date))
        sex = "F" if rng.random() < 0.5 else "M"
        last = LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]
        names = FIRST_NAMES_F if sex == "F" else FIRST_NAMES_M
        first = names[int(rng.integers(len(names)))]
        name = f"{last.upper()}^{first.upper()}"
        birth = dt.date(int(rng.integers(1935, 2000)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
        patients.append(
            PatientTruth(
                index=i,
                patient_id=f"MRN{int(rng.integers(10**6, 10**7))}",
                name=name,
                sex=sex,
                birth_date=birth,
                course=course,
                studies=tuple(studies),
            )
        )
    return patients


def changes(prior: StudyTruth, current: StudyTruth) -> dict[str, str]:
    """The findings that changed between two studies, as ``name -> "before -> after"``."""
    out: dict[str, str] = {}
    if abs(current.lvef - prior.lvef) >= 8:
        out["lvef"] = f"{prior.lvef:.0f} -> {current.lvef:.0f}"
    for name in ("effusion", "mr", "ar", "tr", "aortic_stenosis", "rv_dilation", "la_dilation", "ra_dilation"):
        a, b = getattr(prior, name), getattr(current, name)
        if a != b:
            out[name] = f"{a} -> {b}"
    if abs(current.lvedd_cm - prior.lvedd_cm) >= 0.5:
        out["lvedd_cm"] = f"{prior.lvedd_cm:.1f} -> {current.lvedd_cm:.1f}"
    return out
