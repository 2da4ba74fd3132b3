from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.kb import chunk_document, starter_dir
from rag.kb.chunk import KBChunk, document_kind

DOC = """---
title: ignored front matter
---
Preamble before any heading.

# Left ventricle

Intro to the ventricle.

## Systolic function

LVEF is measured by the biplane method of disks.

### Strain

GLS around -20% is normal.

## Size

```
# not a heading inside code
```

Dimensions
----------

LVIDd is measured at end-diastole.

# Right ventricle

TAPSE below 17 mm is abnormal.
"""

TABLE = "\n".join(
    ["| Grade | Men | Women |", "|---|---|---|"]
    + [f"| Grade {i} | {40 + i}-{50 + i} mm | {35 + i}-{45 + i} mm |" for i in range(8)]
)


def test_headings_become_paths() -> None:
    chunks = chunk_document(DOC, "notes/lv.md")
    by_heading = {c.heading: c.text for c in chunks}
    assert by_heading == {
        "": "Preamble before any heading.",
        "Left ventricle": "Intro to the ventricle.",
        "Left ventricle > Systolic function": "LVEF is measured by the biplane method of disks.",
        "Left ventricle > Systolic function > Strain": "GLS around -20% is normal.",
        "Left ventricle > Size": "```\n# not a heading inside code\n```",
        "Left ventricle > Dimensions": "LVIDd is measured at end-diastole.",
        "Right ventricle": "TAPSE below 17 mm is abnormal.",
    }
    assert [c.chunk_id for c in chunks] == [f"notes/lv.md#{i}" for i in range(1, len(chunks) + 1)]
    assert all(c.source == "notes/lv.md" for c in chunks)
    assert chunks[2].indexed_text == "Left ventricle > Systolic function\n" + chunks[2].text


def test_ids_are_stable_and_line_endings_do_not_matter() -> None:
    first = chunk_document(DOC, "lv.md")
    assert chunk_document(DOC, "lv.md") == first
    assert chunk_document(DOC.replace("\n", "\r\n"), "lv.md") == first


def test_a_table_stays_whole_in_one_chunk() -> None:
    intro = "Severity of dilatation. " * 20  # ~480 characters
    doc = f"# LV\n\n{intro.strip()}\n\n{TABLE}\n\nAfter the table.\n"
    chunks = chunk_document(doc, "t.md", max_chars=600)
    holding = [c for c in chunks if "| Grade 0 |" in c.text]
    assert len(holding) == 1
    assert TABLE in holding[0].text
    assert all(len(c.text) <= 600 for c in chunks if "|" not in c.text)


def test_a_table_too_long_for_twice_max_chars_is_split_by_rows_under_its_header() -> None:
    big = "\n".join(["| Name | Value |", "|---|---|"] + [f"| parameter number {i} | {i}.5 mm |" for i in range(60)])
    chunks = chunk_document(f"# T\n\n{big}\n", "t.md", max_chars=300)
    assert len(chunks) > 2
    for c in chunks:
        assert c.text.startswith("| Name | Value |\n|---|---|\n") and len(c.text) <= 600
    rows = [line for c in chunks for line in c.text.splitlines()[2:]]
    assert rows == big.splitlines()[2:]


def test_long_paragraphs_split_between_sentences_not_inside_them() -> None:
    sentences = [
        f"Sentence {i} cites Lang et al. for the normal range of measurement {i}, e.g. 52-72%." for i in range(30)
    ]
    chunks = chunk_document("# S\n\n" + " ".join(sentences) + "\n", "s.md", max_chars=300)
    assert len(chunks) > 3
    for c in chunks:
        assert len(c.text) <= 300
        assert c.text.startswith("Sentence ") and c.text.endswith("52-72%.")
    assert " ".join(c.text for c in chunks) == " ".join(sentences)


def test_a_long_list_splits_between_items() -> None:
    items = [f"- item {i}: TAPSE, S' and FAC are combined to judge RV function in view {i}" for i in range(20)]
    chunks = chunk_document("# L\n\n" + "\n".join(items) + "\n", "l.md", max_chars=200)
    assert len(chunks) > 3
    assert [line for c in chunks for line in c.text.splitlines()] == items


def test_plain_text_is_paragraphs_under_no_heading() -> None:
    text = "# not a heading in text\nfirst paragraph.\n\n\nSecond paragraph.\nstill second.\n"
    chunks = chunk_document(text, "notes.txt", max_chars=100)
    assert [(c.heading, c.text) for c in chunks] == [
        ("", "# not a heading in text\nfirst paragraph.\n\nSecond paragraph.\nstill second.")
    ]
    small = chunk_document(text, "notes.txt", max_chars=100, kind="text")
    assert small == chunks
    assert len(chunk_document(text.replace("first", "x" * 120), "n.txt", max_chars=100)) >= 2


def test_headings_only_give_no_chunks_and_bad_parameters_are_refused() -> None:
    assert chunk_document("# A\n\n## B\n\n", "h.md") == []
    with pytest.raises(ValueError, match="max_chars"):
        chunk_document("text", "a.md", max_chars=10)
    with pytest.raises(ValueError, match="source"):
        chunk_document("text", "")
    assert document_kind("A.MD") == "markdown" and document_kind("x.txt") == "text" and document_kind("x.pdf") is None


def test_starter_documents_chunk_with_headings_and_sources() -> None:
    files = sorted(starter_dir().glob("*.md"))
    assert 5 <= len(files) <= 7
    for path in files:
        text = path.read_text(encoding="utf-8")
        flat = " ".join(text.split())
        assert "## Sources" in text and re.search(r"J Am Soc Echocardiogr\. 20\d\d;\d+:\d+", flat), path.name
        chunks = chunk_document(text, f"starter/{path.name}")
        assert chunks and all(c.heading for c in chunks)
        for c in chunks:
            assert len(c.text) <= (1600 if "|" in c.text else 800)


_WORDS = st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=30), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(paragraphs=st.lists(_WORDS, min_size=1, max_size=8), max_chars=st.integers(100, 400))
def test_no_text_is_lost_and_bounds_hold(paragraphs: list[list[str]], max_chars: int) -> None:
    text = "\n\n".join(" ".join(words) + "." for words in paragraphs)
    chunks = chunk_document(text, "p.txt", max_chars=max_chars)
    assert all(isinstance(c, KBChunk) and len(c.text) <= max_chars for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()
