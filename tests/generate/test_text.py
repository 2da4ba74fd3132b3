"""Sentence splitting and measurement filling of drafted text."""

from __future__ import annotations

from rag.generate.text import BLANK, fill_measurements, format_value, split_sentences


def test_split_keeps_decimals_and_abbreviations_inside_sentences() -> None:
    text = "LVIDd 4.9 cm, LVIDs 3.7 cm.  LVEF 60 to 65%. There is mild AS (peak velocity 2.7 m/s).\nNo effusion."
    assert split_sentences(text) == [
        "LVIDd 4.9 cm, LVIDs 3.7 cm.",
        "LVEF 60 to 65%.",
        "There is mild AS (peak velocity 2.7 m/s).",
        "No effusion.",
    ]
    assert split_sentences("   ") == []


def test_voted_values_replace_the_neighbours_numbers() -> None:
    done = fill_measurements("LVEF 60 to 65%.", {"lvef": (47.6, "%")})
    assert done.text == "LVEF 48%."
    assert done.filled == (("lvef", 47.6, "%"),)
    assert done.blanked == ()
    done = fill_measurements("LVIDd 49 mm, LVIDs 3.7 cm.", {"lvidd": (5.23, "cm")})
    assert done.text == f"LVIDd 5.2 cm, LVIDs {BLANK} cm."
    assert done.blanked == ("3.7 cm",)


def test_numbers_without_a_vote_are_blanked_never_copied() -> None:
    sentence = "Mild aortic stenosis with a peak velocity of 2.7 m/s and a mean gradient of 17 mmHg; AVA 1.3 cm2."
    done = fill_measurements(sentence, {})
    assert "2.7" not in done.text and "17" not in done.text and "1.3" not in done.text
    assert done.text.count(BLANK) == 3
    assert "m/s" in done.text and "mmHg" in done.text
    assert len(done.blanked) == 3
    # words and numbers without units stay
    assert fill_measurements("Grade 2 of 4, no change.", {}).text == "Grade 2 of 4, no change."


def test_value_formats() -> None:
    assert format_value(54.6, "%") == "55%"
    assert format_value(4.94, "cm") == "4.9 cm"
    assert format_value(38.4, "mmHg") == "38 mmHg"
    assert format_value(18.2, "mm") == "18 mm"
