"""Echo report text for the simulated archive, written from the ground truth.

Each report has a header that names the patient (name, MRN, study date: the identifiers that
de-identification must scrub), an indication, the 15 anatomical sections of ``ECHO_SECTIONS`` in
order, optionally a conclusion, and, for a follow-up study, a comparison with the prior study built
from :func:`rag.simulate.truth.changes`. Phrasing, heading style, number formatting and which normal
findings are left unsaid all vary with the random generator, as they do between readers; abnormal
findings are always stated (a mild regurgitation is occasionally left out, as in practice).

Severity follows the ASE chamber quantification cut-offs (sex-specific for LV diameter, wall thickness,
LA diameter and LVEF). :class:`SimReport` records which truth fields the text states and the text of
each anatomical section, so that the parser, the measurement reader and the benchmarks can be scored
against it. The same generator state always gives the same text.

Modules: :mod:`~rag.simulate.reports.writer` (assembly, :class:`SimReport`),
:mod:`~rag.simulate.reports.grades` (severity grades, which section states each field),
:mod:`~rag.simulate.reports.composer` with the section writers :mod:`~rag.simulate.reports.chambers`,
:mod:`~rag.simulate.reports.valves`, :mod:`~rag.simulate.reports.vessels` and
:mod:`~rag.simulate.reports.findings` (all sections, conclusion), :mod:`~rag.simulate.reports.header`
(header, indication), :mod:`~rag.simulate.reports.comparison`, :mod:`~rag.simulate.reports.layout`
(headings, prose) and :mod:`~rag.simulate.reports.wording` (shared phrasing helpers).
"""

from rag.simulate.reports.grades import FINDING_SECTIONS, finding_grades
from rag.simulate.reports.writer import REPORT_STYLES, SimReport, write_patient_reports, write_report

__all__ = [
    "FINDING_SECTIONS",
    "REPORT_STYLES",
    "SimReport",
    "finding_grades",
    "write_patient_reports",
    "write_report",
]
