"""One option lookup with "did you mean", and one formatter of validation errors."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from rag.core.errors import ConfigError, RagError
from rag.core.lookup import did_you_mean, look_up_option
from rag.core.validation import format_validation_error


def test_look_up_option_returns_the_option_or_names_the_closest_and_all() -> None:
    assert look_up_option("hnsw", ["flat", "hnsw"], what="index kind") == "hnsw"
    with pytest.raises(ConfigError) as err:
        look_up_option("hnws", ["flat", "hnsw"], what="index kind", error=ConfigError, fix="Use one of them.")
    assert (
        str(err.value)
        == "Unknown index kind 'hnws'. Did you mean 'hnsw'? Available: ['flat', 'hnsw']. Use one of them."
    )
    with pytest.raises(RagError, match=r"^Unknown view 'zzz'\. Available"):  # nothing close: no guess
        look_up_option("zzz", ["A4C", "A2C"], what="view")


def test_did_you_mean_lists_several_when_asked() -> None:
    assert did_you_mean("flatt", ["flat", "flats", "hnsw"], n=2) in (
        " Did you mean 'flat' or 'flats'?",
        " Did you mean 'flats' or 'flat'?",
    )
    assert did_you_mean("xyz", ["A4C"]) == ""


def test_validation_errors_name_every_path_and_optionally_the_input() -> None:
    class Inner(BaseModel):
        frames: int

    class Outer(BaseModel):
        ingest: Inner
        name: str

    with pytest.raises(ValidationError) as err:
        Outer.model_validate({"ingest": {"frames": "many"}})
    text = format_validation_error(err.value)
    assert text.startswith("ingest.frames: ") and "; name: Field required" in text
    assert "(got 'many')" in format_validation_error(err.value, with_input=True)
