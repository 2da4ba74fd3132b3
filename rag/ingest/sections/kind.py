"""Tell an echo report from a chest X-ray report by counting cue words."""

from __future__ import annotations

import re

from rag.ingest.sections.model import ReportKind

__all__ = ["detect_report_kind"]

_ECHO_CUES = re.compile(
    r"(?i)(?<!\w)(?:ventric\w*|atri(?:um|al|a)|mitral|tricuspid|pulmonic|aortic valve|ejection fraction|"
    r"lvef|lv|rv|regurgita\w*|stenosis|pericardi\w*|echocardiogra\w*|doppler|ivc|inferior vena cava|"
    r"wall motion|(?:hypo|a|dys)kine\w*|diastolic|systolic|tapse|rvsp|pasp|valve|septum|lvot)(?!\w)"
)
_CXR_CUES = re.compile(
    r"(?i)(?<!\w)(?:lungs?|pleural|pneumothora\w*|consolidation|opacit\w*|atelecta\w*|airspace|"
    r"mediastin\w*|cardiomediastinal|cardiac silhouette|costophrenic|hil(?:a|um|ar)|radiograph\w*|"
    r"x-?ray|chest|ribs?|osseous|bony|granulomas?|hemidiaphragms?|diaphragm|thora\w*|lobes?|"
    r"pulmonary (?:edema|vascularity|nodules?)|infiltrates?|pa and lateral|pneumonia|cardiopulmonary|"
    r"cardiomegaly|heart size|edema|scoliosis|kyphosis|spine|spondyl\w*|vertebra\w*|nodules?|masses|"
    r"interstitial|emphysema|copd|sternotomy|hyperinflat\w*|hyperexpan\w*|tb|tuberculosis|cough)(?!\w)"
)


def detect_report_kind(text: str) -> ReportKind:
    """Guess whether ``text`` is an echo or a chest X-ray report.

    Counts cardiac-echo cue words against chest-radiograph cue words; "cxr" only when the radiograph
    cues outnumber the echo cues, so an empty or cue-less text is "echo".
    """
    echo = len(_ECHO_CUES.findall(text))
    cxr = len(_CXR_CUES.findall(text))
    return "cxr" if cxr > echo else "echo"
