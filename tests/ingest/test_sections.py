"""Report parsing: echo sections, chest X-ray headings, the IU (Open-i) XML collection."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.core.errors import DecodeError
from rag.ingest.sections import ParsedReport, detect_report_kind, parse_cxr_report, parse_echo_report, parse_iu_xray_xml
from rag.vocab.sections import CXR_SECTIONS, ECHO_SECTIONS, FREE_TEXT

IU_REPORTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "iu_xray_reports" / "NLMCXR_reports.tgz"

# --------------------------------------------------------------------------------------------------
# Echo reports, one per shape.
# --------------------------------------------------------------------------------------------------

HEADED_UPPER = """\
Patient: DOE, JANE
Date: 2024-03-02
Indication: Dyspnea. Evaluate LV function.

LEFT VENTRICLE:
Normal cavity size. Mild concentric hypertrophy. LVEF 55-60%.

RIGHT VENTRICLE: Normal size and systolic function. TAPSE 2.1 cm.

LEFT ATRIUM
Mildly dilated. LA volume index 38 mL/m2.

MITRAL VALVE: Mildly thickened leaflets. Trace MR.
AORTIC VALVE: Trileaflet with mild sclerosis. No AS or AR.
PERICARDIUM: No effusion.

CONCLUSION:
1. Normal left ventricular systolic function.
2. Mild left atrial enlargement.
"""

UNHEADED_PROSE = (
    "Technically difficult study due to body habitus. The left ventricular ejection fraction is 55%. "
    "There is hypokinesis of the inferior wall. The right ventricle is normal in size. "
    "Trace mitral regurgitation. The aortic valve is trileaflet; there is no aortic stenosis. "
    "The aortic root measures 3.4 cm. The LVOT is unobstructed. "
    "The pulmonic valve is not well seen. The main pulmonary artery is mildly dilated. "
    "Normal pulmonary venous flow. Estimated PASP 45 mmHg. "
    "The IVC is dilated with <50% inspiratory collapse. No pericardial effusion. "
    "Calcified plaque is seen in the descending thoracic aorta. The average heart rate was 72 bpm."
)

ECHOPRIME_STRING = (
    "Left Ventricle: The left ventricle is normal in size. Left ventricular systolic function is normal. "
    "[SEP] Resting Segmental Wall Motion Analysis: No regional wall motion abnormalities. "
    "[SEP] Aortic Valve: Mild aortic stenosis. [SEP] Aorta: The aortic root is normal in size. "
    "[SEP] IVC: The inferior vena cava is normal in size. [SEP] Pulmonary Veins: Normal pulmonary venous flow."
)

MARKDOWN_ABBREVIATED = """\
## LV
Normal size. EF 60%.
## Wall motion
Akinesis of the apical segments.
RV: Normal.
Mitral valve - Mild MR; no MS.
Tricuspid valve – Moderate TR.
## Measurements
IVSd 1.0 cm. Aortic root 3.1 cm.
"""

FINDINGS_IMPRESSION = """\
FINDINGS:
The left atrium is moderately dilated. The right atrium is normal. A PFO is seen on bubble study.
Normal left and right ventricular function. There is mild pulmonary regurgitation.
Comparison: prior study 2023 showed similar findings.

