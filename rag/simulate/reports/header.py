"""The top of a report: header lines that name the patient (the identifiers de-identification must
scrub) and the indication, which follows the patient's course."""

from __future__ import annotations

import datetime as dt

import numpy as np

from rag.simulate.reports.wording import chance, format_date, pick
from rag.simulate.truth import Course, PatientTruth, StudyTruth
from rag.vocab.cutoffs import half_up


def _name(patient: PatientTruth, rng: np.random.Generator) -> str:
    last, _, first = patient.name.partition("^")
    return pick(rng, (f"{last}, {first}", f"{last.title()}, {first.title()}", f"{first.title()} {last.title()}"))


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def header_lines(
    patient: PatientTruth, study: StudyTruth, rng: np.random.Generator, date_style: int
) -> tuple[list[str], bool]:
    """Header lines, and whether they state the heart rate."""
    date = format_date(study.date, date_style)
    name = _name(patient, rng)
    heart_rate = f"{half_up(study.heart_rate)} bpm"
    title = pick(
        rng, ("TRANSTHORACIC ECHOCARDIOGRAM", "Transthoracic Echocardiography Report", "ECHOCARDIOGRAM REPORT", "")
    )
    lines = [title] if title else []
    form = int(rng.integers(3))
    with_rate = chance(rng, 0.5)
    if form == 0:
        lines.append(f"Patient: {name}  MRN: {patient.patient_id}  Date: {date}")
        if with_rate:
            lines.append(f"HR: {heart_rate}")
    elif form == 1:
        sex = "Male" if patient.sex == "M" else "Female"
        lines += [
            f"Patient Name: {name}",
            f"MRN: {patient.patient_id}",
            f"DOB: {format_date(patient.birth_date, date_style)}",
            f"Age: {_age(patient.birth_date, study.date)}  Sex: {sex}",
            f"Study Date: {date}",
        ]
        if with_rate:
            lines.append(f"Heart Rate: {heart_rate}")
    else:
        lines.append(f"Name: {name} | Patient ID: {patient.patient_id} | Exam Date: {date}")
        lines.append("Study: Transthoracic echocardiogram, 2D, M-mode and Doppler")
        if with_rate:
            lines.append(f"Rhythm: Sinus rhythm, {heart_rate}")
    if chance(rng, 0.3):
        lines.append(f"Image quality: {pick(rng, ('Good', 'Adequate', 'Technically difficult'))}")
    return lines, with_rate


def indication_line(patient: PatientTruth, study: StudyTruth, rng: np.random.Generator) -> str:
    follow_up = study.study_index > 0
    course = patient.course
    options: tuple[str, ...]
    if course is Course.CARDIOTOXICITY:
        options = (
            ("Surveillance of LV function during trastuzumab therapy", "Follow-up of chemotherapy cardiotoxicity")
            if follow_up
            else ("Baseline assessment before anthracycline chemotherapy", "Breast cancer, pre-chemotherapy evaluation")
        )
    elif course is Course.EFFUSION:
        options = (
            ("Follow-up of pericardial effusion", "Pericarditis, reassess")
            if follow_up
            else ("Pleuritic chest pain", "Chest pain, rule out pericardial effusion")
        )
    elif course is Course.VALVE_PROGRESSION:
        if study.aortic_stenosis and follow_up:
            options = ("Follow-up of aortic stenosis", "Aortic stenosis surveillance")
        elif study.mr and follow_up:
            options = ("Follow-up of mitral regurgitation",)
        else:
            options = ("Systolic murmur", "Murmur, evaluate valves")
    elif course is Course.DILATED:
        options = (
            ("Heart failure, follow-up", "Cardiomyopathy, reassess LV function")
            if follow_up
            else (
                "Dyspnea and leg edema",
                "Shortness of breath on exertion",
            )
        )
    else:
        options = (
            "Dyspnea on exertion",
            "Hypertension",
            "Palpitations",
            "Preoperative assessment",
            "Chest pain",
            "Syncope",
            "Routine follow-up" if follow_up else "Abnormal ECG",
        )
    return f"{pick(rng, ('Indication', 'Indication', 'Reason for study', 'Clinical history'))}: {pick(rng, options)}."
