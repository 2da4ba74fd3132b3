"""The supervised probe: labels from the archive's truth, patients apart, one row per finding."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.store import open_store
from rag.train.probe import FINDINGS, VALUES, ProbeConfig, _split, build_probe_data, train_probe
from tests.conftest import KEY, EmbeddedArchive


def test_probe_trains_on_some_patients_and_scores_the_others(embedded_archive: EmbeddedArchive, tmp_path: Path) -> None:
    cfg = embedded_archive.config
    settings = ProbeConfig(frames=4, size=32, epochs=1, batch_size=8, test_fraction=0.34, seed=1)
    store = open_store(cfg.db_url)
    try:
        data = build_probe_data(store, cfg.media_dir, embedded_archive.archive, KEY.encode(), tmp_path, settings)
        again = build_probe_data(store, cfg.media_dir, embedded_archive.archive, KEY.encode(), tmp_path, settings)
    finally:
        store.close()
    assert data.pixels.shape[1:] == (4, 32, 32, 3) and data.pixels.dtype == np.uint8
    assert len(list(tmp_path.glob("probe-*.npy"))) == 1 and np.array_equal(again.pixels, data.pixels)  # cached
    assert data.grades.shape == (len(data.clip_ids), len(FINDINGS)) and data.values.shape[1] == len(VALUES)
    assert data.values[:, 0].min() > 15 and data.values[:, 0].max() < 80  # LVEF in %
    train, test = _split(data, settings)
    assert not set(data.patient[train]) & set(data.patient[test])
    result = train_probe(data, settings)
    names = [r["name"] for r in result.rows]
    assert names == [*FINDINGS, *VALUES]
    assert result.n_test_studies == len(set(data.study[test].tolist()))
    assert len(result.lines) == 1 and "loss" in result.lines[0]
    table = "\n".join(result.table())
    assert "| pericardial_effusion |" in table and "| lvef (%) |" in table


def test_probe_names_an_archive_that_is_not_one_or_not_this_stores(
    embedded_archive: EmbeddedArchive, tmp_path: Path
) -> None:
    import shutil

    import pytest

    from rag.core.errors import RagError
    from rag.train.probe import ProbeError

    cfg = embedded_archive.config
    settings = ProbeConfig(frames=2, size=16, epochs=1)
    store = open_store(cfg.db_url)
    try:
        with pytest.raises(RagError, match=r"not a simulated archive: truth/studies.csv, truth/clips.csv missing"):
            build_probe_data(store, cfg.media_dir, tmp_path, KEY.encode(), tmp_path / "cache", settings)
        with pytest.raises(ProbeError, match="same pseudonym key"):  # right archive, wrong key
            build_probe_data(
                store, cfg.media_dir, embedded_archive.archive, b"another-key-42", tmp_path / "cache", settings
            )
        assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
        other = tmp_path / "other"
        shutil.copytree(embedded_archive.archive / "truth", other / "truth")
        (other / "truth" / "studies.csv").write_text("patient_id,study_uid\n")  # a truth of no stored study
        with pytest.raises(ProbeError, match="no stored cine matches"):
            build_probe_data(store, cfg.media_dir, other, KEY.encode(), tmp_path / "cache", settings)
    finally:
        store.close()
