"""Rendering a drafted report: Markdown with evidence markers and references, one self-contained HTML page with
clip thumbnails and a neighbour panel, and writing by format."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rag.core.clipfile import encode_clip, relative_clip_path, write_atomic
from rag.generate.report import (
    CaseEvidence,
    ClipSummary,
    FindingDraft,
    KBEvidence,
    MeasurementDraft,
    MeasurementEvidence,
    Neighbour,
    NeighbourCase,
    Provenance,
    Report,
    SectionDraft,
    Sentence,
)
from rag.render import RenderError, render_html, render_markdown, write_report
from rag.store import Clip, Patient, Series, Store, Study, open_store

LV_1 = "The left ventricle is normal in size with normal wall thickness."
LV_2 = "Left ventricular ejection fraction is estimated at 55%."
MV_1 = "There is mild mitral regurgitation <script>alert(1)</script>."
GROUND_TRUTH = (
    "Left ventricle: The left ventricle is mildly dilated. LVEF 50%.\n"
    "Mitral valve: Trace mitral regurgitation.\n"
    "Aortic valve: The aortic valve is trileaflet."
)

GRAY = relative_clip_path("clips", "aa01")
RGB = relative_clip_path("clips", "bb02")
MISSING = relative_clip_path("clips", "cc03")
CORRUPT = relative_clip_path("clips", "dd04")


def _write_clip(media: Path, rel: Path, pixels: np.ndarray) -> None:
    write_atomic(media / rel, encode_clip(pixels, {"fps": 30.0}))


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A media folder with a grayscale 32 px clip, an RGB 160 px clip and a corrupt file (one clip is missing)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "media"
    _write_clip(folder, GRAY, rng.integers(0, 256, (8, 32, 32, 1), dtype=np.uint8))
    _write_clip(folder, RGB, rng.integers(0, 256, (8, 160, 160, 3), dtype=np.uint8))
    (folder / CORRUPT).parent.mkdir(parents=True, exist_ok=True)
    (folder / CORRUPT).write_bytes(b"not a clip")
    return folder


def _case(study: int, section_id: int, section: str, similarity: float, rank: int) -> CaseEvidence:
    date = {7: dt.date(2019, 3, 2), 9: dt.date(2018, 11, 20)}.get(study)
    return CaseEvidence(
        study_id=study,
        report_section_id=section_id,
        section=section,
        similarity=similarity,
        rank=rank,
        study_date=date,
    )


KB_LV = KBEvidence(
    chunk_id="ase-2015-lv-3", source="ASE/EACVI chamber quantification 2015", heading="LV size", score=0.031
)
KB_MR = KBEvidence(chunk_id="ase-2017-mr-1", source="ASE native valvular regurgitation 2017", score=0.027)


@pytest.fixture
def report() -> Report:
    """A drafted report of study 12 with two neighbour studies (7 and 9), three sections and four clips."""
    lv = SectionDraft(
        name="Left Ventricle",
        sentences=[
            Sentence(
                text=LV_1,
                evidence=[_case(7, 70, "Left Ventricle", 0.82, 1), _case(9, 91, "Left Ventricle", 0.79, 2), KB_LV],
            ),
            Sentence(
                text=LV_2,
                evidence=[
                    MeasurementEvidence(name="lvef", value=55.0, unit="%"),
                    _case(7, 70, "Left Ventricle", 0.82, 1),
                ],
            ),
        ],
    )
    mv = SectionDraft(
        name="Mitral Valve",
        sentences=[Sentence(text=MV_1, evidence=[_case(9, 93, "Mitral Valve", 0.74, 1), KB_MR])],
    )
    return Report(
        study_id=12,
        patient_pseudonym="P7c1e",
        study_date=dt.date(2021, 5, 4),
        sections=[lv, mv, SectionDraft(name="Pericardium")],
        measurements=[
            MeasurementDraft(
                name="lvef",
                section="Left Ventricle",
                value=55.0,
                unit="%",
                neighbours=[
                    Neighbour(study_id=4, similarity=0.70),
                    Neighbour(study_id=7, similarity=0.82),
                    Neighbour(study_id=5, similarity=0.61),
                    Neighbour(study_id=9, similarity=0.79),
                ],
                n_searched=10,
            ),
            MeasurementDraft(
                name="lvedd",
                section="Left Ventricle",
                value=4.85,
                unit="cm",
                neighbours=[Neighbour(study_id=7, similarity=0.82)],
                n_searched=10,
            ),
        ],
        findings=[
            FindingDraft(
                name="pericardial_effusion",
                section="Pericardium",
                probability=0.12,
                positive=False,
                threshold=0.4,
                grade_probabilities=(0.88, 0.1, 0.02, 0.0),
            ),
            FindingDraft(name="mitral_regurgitation", section="Mitral Valve", probability=0.7),
        ],
        clips=[
            ClipSummary(clip_id=101, path=str(GRAY), view="A4C", view_probability=0.93, stored_view="A4C"),
            ClipSummary(clip_id=102, path=str(RGB), view="Parasternal_Long", view_probability=0.88, stored_view="A2C"),
            ClipSummary(clip_id=103, path=str(MISSING), view="A2C", view_probability=0.5),
            ClipSummary(clip_id=104, path=str(CORRUPT), view="SSN", view_probability=0.6),
        ],
        neighbours=[
            NeighbourCase(
                study_id=9,
                patient_pseudonym="P0b2",
                study_date=dt.date(2018, 11, 20),
                similarity=0.79,
                sections=["Left Ventricle", "Mitral Valve"],
            ),
            NeighbourCase(
                study_id=7,
                patient_pseudonym="P0a1",
                study_date=dt.date(2019, 3, 2),
                similarity=0.82,
                sections=["Left Ventricle"],
            ),
        ],
        no_evidence=["Pericardium"],
        dropped_context=["study 4 Left Ventricle (token budget)"],
        warnings=["clip 103: view probability below 0.6"],
        provenance=Provenance(
            encoder="echo-video-tiny",
            embeddings="emb-3f2a",
            weights="default",
            k=5,
            generator="extractive",
            created=dt.datetime(2024, 1, 2, 10, 0, tzinfo=dt.UTC),
        ),
    )


class _Page(HTMLParser):
    """Checks that every element is closed in order and records images by the nearest element with an ID."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.images: list[tuple[str | None, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "img":
            owner = next((i for _, i in reversed(self.stack) if i is not None), None)
            self.images.append((owner, attributes.get("src") or ""))
        if tag not in self.VOID:
            self.stack.append((tag, attributes.get("id")))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        opened, _ = self.stack.pop()
        assert opened == tag, f"<{opened}> closed by </{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def images_in(self, owner: str) -> list[str]:
        return [src for where, src in self.images if where == owner]


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed elements: {parser.stack}"
    return parser


