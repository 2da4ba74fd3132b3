from __future__ import annotations

import numpy as np
import pytest

from rag.simulate.reports import finding_grades, write_report
from rag.simulate.truth import simulate_patients
from rag.vocab.findings import PHENOTYPES
from rag.vocab.grades import statement_grade


@pytest.mark.parametrize(
    ("phenotype", "text", "grade"),
    [
        ("mitral_regurgitation", "The mitral valve is structurally normal. Trace MR.", 0),
        ("mitral_regurgitation", "Mitral regurgitation is moderate.", 2),
        ("mitral_regurgitation", "No significant mitral regurgitation.", 0),
        ("mitral_regurgitation", "Mild mitral stenosis.", 0),  # not stated: 0
        ("aortic_stenosis", "Aortic valve sclerosis without stenosis.", 0),
        ("aortic_stenosis", "Severe aortic stenosis and mild aortic regurgitation.", 3),
        ("aortic_regurgitation", "Severe aortic stenosis and mild aortic regurgitation.", 1),
        ("aortic_regurgitation", "No aortic stenosis or regurgitation.", 0),
        ("pericardial_effusion", "Small pericardial effusion without echocardiographic evidence of tamponade.", 1),
        ("pericardial_effusion", "There is a large circumferential pericardial effusion.", 3),
        ("pericardial_effusion", "The pericardium is normal without effusion.", 0),
        ("lv_systolic_dysfunction", "LVEF 35%. Left ventricular systolic function is moderately reduced.", 2),
        ("lv_systolic_dysfunction", "Severely reduced left ventricular systolic function.", 3),
        ("lv_systolic_dysfunction", "LVEF 60%.", 0),
        ("rv_systolic_dysfunction", "RV systolic function is depressed (TAPSE 12 mm).", 1),
        ("dilated_ivc", "The IVC is dilated (2.5 cm) with <50% respiratory collapse.", 1),
        ("dilated_ivc", "The IVC is not dilated.", 0),
        ("wall_motion_abnormality", "Inferior hypokinesis.", 1),
        ("wall_motion_abnormality", "No regional wall motion abnormalities.", 0),
        ("pulmonary_hypertension", "Estimated PASP 52 mmHg, consistent with moderate pulmonary hypertension.", 2),
        ("la_dilation", "Moderate left atrial enlargement (LA diameter 4.5 cm).", 2),
        ("rv_dilation", "Right ventricular size is severely increased.", 3),
    ],
)
def test_keyword_grade_rules(phenotype: str, text: str, grade: int) -> None:
    rule = PHENOTYPES[phenotype].rule
    assert rule is not None
    assert statement_grade(text, rule) == grade


# phenotype -> the truth field of rag.simulate.reports.finding_grades it reads
_TRUTH = {
    "pericardial_effusion": "effusion",
    "mitral_regurgitation": "mr",
    "aortic_regurgitation": "ar",
    "tricuspid_regurgitation": "tr",
    "aortic_stenosis": "aortic_stenosis",
    "rv_dilation": "rv_dilation",
    "rv_systolic_dysfunction": "rv_dysfunction",
    "la_dilation": "la_dilation",
    "ra_dilation": "ra_dilation",
    "dilated_ivc": "ivc_dilated",
    "lv_dilation": "lvedd_cm",
    "lv_hypertrophy": "wall_cm",
    "lv_systolic_dysfunction": "lvef",
    "wall_motion_abnormality": "wall_motion",
    "pulmonary_hypertension": "pasp_mmhg",
}


def test_rules_read_simulated_reports_like_their_truth() -> None:
    """Every finding a simulated report states is read back at its true grade, from its own section."""
    rng = np.random.default_rng(0)
    checked = dict.fromkeys(_TRUTH, 0)
    for patient in simulate_patients(40, seed=5):
        for k, study in enumerate(patient.studies):
            report = write_report(patient, study, patient.studies[k - 1] if k else None, rng)
            truth = finding_grades(patient, study)
            for name, field in _TRUTH.items():
                if field not in report.mentioned:
                    continue
                rule = PHENOTYPES[name].rule
                assert rule is not None
                text = report.sections.get(PHENOTYPES[name].section, "")
                assert statement_grade(text, rule) == truth[field], (name, text)
                checked[name] += 1
    assert min(checked.values()) >= 20


def test_every_findings_wording_reads_back_as_its_grade() -> None:
    import pytest

    from rag.core.errors import ConfigError
    from rag.vocab.findings import PHENOTYPES

    for p in PHENOTYPES.values():
        if p.kind == "finding":
            assert p.rule is not None
            for grade in range(4):
                assert statement_grade(p.wording(grade), p.rule) == grade, (p.name, grade, p.wording(grade))
    with pytest.raises(ConfigError, match="grade must be 0-3"):
        PHENOTYPES["mitral_regurgitation"].wording(4)
