from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import ConfigError, ViewWeightsError
from rag.retrieve.weights import ViewWeights
from rag.vocab.sections import ECHO_SECTIONS
from rag.vocab.view_sections import default_weights
from rag.vocab.views import COARSE_VIEWS


def test_default_is_the_encoder_stage_table() -> None:
    w = ViewWeights.default()
    assert w.matrix.shape == (15, 11)
    assert w.to_mapping(keep_zeros=True) == default_weights()
    assert w.row("IVC")[COARSE_VIEWS.index("Subcostal")] == 1.0
    assert w.row("Aortic Valve")[COARSE_VIEWS.index("A2C")] == 0.0
    assert not w.matrix.flags.writeable


@pytest.mark.parametrize("suffix", [".yaml", ".csv"])
def test_file_round_trips(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    w = ViewWeights(np.round(rng.random((15, 11)), 3) * (rng.random((15, 11)) > 0.4), name="x")
    path = w.save(tmp_path / f"weights{suffix}", header=["made in a test"])
    again = ViewWeights.load(path)
    assert again == w and again.fingerprint == w.fingerprint
    assert again.name == f"weights{suffix}"
    text = path.read_text()
    if suffix == ".yaml":
        assert text.startswith("# made in a test\n")
        assert "\nLeft Ventricle: {" in text  # one readable line per section


def test_hand_edited_yaml_leaves_views_out(tmp_path: Path) -> None:
    rows = {s: "{A4C: 1}" for s in ECHO_SECTIONS}
    rows["IVC"] = "{Subcostal: 1.0, A4C: 0.25}"
    rows["Pulmonary Veins"] = "{}"
    path = tmp_path / "w.yml"
    path.write_text("".join(f"{s}: {r}\n" for s, r in rows.items()))
    w = ViewWeights.load(path)
    assert w.row("IVC")[COARSE_VIEWS.index("A4C")] == 0.25
    assert w.row("Left Ventricle").sum() == 1.0
    assert w.row("Pulmonary Veins").sum() == 0.0


def _table() -> dict[str, dict[str, object]]:
    return {s: dict(r) for s, r in default_weights().items()}


def test_unknown_section_is_named_with_the_allowed_ones() -> None:
    table = _table()
    table["Left Ventricel"] = table.pop("Left Ventricle")
    with pytest.raises(ViewWeightsError) as err:
        ViewWeights.from_mapping(table)
    message = str(err.value)
    assert "'Left Ventricel'" in message and "Did you mean 'Left Ventricle'?" in message
    assert "Pulmonary Veins" in message  # the allowed names are listed
    assert isinstance(err.value, ConfigError)


def test_unknown_view_is_named_with_the_allowed_ones() -> None:
    table = _table()
    table["IVC"] = {"Subcostal": 1.0, "PLAX": 0.5}
    with pytest.raises(ViewWeightsError, match=r"unknown view name\(s\) \['PLAX'\] in section 'IVC'.*Parasternal_Long"):
        ViewWeights.from_mapping(table)


@pytest.mark.parametrize(
    ("value", "match"),
    [(-0.5, "negative"), (float("nan"), "not finite"), ("high", "not a number"), (True, "not a number")],
)
def test_bad_weights_are_refused(value: object, match: str) -> None:
    table = _table()
    table["Aorta"]["SSN"] = value
    with pytest.raises(ViewWeightsError, match=match):
        ViewWeights.from_mapping(table)
    with pytest.raises(ViewWeightsError, match="negative"):
        ViewWeights(-np.ones((15, 11)))


def test_missing_section_and_bad_files(tmp_path: Path) -> None:
    table = _table()
    del table["IVC"]
    with pytest.raises(ViewWeightsError, match=r"\['IVC'\] have no row"):
        ViewWeights.from_mapping(table)
    bad_csv = tmp_path / "w.csv"
    bad_csv.write_text("section,A4C,Apical4\nIVC,1,0\n")
    with pytest.raises(ViewWeightsError, match=r"unknown view column\(s\) \['Apical4'\]"):
        ViewWeights.load(bad_csv)
    with pytest.raises(ViewWeightsError, match="unknown weight file type"):
        ViewWeights.load(tmp_path / "w.json")
    with pytest.raises(ViewWeightsError, match="cannot read"):
        ViewWeights.load(tmp_path / "absent.yaml")
    broken = tmp_path / "b.yaml"
    broken.write_text("Left Ventricle: {A4C: [\n")
    with pytest.raises(ViewWeightsError, match="not valid YAML"):
        ViewWeights.load(broken)


def test_columns_follow_a_models_view_order() -> None:
    w = ViewWeights.default()
    order = list(reversed(COARSE_VIEWS))
    assert np.array_equal(w.columns_for(order), w.matrix[:, ::-1])
    with pytest.raises(ViewWeightsError, match="no column"):
        w.columns_for(["A4C", "M-mode"])