def _png(src: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(src[len(prefix) :], validate=True)))
    image.load()
    assert image.format == "PNG"
    return image


def _section(markdown: str, heading: str) -> str:
    """The Markdown under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = markdown.index(heading + "\n")
    end = re.compile(rf"^#{{1,{len(level)}}} ", re.M).search(markdown, start + len(heading))
    return markdown[start : end.start() if end else len(markdown)]


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------


def test_markdown_has_title_banner_sentences_and_markers(report: Report) -> None:
    md = render_markdown(report)
    assert md.startswith("# Draft echo report: study 12\n")
    assert "`P7c1e`" in md and "2021-05-04" in md
    assert "not diagnoses" in md.split("## Draft")[0]
    lines = md.splitlines()
    assert f"- {LV_1} [C1 0.82] [C2 0.79] [K1]" in lines
    assert f"- {LV_2} [M lvef=55%] [C1 0.82]" in lines
    assert r"- There is mild mitral regurgitation \<script>alert(1)\</script>. [C3 0.74] [K2]" in lines
    assert re.search(r"(?<!\\)<", md) is None  # no raw HTML reaches a Markdown viewer
    assert "_No sentence drafted: no prior case to draw on._" in _section(md, "### Pericardium")


def test_markdown_lists_references_measurements_findings_and_provenance(report: Report) -> None:
    md = render_markdown(report)
    refs = _section(md, "## References")
    assert "| C1 | 7 | 2019-03-02 | Left Ventricle | 0.82 | 1 |" in refs
    assert "| C2 | 9 | 2018-11-20 | Left Ventricle | 0.79 | 2 |" in refs
    assert "| C3 | 9 | 2018-11-20 | Mitral Valve | 0.74 | 1 |" in refs
    assert "| K1 | `ase-2015-lv-3` | ASE/EACVI chamber quantification 2015 | LV size | 0.031 |" in refs
    assert "| K2 | `ase-2017-mr-1` | ASE native valvular regurgitation 2017 | — | 0.027 |" in refs
    measurements = _section(md, "## Measurements")
    assert "| `lvef` | Left Ventricle | 55 | % | 4 of 10 | 7 (0.82), 9 (0.79), 4 (0.70) |" in measurements
    assert "5 (0.61)" not in measurements  # only the top three
    assert "| `lvedd` | Left Ventricle | 4.85 | cm | 1 of 10 | 7 (0.82) |" in measurements
    findings = _section(md, "## Findings")
    assert (
        "| `pericardial_effusion` | Pericardium | 0.12 | negative | 0.40 | 0.88 / 0.10 / 0.02 / 0.00 | 0 |" in findings
    )
    assert "| `mitral_regurgitation` | Mitral Valve | 0.70 | — | — | — | 0 |" in findings
    assert "- Pericardium" in _section(md, "## Sections without evidence")
    assert "study 4 Left Ventricle (token budget)" in _section(md, "## Left out of the prompt")
    assert "clip 103: view probability below 0.6" in _section(md, "## Warnings")
    provenance = _section(md, "## Provenance")
    for expected in ("echo-video-tiny", "emb-3f2a", "default", "(k): 5", "extractive", "2024-01-02T10:00:00+00:00"):
        assert expected in provenance


def test_markdown_with_ground_truth_shows_both_texts_per_section(report: Report) -> None:
    md = render_markdown(report, ground_truth=GROUND_TRUTH)
    assert "## Draft and ground truth" in md
    headings = re.findall(r"^### (.+)$", md, re.M)
    assert headings == ["Left Ventricle", "Mitral Valve", "Aortic Valve", "Pericardium"]
    lv = _section(md, "### Left Ventricle")
    assert lv.index("**Draft**") < lv.index(LV_1) < lv.index("**Ground truth**")
    assert "> The left ventricle is mildly dilated. LVEF 50%." in lv
    assert "> Trace mitral regurgitation." in _section(md, "### Mitral Valve")
    av = _section(md, "### Aortic Valve")
    assert "_No sentence drafted._" in av and "> The aortic valve is trileaflet." in av
    assert "_Not in the stored report._" in _section(md, "### Pericardium")


# --------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------


def test_html_is_self_contained_with_one_thumbnail_per_readable_clip(report: Report, media: Path) -> None:
    page = render_html(report, media_dir=media)
    parsed = _parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    thumbs = parsed.images_in("clips")
    assert len(thumbs) == 2 == page.count('<img src="data:image/png;base64,')
    gray, rgb = (_png(src) for src in thumbs)
    assert (gray.mode, gray.size) == ("L", (32, 32))
    assert (rgb.mode, rgb.size) == ("RGB", (128, 128))  # downscaled from 160 px
    text = " ".join(parsed.text)
    assert "Clip file missing" in text and "Clip file unreadable" in text
    assert "Parasternal_Long 0.88" in text and "stored: A2C" in text
    assert "A4C 0.93" in text and "stored: A4C" not in text


def test_html_escapes_report_text_and_links_evidence(report: Report, media: Path) -> None:
    page = render_html(report, media_dir=media)
    parsed = _parse(page)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    text = " ".join(parsed.text)
    for sentence in (LV_1, LV_2, MV_1):
        assert sentence in text
    assert "not diagnoses" in text
    assert '<a class="ev case" href="#ref-c1" title="C1: study 7, 2019-03-02, Left Ventricle, similarity 0.82' in page
    assert '<a class="ev kb" href="#ref-k2"' in page and '<li id="ref-k2">' in page
    assert '<a class="ev measurement" href="#meas-1"' in page and 'id="meas-1"' in page
    # the section's suppliers sit beside it, most similar first
    lv = page[page.index('id="sec-1"') : page.index('id="sec-2"')]
    assert lv.index('<a href="#nb-7">study 7</a>, 2019-03-02') < lv.index('<a href="#nb-9">study 9</a>, 2018-11-20')
    for expected in ("0.12", "negative", "4.85", "7 (0.82), 9 (0.79), 4 (0.70)", "emb-3f2a", "2024-01-02T10:00:00"):
        assert expected in text


def test_html_without_media_dir_shows_placeholders(report: Report) -> None:
    page = render_html(report)
    parsed = _parse(page)
    assert parsed.images == []
    assert page.count("No media folder given") >= len(report.clips)


def test_html_refuses_clip_paths_outside_the_media_folder(report: Report, media: Path) -> None:
    _write_clip(media.parent, Path("outside.npz"), np.zeros((8, 32, 32, 1), dtype=np.uint8))
    clip = ClipSummary(clip_id=1, path="../outside.npz", view="A4C", view_probability=0.9)
    page = render_html(report.model_copy(update={"clips": [clip]}), media_dir=media)
    assert _parse(page).images == []
    assert "Clip path outside the media folder" in page


def test_an_empty_report_renders(report: Report) -> None:
    empty = Report(study_id=3, patient_pseudonym="P1", sections=[], provenance=report.provenance)
    md = render_markdown(empty, ground_truth="")
    assert "No prior case or knowledge-base passage is cited." in md and "## Measurements" not in md
    page = render_html(empty, ground_truth="")
    _parse(page)
    assert "No clip listed for this study." in page and "No neighbour case." in page


def test_html_with_ground_truth_has_a_column_per_section(report: Report) -> None:
    page = render_html(report, ground_truth=GROUND_TRUTH + "\n<b>bold</b>")
    _parse(page)
    assert page.count('<div class="truth-text">') == 4
    assert "The left ventricle is mildly dilated." in page
    assert "Not in the stored report." in page
    assert "<b>bold</b>" not in page


def _stored_clip(series: Series, clip_id: int, view: str | None, path: Path) -> Clip:
    return Clip(
        id=clip_id,
        series=series,
        instance_uid_hash=f"2.25.{clip_id}",
        content_sha256=f"{clip_id:064d}",
        source_sha256=f"{clip_id:064d}",
        source_format="dicom",
        view_label=view,
        view_source="header" if view else None,
        source_frames=8,
        source_height=32,
        source_width=32,
        fps=30.0,
        timing_source="FrameTime",
        photometric="MONOCHROME2",
        is_grayscale=True,
        mask_source="pixels",
        frames=8,
        size=32,
        path=str(path),
    )


@pytest.fixture
def store(tmp_path: Path, media: Path) -> Iterator[Store]:
    """Neighbour study 7 with six stored clips (A4C twice, one unlabelled) and study 9 with none."""
    st = open_store(f"sqlite:///{tmp_path / 'rag.sqlite3'}")
    views = {201: "A2C", 202: "A4C", 203: "A4C", 204: "Subcostal", 205: "Parasternal_Long", 206: None}
    rng = np.random.default_rng(1)
    with st.session() as s:
        seven = Study(id=7, patient=Patient(pseudonym="P0a1"), uid_hash="2.25.7", study_date=dt.date(2019, 3, 2))
        series = Series(study=seven, uid_hash="2.25.70")
        for clip_id, view in views.items():
            rel = relative_clip_path("clips", f"n{clip_id}")
            _write_clip(media, rel, rng.integers(0, 256, (8, 32, 32, 1), dtype=np.uint8))
            s.add(_stored_clip(series, clip_id, view, rel))
        s.add(Study(id=9, patient=Patient(pseudonym="P0b2"), uid_hash="2.25.9", study_date=dt.date(2018, 11, 20)))
    yield st
    st.close()


def test_neighbour_panel_shows_stored_clips_one_per_view(report: Report, media: Path, store: Store) -> None:
    page = render_html(report, media_dir=media, store=store)
    parsed = _parse(page)
    assert len(parsed.images_in("clips")) == 2
    seven = parsed.images_in("nb-7")
    assert len(seven) == 4
    for src in seven:
        assert _png(src).size == (32, 32)
    panel = page[page.index('id="nb-7"') :]
    panel = panel[: panel.index("</article>")]
    # this study's views first (A4C, Parasternal_Long, A2C; it has no SSN), then the others; one A4C only
    shown = re.findall(r'data-clip="(\d+)"', panel)
    assert shown == ["202", "205", "201", "204"]
    assert parsed.images_in("nb-9") == []
    nine = page[page.index('id="nb-9"') :]
    assert "No clip stored for this study." in nine[: nine.index("</article>")]
    # neighbours in similarity order, after a row of this study's clips
    assert page.index("This study (12)") < page.index('id="nb-7"') < page.index('id="nb-9"')


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def test_write_report_picks_the_format_from_the_suffix(report: Report, tmp_path: Path, media: Path) -> None:
    out = tmp_path / "out"
    written = write_report(report, out / "draft.json")
    assert written == out / "draft.json"
    assert Report.from_json(written.read_text()) == report
    assert write_report(report, out / "draft.md").read_text().startswith("# Draft echo report: study 12")
    html_text = write_report(report, out / "draft.HTML", media_dir=media).read_text()
    assert html_text.startswith("<!DOCTYPE html>") and html_text.count("data:image/png;base64,") == 2
    assert write_report(report, out / "draft.txt", fmt="md").read_text().startswith("# Draft echo report")
    with_truth = write_report(report, out / "truth.md", ground_truth=GROUND_TRUTH).read_text()
    assert "**Ground truth**" in with_truth
    assert sorted(p.name for p in out.iterdir()) == ["draft.HTML", "draft.json", "draft.md", "draft.txt", "truth.md"]


def test_write_report_rejects_unknown_formats(report: Report, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"'\.pdf'.*Allowed formats: md, json, html") as info:
        write_report(report, tmp_path / "draft.pdf")
    assert isinstance(info.value, ValueError)
    with pytest.raises(RenderError, match=r"Unknown report format 'docx'\. Allowed: md, json, html"):
        write_report(report, tmp_path / "draft.md", fmt="docx")
    assert list(tmp_path.iterdir()) == []
