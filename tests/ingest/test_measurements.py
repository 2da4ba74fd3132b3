"""Measurements read from echo report text: labels, units, ranges, plausibility."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.measurements import CANONICAL_UNITS, Measurement, extract_measurements

CASES: list[tuple[str, list[tuple[str, float]]]] = [
    # Ejection fraction: phrasing, ranges, spacing.
    ("EF 55%", [("lvef", 55.0)]),
    ("The ejection fraction of 55-60% is normal.", [("lvef", 57.5)]),
    ("LVEF is estimated at 35 %", [("lvef", 35.0)]),
    ("LVEF by Simpson's biplane method is 45%.", [("lvef", 45.0)]),
    ("LVEF (biplane) 40%", [("lvef", 40.0)]),
    ("Ejection fraction between 55 and 60%.", [("lvef", 57.5)]),
    ("EF 55% to 65%.", [("lvef", 60.0)]),
    ("LVEF-55%", [("lvef", 55.0)]),
    ("LVEF: <20%", [("lvef", 20.0)]),
    ("ejection fraction is normal", []),
    ("EF 55", []),  # a percentage needs its sign
    ("RV EF 45%", []),
    # Linear dimensions: mm and cm, canonical cm.
    (
        "LVIDd 50 mm, LVIDs 3.5 cm, IVSd 1.1 cm, LVPWd 9 mm.",
        [("lvidd", 5.0), ("lvids", 3.5), ("ivsd", 1.1), ("lvpwd", 0.9)],
    ),
    ("LV end-diastolic diameter is 6.1 cm.", [("lvidd", 6.1)]),
    ("LA diameter 41 mm.", [("la_diameter", 4.1)]),
    ("The left atrium is moderately dilated at 4.6 cm.", [("la_diameter", 4.6)]),
    ("Aortic root 3.4 cm. Sinuses of Valsalva 36 mm.", [("aortic_root", 3.4)]),
    ("IVC diameter 2.3 cm with <50% collapse.", [("ivc_diameter", 2.3)]),
    ("The IVC is dilated with <50% inspiratory collapse.", []),
    # Volumes, areas, pressures, velocities.
    ("LA volume index 38 mL/m2.", [("la_volume_index", 38.0)]),
    ("Left atrial volume indexed 42 ml/m².", [("la_volume_index", 42.0)]),
    ("LA volume 60 mL.", []),
    ("RA area 18 cm2.", [("ra_area", 18.0)]),
    ("TAPSE 2.1 cm.", [("tapse", 21.0)]),
    ("TAPSE of 18 mm.", [("tapse", 18.0)]),
    ("Estimated PASP 45 mmHg.", [("pasp", 45.0)]),
    ("Pulmonary artery systolic pressure is 38 mm Hg.", [("pasp", 38.0)]),
    ("RVSP is 35 mmHg plus RA pressure.", [("rvsp", 35.0)]),
    (
        "AV peak velocity 4.2 m/s, AV mean gradient 45 mmHg, AVA 0.8 cm2.",
        [("av_peak_velocity", 4.2), ("av_mean_gradient", 45.0), ("ava", 0.8)],
    ),
    ("Peak aortic velocity 420 cm/s.", [("av_peak_velocity", 4.2)]),
    ("Mean gradient across the aortic valve of 40 mmHg.", [("av_mean_gradient", 40.0)]),
    ("Aortic valve peak gradient 64 mmHg.", [("av_peak_gradient", 64.0)]),
    ("The aortic valve area by continuity equation is 0.9 cm².", [("ava", 0.9)]),
    ("E/e' 15.", [("e_e_prime", 15.0)]),
    ("Average E/e' ratio is 12.5.", [("e_e_prime", 12.5)]),
    ("E/A ratio 0.8.", []),
    # Text order, first per name, no borrowing of numbers across clauses.
    ("LVEF 55%. LVEF 40%.", [("lvef", 55.0)]),
    ("TAPSE 19 mm. EF 60%. LA diameter 3.8 cm.", [("tapse", 19.0), ("lvef", 60.0), ("la_diameter", 3.8)]),
    ("The ejection fraction is normal, LA 4 cm.", [("la_diameter", 4.0)]),
    ("Calcified plaque 4 cm.", []),
    # Absurd values are dropped; a later plausible one still counts.
    ("EF 120%.", []),
    ("EF of -10%.", []),
    ("LVIDd 50 cm. LVIDd 5.2 cm.", [("lvidd", 5.2)]),
    ("Aortic root 0 cm.", []),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_extract_measurements(text: str, expected: list[tuple[str, float]]) -> None:
    found = extract_measurements(text)
    assert [(m.name, m.value) for m in found] == [pytest.approx(item) for item in expected]
    assert all(m.unit == CANONICAL_UNITS[m.name] for m in found)
    assert all(m.source == "report" for m in found)


def test_canonical_units() -> None:
    assert CANONICAL_UNITS["lvef"] == "%"
    assert CANONICAL_UNITS["lvidd"] == "cm"
    assert CANONICAL_UNITS["tapse"] == "mm"
    assert CANONICAL_UNITS["la_volume_index"] == "mL/m2"
    assert CANONICAL_UNITS["av_peak_velocity"] == "m/s"
    assert CANONICAL_UNITS["ava"] == "cm2"
    assert CANONICAL_UNITS["pasp"] == CANONICAL_UNITS["rvsp"] == "mmHg"
    assert CANONICAL_UNITS["e_e_prime"] == ""


def test_measurement_is_a_frozen_value() -> None:
    measurement = extract_measurements("EF 55%")[0]
    assert measurement == Measurement(name="lvef", value=55.0, unit="%")
    with pytest.raises(AttributeError):
        measurement.value = 60.0  # type: ignore[misc]


def test_headed_report() -> None:
    text = (
        "LEFT VENTRICLE:\nNormal cavity size. LVEF 55-60%. LVIDd 4.8 cm.\n\n"
        "RIGHT VENTRICLE: TAPSE 2.1 cm.\nLEFT ATRIUM: LA volume index 38 mL/m2.\n"
        "TRICUSPID VALVE: Mild TR. RVSP 35 mmHg.\nIVC: 1.8 cm with normal collapse."
    )
    assert [(m.name, m.value, m.unit) for m in extract_measurements(text)] == [
        ("lvef", 57.5, "%"),
        ("lvidd", 4.8, "cm"),
        ("tapse", 21.0, "mm"),
        ("la_volume_index", 38.0, "mL/m2"),
        ("rvsp", 35.0, "mmHg"),
        ("ivc_diameter", 1.8, "cm"),
    ]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_never_raises_on_odd_text(text: str) -> None:
    found = extract_measurements(text)
    assert len({m.name for m in found}) == len(found)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["EF", "LVEF", "TAPSE", "IVC", "LA", "E/e'", "%", "cm", "mm", "-", " ", "55", "3.5", "to"]),
        max_size=30,
    )
)
def test_never_raises_on_label_soup(tokens: list[str]) -> None:
    for measurement in extract_measurements(" ".join(tokens)):
        assert measurement.value >= 0
