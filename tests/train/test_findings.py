"""Soft contrastive targets: finding grades read from reports, view masks, affinities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.core.config import RagConfig
from rag.store import open_store
from rag.train.data import ClipItem, load_items
from rag.train.findings import finding_affinity, finding_names, report_grades, view_finding_mask

MR = finding_names().index("mitral_regurgitation")
AS = finding_names().index("aortic_stenosis")
EFF = finding_names().index("pericardial_effusion")


def test_grades_read_from_section_text() -> None:
    sections = {
        "Mitral Valve": "Mildly thickened leaflets. Moderate mitral regurgitation.",
        "Aortic Valve": "Trileaflet. No aortic stenosis.",
        "Pericardium": "Small pericardial effusion without tamponade physiology.",
    }
    grades = report_grades(sections)
    assert len(grades) == len(finding_names())
    assert (grades[MR], grades[AS], grades[EFF]) == (2, 0, 1)
    assert report_grades({}) == (0,) * len(finding_names())  # unstated findings read as normal


def test_view_masks_follow_the_sections_a_view_shows() -> None:
    a4c = view_finding_mask("A4C")
    assert a4c[finding_names().index("rv_dilation")] and not a4c[AS]
    assert view_finding_mask("A5C")[AS]
    assert all(view_finding_mask(None))


def test_affinity_spreads_targets_over_reports_with_the_same_findings() -> None:
    n = len(finding_names())
    own = [0] * n
    own[MR] = 2
    same = list(own)
    worse = list(own)
    worse[MR] = 3
    other_valve = list(own)
    other_valve[AS] = 3  # differs only where an A4C clip cannot see
    a4c = view_finding_mask("A4C")
    aff = finding_affinity([own], [a4c], [own, same, worse, other_valve], temperature=0.5)
    assert aff.shape == (1, 4)
    assert aff[0, 0] == aff[0, 1] == 1.0
    assert aff[0, 2] == pytest.approx(np.exp(-2.0))
    assert aff[0, 3] == 1.0  # the A4C clip cannot tell them apart, so it is not asked to
    everything = finding_affinity([own], [view_finding_mask(None)], [other_valve], temperature=0.5)
    assert everything[0, 0] == pytest.approx(np.exp(-6.0))
    with pytest.raises(ValueError, match="temperature"):
        finding_affinity([own], [a4c], [own], temperature=0.0)


def test_stored_items_carry_their_reports_grades(ingested_archive: RagConfig) -> None:
    store = open_store(ingested_archive.db_url)
    try:
        items: list[ClipItem] = load_items(store, ingested_archive.media_dir, ("A4C",))
    finally:
        store.close()
    assert items and all(it.grades == report_grades(it.sections) for it in items)
    assert any(any(it.grades) for it in items)  # the simulated patients have abnormal findings


def test_finding_head_is_asked_only_about_findings_the_view_shows() -> None:
    import torch

    from rag.train.heads import LEVELS, make_heads
    from rag.vocab.views import COARSE_VIEWS

    n = len(finding_names())
    grades = [0] * n
    grades[AS] = 3
    grades[MR] = 2
    clip = ClipItem(1, Path("x.npz"), 1, "p", COARSE_VIEWS.index("A4C"), "", {}, tuple(grades))
    unknown = ClipItem(2, Path("y.npz"), 1, "p", -1, "", {}, tuple(grades))
    heads = make_heads(8, [clip])
    emb = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    loss = heads.loss(emb, [clip, unknown], COARSE_VIEWS)
    assert loss is not None and torch.isfinite(loss)
    loss.backward()
    grad = heads.linear.weight.grad
    assert grad is not None
    rows = grad[: LEVELS * n].view(n, LEVELS, -1)
    assert rows[AS].abs().sum() == 0  # an A4C clip does not show the aortic valve well
    assert rows[finding_names().index("rv_dilation")].abs().sum() > 0  # it shows the right ventricle
    assert heads.loss(emb[1:], [unknown], COARSE_VIEWS) is None  # no view, no finding targets


def test_finding_head_auroc_scores_studies_by_the_findings_their_views_show() -> None:
    import torch

    from rag.train.evaluate import _finding_head_auroc
    from rag.train.heads import LEVELS, make_heads
    from rag.vocab.views import COARSE_VIEWS

    n = len(finding_names())
    rv = finding_names().index("rv_dilation")
    a4c = COARSE_VIEWS.index("A4C")
    items, rows = [], []
    for study in range(6):
        grades = [0] * n
        grades[rv] = study % 2  # every other study has a dilated RV
        grades[AS] = study % 2  # ... and aortic stenosis, which A4C clips do not show
        for clip in range(2):
            items.append(ClipItem(study * 10 + clip, Path("c.npz"), study, f"p{study}", a4c, "", {}, tuple(grades)))
            rows.append([float(g) for g in grades])
    emb = torch.tensor(rows)
    heads = make_heads(n, items)
    with torch.no_grad():
        heads.linear.weight.zero_()
        heads.linear.bias.fill_(-5.0)
        for k in range(n):  # P(grade >= 1) of finding k rises with coordinate k
            heads.linear.weight[k * LEVELS, k] = 10.0
    assert _finding_head_auroc(heads, emb, items, COARSE_VIEWS) == 1.0  # RV only: AS is not shown
    with torch.no_grad():
        heads.linear.weight.mul_(-1)
    assert _finding_head_auroc(heads, emb, items, COARSE_VIEWS) == 0.0