IMPRESSION:
Moderate left atrial enlargement. Pulmonary artery pressure is normal.
"""

SHOUTED_COMBINED = """\
LEFT ATRIUM / RIGHT ATRIUM:
THE LEFT ATRIUM IS NORMAL IN SIZE. THE RIGHT ATRIUM IS DILATED. NORMAL SIZE.
ATRIAL SEPTUM: INTACT.
AORTA: NORMAL SIZE AS IS THE ARCH.
THE MITRAL VALVE IS NORMAL AS IS THE TRICUSPID VALVE.
"""

ALL_ECHO_REPORTS = (
    HEADED_UPPER,
    UNHEADED_PROSE,
    ECHOPRIME_STRING,
    MARKDOWN_ABBREVIATED,
    FINDINGS_IMPRESSION,
    SHOUTED_COMBINED,
)


def test_echo_constants() -> None:
    assert len(ECHO_SECTIONS) == 15
    assert ECHO_SECTIONS[:3] == ("Left Ventricle", "Resting Segmental Wall Motion Analysis", "Right Ventricle")
    assert ECHO_SECTIONS[-3:] == ("IVC", "Pulmonary Artery", "Pulmonary Veins")
    assert FREE_TEXT == "Free Text"
    assert CXR_SECTIONS == ("COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION")


def test_headed_report_keeps_headers_and_sends_admin_and_summary_to_free_text() -> None:
    report = parse_echo_report(HEADED_UPPER)
    assert report.kind == "echo"
    assert report.as_dict() == {
        "Left Ventricle": "Normal cavity size. Mild concentric hypertrophy. LVEF 55-60%.",
        "Right Ventricle": "Normal size and systolic function. TAPSE 2.1 cm.",
        "Left Atrium": "Mildly dilated. LA volume index 38 mL/m2.",
        "Mitral Valve": "Mildly thickened leaflets. Trace MR.",
        "Aortic Valve": "Trileaflet with mild sclerosis. No AS or AR.",
        "Pericardium": "No effusion.",
        FREE_TEXT: "Patient: DOE, JANE Date: 2024-03-02 Indication: Dyspnea. Evaluate LV function. "
        "Normal left ventricular systolic function. Mild left atrial enlargement.",
    }


def test_unheaded_prose_is_classified_sentence_by_sentence() -> None:
    report = parse_echo_report(UNHEADED_PROSE)
    assert report.as_dict() == {
        "Left Ventricle": "The left ventricular ejection fraction is 55%.",
        "Resting Segmental Wall Motion Analysis": "There is hypokinesis of the inferior wall.",
        "Right Ventricle": "The right ventricle is normal in size.",
        "Mitral Valve": "Trace mitral regurgitation.",
        "Aortic Valve": "The aortic valve is trileaflet; there is no aortic stenosis. The LVOT is unobstructed.",
        "Pulmonic Valve": "The pulmonic valve is not well seen.",
        "Pericardium": "No pericardial effusion.",
        "Aorta": "The aortic root measures 3.4 cm. Calcified plaque is seen in the descending thoracic aorta.",
        "IVC": "The IVC is dilated with <50% inspiratory collapse.",
        "Pulmonary Artery": "The main pulmonary artery is mildly dilated. Estimated PASP 45 mmHg.",
        "Pulmonary Veins": "Normal pulmonary venous flow.",
        FREE_TEXT: "Technically difficult study due to body habitus. The average heart rate was 72 bpm.",
    }


def test_echoprime_string() -> None:
    report = parse_echo_report(ECHOPRIME_STRING)
    assert report.as_dict() == {
        "Left Ventricle": "The left ventricle is normal in size. Left ventricular systolic function is normal.",
        "Resting Segmental Wall Motion Analysis": "No regional wall motion abnormalities.",
        "Aortic Valve": "Mild aortic stenosis.",
        "Aorta": "The aortic root is normal in size.",
        "IVC": "The inferior vena cava is normal in size.",
        "Pulmonary Veins": "Normal pulmonary venous flow.",
    }


def test_markdown_abbreviations_and_dash_headers() -> None:
    report = parse_echo_report(MARKDOWN_ABBREVIATED)
    assert report.as_dict() == {
        "Left Ventricle": "Normal size. EF 60%. IVSd 1.0 cm.",
        "Resting Segmental Wall Motion Analysis": "Akinesis of the apical segments.",
        "Right Ventricle": "Normal.",
        "Mitral Valve": "Mild MR; no MS.",
        "Tricuspid Valve": "Moderate TR.",
        "Aorta": "Aortic root 3.1 cm.",
    }


def test_impression_is_classified_when_the_report_has_no_anatomical_headers() -> None:
    report = parse_echo_report(FINDINGS_IMPRESSION)
    assert report.as_dict() == {
        "Left Ventricle": "Normal left and right ventricular function.",
        "Left Atrium": "The left atrium is moderately dilated. Moderate left atrial enlargement.",
        "Right Atrium": "The right atrium is normal.",
        "Atrial Septum": "A PFO is seen on bubble study.",
        "Pulmonic Valve": "There is mild pulmonary regurgitation.",
        "Pulmonary Artery": "Pulmonary artery pressure is normal.",
        FREE_TEXT: "Comparison: prior study 2023 showed similar findings.",
    }


def test_all_caps_and_combined_headers() -> None:
    report = parse_echo_report(SHOUTED_COMBINED)
    assert report.as_dict() == {
        "Left Atrium": "THE LEFT ATRIUM IS NORMAL IN SIZE. NORMAL SIZE.",
        "Right Atrium": "THE RIGHT ATRIUM IS DILATED.",
        "Atrial Septum": "INTACT.",
        # Under the AORTA header everything stays Aorta; "AS" in capitals is not aortic stenosis.
        "Aorta": "NORMAL SIZE AS IS THE ARCH. THE MITRAL VALVE IS NORMAL AS IS THE TRICUSPID VALVE.",
    }


def test_header_scope_ends_at_a_blank_line() -> None:
    report = parse_echo_report("Aorta: Normal size.\n\nTHE MITRAL VALVE IS NORMAL AS IS THE TRICUSPID VALVE.")
    assert report.get("Aorta") == "Normal size."
    assert report.get("Mitral Valve") == "THE MITRAL VALVE IS NORMAL AS IS THE TRICUSPID VALVE."
    assert report.get("Aortic Valve") is None


@pytest.mark.parametrize(
    ("sentence", "section"),
    [
        ("Calcified plaque is noted.", FREE_TEXT),  # "LA" inside "plaque"
        ("The average gradient is low.", FREE_TEXT),  # "AV" inside "average"
        ("No AS.", "Aortic Valve"),
        ("Mild aortic regurgitation.", "Aortic Valve"),
        ("The ascending aorta is mildly dilated.", "Aorta"),
        ("Sinuses of Valsalva 3.9 cm.", "Aorta"),
        ("Pulmonic valve leaflets are thin.", "Pulmonic Valve"),
        ("Pulmonary veins drain normally.", "Pulmonary Veins"),
        ("Severe pulmonary hypertension.", "Pulmonary Artery"),
        ("RVSP is 50 mmHg.", "Pulmonary Artery"),
        ("Right ventricular systolic pressure is 50 mmHg.", "Pulmonary Artery"),
        ("The right ventricular outflow tract is normal.", "Pulmonic Valve"),
        ("The left ventricular outflow tract is normal.", "Aortic Valve"),
        ("Tricuspid aortic valve.", "Aortic Valve"),
        ("Mitral inflow shows impaired relaxation.", "Left Ventricle"),
        ("Grade I diastolic dysfunction.", "Left Ventricle"),
        ("Estimated RA pressure 3 mmHg.", "IVC"),
        ("The interatrial septum is intact.", "Atrial Septum"),
        ("The left ventricle shows hypokinesis of the inferior wall.", "Resting Segmental Wall Motion Analysis"),
        ("The left ventricle is dilated with global hypokinesis.", "Left Ventricle"),
        ("Small pericardial effusion without tamponade.", "Pericardium"),
        ("Sinus rhythm.", FREE_TEXT),
    ],
)
def test_sentence_classification(sentence: str, section: str) -> None:
    assert parse_echo_report(sentence).names == (section,)


def test_sections_follow_schema_order_with_positions() -> None:
    schema = (*ECHO_SECTIONS, FREE_TEXT)
    for text in ALL_ECHO_REPORTS:
        report = parse_echo_report(text)
        positions = [section.position for section in report.sections]
        assert positions == sorted(positions)
        assert all(schema[section.position] == section.name for section in report.sections)
        assert all(section.text for section in report.sections)


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9%]+", text)


def test_no_sentence_is_lost_or_duplicated() -> None:
    report = parse_echo_report(UNHEADED_PROSE)
    assert sorted(_words(" ".join(report.as_dict().values()))) == sorted(_words(UNHEADED_PROSE))


def test_get_and_empty_input() -> None:
    assert parse_echo_report("") == ParsedReport(kind="echo", sections=())
    assert parse_echo_report(" \n\n ").sections == ()
    assert parse_echo_report(HEADED_UPPER).get("Tricuspid Valve") is None


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_echo_parser_never_raises_and_is_deterministic(text: str) -> None:
    first = parse_echo_report(text)
    assert first == parse_echo_report(text)
    assert set(first.names) <= {*ECHO_SECTIONS, FREE_TEXT}


# --------------------------------------------------------------------------------------------------
# Plain-text chest X-ray reports and report kind.
# --------------------------------------------------------------------------------------------------

CXR_TEXT = """\
                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  Cough and fever, evaluate for pneumonia.

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  None.

 FINDINGS:

 There is no focal consolidation, pleural effusion or pneumothorax.  The
 cardiomediastinal silhouette is normal.

 IMPRESSION:

 No acute cardiopulmonary process.
"""


def test_plain_text_cxr_report() -> None:
    report = parse_cxr_report(CXR_TEXT)
    assert report.kind == "cxr"
    assert report.as_dict() == {
        "COMPARISON": "None.",
        "INDICATION": "Cough and fever, evaluate for pneumonia.",
        "FINDINGS": "There is no focal consolidation, pleural effusion or pneumothorax. "
        "The cardiomediastinal silhouette is normal.",
        "IMPRESSION": "No acute cardiopulmonary process.",
        FREE_TEXT: "CHEST (PA AND LAT) Chest PA and lateral",
    }


def test_cxr_heading_synonyms_inline_headings_and_preamble() -> None:
    text = (
        "Portable view.\nClinical history: cough. History of smoking.\n"
        "Findings: Lungs are clear. IMPRESSION: Normal.\nconclusion\nNo change."
    )
    assert parse_cxr_report(text).as_dict() == {
        "INDICATION": "cough. History of smoking.",
        "FINDINGS": "Lungs are clear.",
        "IMPRESSION": "Normal. No change.",
        FREE_TEXT: "Portable view.",
    }


def test_detect_report_kind() -> None:
    for text in ALL_ECHO_REPORTS:
        assert detect_report_kind(text) == "echo"
    assert detect_report_kind(CXR_TEXT) == "cxr"
    assert detect_report_kind("") == "echo"


# --------------------------------------------------------------------------------------------------
# Indiana University chest X-ray collection (Open-i XML).
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iu_xml() -> dict[str, bytes]:
    if not IU_REPORTS.is_file():
        pytest.skip(f"IU X-ray reports not found at {IU_REPORTS}")
    blobs: dict[str, bytes] = {}
    with tarfile.open(IU_REPORTS, "r:gz") as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                blobs[member.name] = handle.read()
    return blobs


def _labelled_non_empty(xml: bytes, label: str) -> bool:
    root = ET.fromstring(xml)  # the collection declares no DOCTYPE
    return any(
        element.get("Label") == label and "".join(element.itertext()).strip() for element in root.iter("AbstractText")
    )


def test_iu_collection_parses_completely(iu_xml: dict[str, bytes]) -> None:
    assert len(iu_xml) == 3955
    reports = {name: parse_iu_xray_xml(xml) for name, xml in iu_xml.items()}
    assert len({report.report_id for report in reports.values()}) == 3955
    for label in ("FINDINGS", "IMPRESSION"):
        expected = sum(_labelled_non_empty(xml, label) for xml in iu_xml.values())
        found = sum(report.report.get(label) is not None for report in reports.values())
        assert found == expected
    assert sum(report.report.get("FINDINGS") is not None for report in reports.values()) == 3425
    assert sum(report.report.get("IMPRESSION") is not None for report in reports.values()) == 3921
    assert all(set(report.report.names) <= set(CXR_SECTIONS) for report in reports.values())
    assert sum(detect_report_kind(" ".join(r.report.as_dict().values())) == "cxr" for r in reports.values()) > 3800


def test_iu_report_cxr1(iu_xml: dict[str, bytes]) -> None:
    report = parse_iu_xray_xml(iu_xml["ecgen-radiology/1.xml"])
    assert report.report_id == "CXR1"
    assert report.image_ids == ("CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001")
    assert report.mesh_major == ("normal",)
    assert report.report.kind == "cxr"
    assert report.report.as_dict() == {
        "COMPARISON": "None.",
        "INDICATION": "Positive TB test",
        "FINDINGS": "The cardiac silhouette and mediastinum size are within normal limits. "
        "There is no pulmonary edema. There is no focal consolidation. "
        "There are no XXXX of a pleural effusion. There is no evidence of pneumothorax.",
        "IMPRESSION": "Normal chest x-XXXX.",
    }


def test_iu_report_accepts_str_and_omits_empty_sections(iu_xml: dict[str, bytes]) -> None:
    name = next(name for name, xml in iu_xml.items() if b'<AbstractText Label="FINDINGS"/>' in xml)
    report = parse_iu_xray_xml(iu_xml[name].decode("utf-8"))
    assert report.report.get("FINDINGS") is None
    assert report.report.get("IMPRESSION")


MINIMAL_IU = (
    '<?xml version="1.0" encoding="utf-8"?><eCitation><uId id="CXR9"/>'
    '<Abstract><AbstractText Label="FINDINGS">Clear &amp; normal.</AbstractText>'
    '<AbstractText Label="IMPRESSION"> </AbstractText></Abstract>'
    "<MeSH><major>normal</major><automatic>clear</automatic></MeSH></eCitation>"
)

ENTITY_BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n'
    '<eCitation><uId id="CXR0"/><AbstractText Label="FINDINGS">&lol3;</AbstractText></eCitation>'
)


def test_iu_minimal_document() -> None:
    report = parse_iu_xray_xml(MINIMAL_IU.encode())
    assert report.report_id == "CXR9"
    assert report.image_ids == ()
    assert report.report.as_dict() == {"FINDINGS": "Clear & normal."}
    assert report.mesh_major == ("normal",)
    assert report.mesh_automatic == ("clear",)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (MINIMAL_IU[: len(MINIMAL_IU) // 2], "not well-formed"),
        (b"", "not well-formed"),
        (ENTITY_BOMB, "DOCTYPE"),
        (ENTITY_BOMB.encode("utf-16"), "DOCTYPE"),
        ("<html><body/></html>", "expected <eCitation>"),
        ("<eCitation><Abstract/></eCitation>", "uId"),
    ],
)
def test_iu_malformed_xml_raises_decode_error(data: bytes | str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as caught:
        parse_iu_xray_xml(data)
    assert "\n" not in str(caught.value)
